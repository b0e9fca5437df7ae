//! The definitions of a project: `<sql_dir>/segments/*.sql` and `<sql_dir>/checks/*.sql`.
//!
//! Files are read each time a command or procedure needs them, so an analyst's new or edited
//! file is used without a restart. A broken file is reported (file:line and reason) and left
//! out; every other file still runs.

use std::path::{Path, PathBuf};

use super::definition::{self, Definition, DefinitionError, Kind};
use crate::error::{PersonaError, Result};

#[derive(Debug, Default)]
pub struct Project {
    pub segments: Vec<Definition>,
    pub checks: Vec<Definition>,
    /// Files that could not be used.
    pub errors: Vec<DefinitionError>,
    pub sql_dir: PathBuf,
}

impl Project {
    /// Reads every definition under `sql_dir`. A missing folder is an error naming it; a
    /// missing `segments/` or `checks/` inside it just holds no definitions.
    pub fn load(sql_dir: &Path) -> Result<Self> {
        if !sql_dir.is_dir() {
            return Err(PersonaError::Config(format!(
                "no folder of segment and check files at {} (set sql_dir in persona.toml or --sql-dir)",
                sql_dir.display()
            )));
        }
        let mut project = Project { sql_dir: sql_dir.to_path_buf(), ..Default::default() };
        for (kind, folder) in [(Kind::Check, "checks"), (Kind::Segment, "segments")] {
            for path in sql_files(&sql_dir.join(folder))? {
                let parsed = std::fs::read_to_string(&path)
                    .map_err(|e| DefinitionError { path: path.clone(), line: 1, message: format!("cannot read the file: {e}") })
                    .and_then(|text| definition::parse(&path, &text, kind));
                match parsed {
                    Ok(d) if !is_file_of(&d.path, &d.name) => project.errors.push(DefinitionError {
                        path: d.path.clone(),
                        line: d.name_line,
                        message: format!(
                            "{} `{}` is declared in {}: the name must match the file name {}",
                            d.kind.as_str(),
                            d.name,
                            d.path.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
                            d.path.file_stem().map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
                        ),
                    }),
                    Ok(d) => project.add(d),
                    Err(e) => project.errors.push(e),
                }
            }
        }
        project.check_requirements();
        Ok(project)
    }

    fn add(&mut self, d: Definition) {
        let list = match d.kind {
            Kind::Segment => &self.segments,
            Kind::Check => &self.checks,
        };
        if let Some(first) = list.iter().find(|o| o.name == d.name) {
            self.errors.push(DefinitionError {
                path: d.path.clone(),
                line: 1,
                message: format!("{} `{}` is already defined in {}", d.kind.as_str(), d.name, first.path.display()),
            });
            return;
        }
        match d.kind {
            Kind::Segment => self.segments.push(d),
            Kind::Check => self.checks.push(d),
        }
    }

    /// A segment that requires a check nobody defines is broken, not silently ungated.
    fn check_requirements(&mut self) {
        let mut kept = Vec::new();
        for s in std::mem::take(&mut self.segments) {
            match s.requires.iter().find(|r| !self.checks.iter().any(|c| &c.name == *r)) {
                Some(missing) => {
                    let why = if self.errors.iter().any(|e| is_file_of(&e.path, missing)) {
                        "whose file is broken"
                    } else {
                        "that no file in checks/ defines"
                    };
                    self.errors.push(DefinitionError {
                        path: s.path.clone(),
                        line: s.requires_line,
                        message: format!("requires check `{missing}`, {why}"),
                    });
                }
                None => kept.push(s),
            }
        }
        self.segments = kept;
    }

    /// The segment called `name`; its file's error when it is broken.
    pub fn segment(&self, name: &str) -> Result<&Definition> {
        self.find(&self.segments, Kind::Segment, name)
    }

    pub fn check(&self, name: &str) -> Result<&Definition> {
        self.find(&self.checks, Kind::Check, name)
    }

    fn find<'a>(&self, list: &'a [Definition], kind: Kind, name: &str) -> Result<&'a Definition> {
        if let Some(d) = list.iter().find(|d| d.name == name) {
            return Ok(d);
        }
        let folder = match kind {
            Kind::Segment => "segments",
            Kind::Check => "checks",
        };
        if let Some(e) = self.errors.iter().find(|e| is_file_of(&e.path, name)) {
            return Err(PersonaError::InvalidArgument(e.to_string()));
        }
        let known: Vec<&str> = list.iter().map(|d| d.name.as_str()).collect();
        Err(PersonaError::NotFound(format!(
            "{} `{name}` (no file in {} declares it); known: {}",
            kind.as_str(),
            self.sql_dir.join(folder).display(),
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )))
    }
}

/// Definition files are named after what they define (`lapsed_high_value.sql`).
fn is_file_of(path: &Path, name: &str) -> bool {
    path.file_stem().is_some_and(|s| s == name)
}

fn sql_files(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}
