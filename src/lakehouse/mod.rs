//! The lakehouse as commands that change it see it: which table a name means, every table there
//! is, and the work done on them (`upkeep.rs`: optimize, vacuum, checkpoint, the `persona tables`
//! listing; `forget.rs`: deleting one customer everywhere and proving it).
//!
//! A name is a table of `persona.toml` when one is configured under it; otherwise it is the
//! folder `<data_dir>/lakehouse/<name>`, where `persona load` creates new tables and which the
//! server serves in schema `public` (the embedded default lakehouse lives there too).
//! `persona.<name>` is one of persona's own tables under `<data_dir>/persona/`.

pub mod forget;
pub mod upkeep;

use std::path::{Path, PathBuf};

use crate::catalog::{PERSONA_SCHEMA, USER_SCHEMA, folder_table, is_table_name};
use crate::config::{Config, TableConfig};
use crate::error::{PersonaError, Result};

/// A table and the schema it is served in.
#[derive(Debug, Clone)]
pub struct Entry {
    pub schema: &'static str,
    pub table: TableConfig,
}

impl Entry {
    /// `events`, or `persona.load_watermarks` for persona's own tables.
    pub fn display_name(&self) -> String {
        if self.schema == USER_SCHEMA { self.table.name.clone() } else { format!("{}.{}", self.schema, self.table.name) }
    }
}

/// Makes `s3://` locations usable (the `s3` cargo feature); call before opening any table.
pub fn register_object_stores() {
    #[cfg(feature = "s3")]
    deltalake::aws::register_handlers(None);
}

pub fn user_folder(data_dir: &Path) -> PathBuf {
    crate::embedded::lakehouse_dir(data_dir)
}

pub fn persona_folder(data_dir: &Path) -> PathBuf {
    crate::store::dir(data_dir)
}

/// The table a name given on the command line means (it need not exist yet).
pub fn resolve(config: &Config, name: &str) -> Result<Entry> {
    resolve_among(&config.tables, &config.data_dir, name)
}

/// The table `name` means among the configured `tables` and the folders under `data_dir`.
pub fn resolve_among(tables: &[TableConfig], data_dir: &Path, name: &str) -> Result<Entry> {
    let (schema, table) = match name.split_once('.') {
        Some((s, t)) if s == PERSONA_SCHEMA => (PERSONA_SCHEMA, t),
        Some((s, t)) if s == USER_SCHEMA => (USER_SCHEMA, t),
        Some((s, _)) => {
            return Err(PersonaError::InvalidArgument(format!(
                "`{name}`: unknown schema `{s}`; tables live in `{USER_SCHEMA}` (the default) or `{PERSONA_SCHEMA}`"
            )));
        }
        None => (USER_SCHEMA, name),
    };
    if !is_table_name(table) {
        return Err(PersonaError::InvalidArgument(format!(
            "`{table}` is not a table name: use letters, digits and `_`"
        )));
    }
    if schema == PERSONA_SCHEMA {
        return Ok(Entry { schema, table: folder_table(&persona_folder(data_dir), table)? });
    }
    if let Some(configured) = tables.iter().find(|t| t.name == table) {
        return Ok(Entry { schema, table: configured.clone() });
    }
    Ok(Entry { schema, table: folder_table(&user_folder(data_dir), table)? })
}

/// Every table that exists: configured ones, then those in the lakehouse folder, then persona's.
pub fn all(config: &Config) -> Result<Vec<Entry>> {
    let mut entries: Vec<Entry> = config.tables.iter().map(|t| Entry { schema: USER_SCHEMA, table: t.clone() }).collect();
    for (schema, folder) in [(USER_SCHEMA, user_folder(&config.data_dir)), (PERSONA_SCHEMA, persona_folder(&config.data_dir))] {
        let Ok(dir) = std::fs::read_dir(&folder) else { continue };
        let mut names: Vec<String> = dir
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_table_name(n) && folder.join(n).join("_delta_log").is_dir())
            .collect();
        names.sort();
        for name in names {
            if !entries.iter().any(|e| e.schema == schema && e.table.name == name) {
                entries.push(Entry { schema, table: folder_table(&folder, &name)? });
            }
        }
    }
    Ok(entries)
}
