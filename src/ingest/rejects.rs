//! The rejects file: every record a load set aside, as CSV with the columns
//! `source,line,reason,record` (`record` holds the record's values as CSV). It is created on the
//! first reject only, so a clean load leaves no file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::formats::Reject;
use crate::error::Result;

pub struct RejectsFile {
    path: PathBuf,
    writer: Option<csv::Writer<std::fs::File>>,
    count: u64,
}

impl RejectsFile {
    pub fn new(path: PathBuf) -> Self {
        Self { path, writer: None, count: 0 }
    }

    /// The default place: `<data_dir>/rejects/<table>-<UTC time>.csv`.
    pub fn default_path(data_dir: &Path, table: &str) -> PathBuf {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        data_dir.join("rejects").join(format!("{table}-{stamp}.csv"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn add(&mut self, source: &str, rejects: &[Reject]) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        if self.writer.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut w = csv::Writer::from_path(&self.path).map_err(std::io::Error::other)?;
            w.write_record(["source", "line", "reason", "record"]).map_err(std::io::Error::other)?;
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().expect("writer just opened");
        for r in rejects {
            w.write_record([source, &r.line.to_string(), &r.reason, &r.record]).map_err(std::io::Error::other)?;
        }
        self.count += rejects.len() as u64;
        Ok(())
    }

    /// Flushes the file; `Some(path)` when it holds rejects.
    pub fn close(&mut self) -> Result<Option<PathBuf>> {
        match self.writer.take() {
            Some(mut w) => {
                w.flush()?;
                w.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?.flush()?;
                Ok(Some(self.path.clone()))
            }
            None => Ok(None),
        }
    }
}
