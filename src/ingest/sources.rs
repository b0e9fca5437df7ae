//! The files a load names: paths, folders (their files, sorted by name) and glob patterns
//! (`data/*.csv.gz`, for when the shell did not expand them), each with its size, modification
//! time and format. Hashing reads a file once and also yields the hash of a prefix, which tells
//! a file that grew (new rows appended) from one that changed.

use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::formats::Format;
use crate::error::{PersonaError, Result};

#[derive(Debug, Clone)]
pub struct Source {
    /// Absolute, so a watermark recorded from one working directory matches from another.
    pub path: PathBuf,
    pub size: u64,
    pub modified: DateTime<Utc>,
    pub format: Format,
}

impl Source {
    pub fn display(&self) -> String {
        self.path.display().to_string()
    }
}

/// Expands the load's arguments into files, in argument order, each file once.
pub fn expand(inputs: &[String], format: Option<Format>) -> Result<Vec<Source>> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if input.contains(['*', '?', '[']) && !path.exists() {
            let mut matched: Vec<PathBuf> = glob::glob(input)
                .map_err(|e| PersonaError::InvalidArgument(format!("`{input}` is not a valid pattern: {e}")))?
                .filter_map(std::result::Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(PersonaError::InvalidArgument(format!("no file matches `{input}`")));
            }
            matched.sort();
            paths.extend(matched);
        } else if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| PersonaError::InvalidArgument(format!("cannot list {input}: {e}")))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && !hidden(p) && (format.is_some() || Format::from_path(p).is_some()))
                .collect();
            if files.is_empty() {
                return Err(PersonaError::InvalidArgument(format!("the folder {input} holds no CSV, JSON or Parquet file")));
            }
            files.sort();
            paths.extend(files);
        } else if path.is_file() {
            paths.push(path.to_path_buf());
        } else {
            return Err(PersonaError::InvalidArgument(format!("no such file or folder: {input}")));
        }
    }
    let mut sources: Vec<Source> = Vec::with_capacity(paths.len());
    for p in paths {
        let path = std::path::absolute(&p)?;
        if sources.iter().any(|s| s.path == path) {
            continue;
        }
        let format = match format.or_else(|| Format::from_path(&path)) {
            Some(f) => f,
            None => {
                return Err(PersonaError::InvalidArgument(format!(
                    "{}: cannot tell the format from the name; pass --format csv|json|parquet",
                    path.display()
                )));
            }
        };
        let meta = std::fs::metadata(&path)?;
        let modified = meta.modified().map(DateTime::<Utc>::from).unwrap_or_default();
        sources.push(Source { path, size: meta.len(), modified, format });
    }
    Ok(sources)
}

/// Names starting with `.` or `_` are hidden (editor files, `_SUCCESS` markers, `_delta_log`).
fn hidden(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.') || n.starts_with('_'))
}

/// The SHA-256 of a file, and of its first `prefix` bytes when asked (`None` if it is shorter).
pub fn hash(path: &Path, prefix: Option<u64>) -> Result<(String, Option<String>)> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| PersonaError::InvalidArgument(format!("cannot read {}: {e}", path.display())))?;
    let mut whole = Sha256::new();
    let mut head = prefix.map(|n| (Sha256::new(), n));
    let mut buf = vec![0u8; 1 << 20];
    let mut read_so_far = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        whole.update(&buf[..n]);
        if let Some((h, limit)) = head.as_mut()
            && read_so_far < *limit
        {
            let take = ((*limit - read_so_far) as usize).min(n);
            h.update(&buf[..take]);
        }
        read_so_far += n as u64;
    }
    let prefix_hash = head.filter(|(_, limit)| read_so_far >= *limit).map(|(h, _)| hex::encode(h.finalize()));
    Ok((hex::encode(whole.finalize()), prefix_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_globs_and_prefix_hashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.csv"), "x\n1\n").unwrap();
        std::fs::write(dir.path().join("a.csv"), "x\n2\n").unwrap();
        std::fs::write(dir.path().join(".a.csv.swp"), "junk").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "junk").unwrap();
        let found = expand(&[dir.path().to_string_lossy().into()], None).unwrap();
        let names: Vec<_> = found.iter().map(|s| s.path.file_name().unwrap().to_string_lossy().to_string()).collect();
        assert_eq!(names, ["a.csv", "b.csv"]);
        let pattern = format!("{}/*.csv", dir.path().display());
        assert_eq!(expand(&[pattern.clone(), pattern], None).unwrap().len(), 2);
        let err = expand(&[dir.path().join("notes.txt").to_string_lossy().into()], None).unwrap_err().to_string();
        assert!(err.contains("--format"), "{err}");

        let (whole, head) = hash(&dir.path().join("a.csv"), Some(2)).unwrap();
        let (prefix_only, _) = {
            std::fs::write(dir.path().join("p"), "x\n").unwrap();
            hash(&dir.path().join("p"), None).unwrap()
        };
        assert_eq!(head.unwrap(), prefix_only);
        assert_ne!(whole, prefix_only);
        assert_eq!(hash(&dir.path().join("a.csv"), Some(100)).unwrap().1, None);
    }
}
