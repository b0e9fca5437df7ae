//! Keeping tables fast and small: `persona optimize` (compaction, optional Z-order),
//! `persona vacuum` (removing files no version within the retention reads), `persona checkpoint`,
//! and `persona tables` (what each table holds).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use deltalake::DeltaTable;
use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::VacuumMode;
use futures::TryStreamExt;

use super::Entry;
use crate::error::{PersonaError, Result};
use crate::ingest::progress::{count, human_bytes, thousands};

/// Opens an existing table; an error naming it when there is none.
pub async fn open(entry: &Entry) -> Result<DeltaTable> {
    let options: HashMap<String, String> = entry.table.storage_options.clone().into_iter().collect();
    deltalake::open_table_with_storage_options(entry.table.url.clone(), options).await.map_err(|e| match e {
        deltalake::DeltaTableError::NotATable(_) | deltalake::DeltaTableError::InvalidTableLocation(_) => {
            PersonaError::TableNotFound(format!("{} (no Delta table at {})", entry.display_name(), entry.table.url))
        }
        other => PersonaError::delta(entry.display_name(), other),
    })
}

/// One line of `persona tables`.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub name: String,
    pub location: String,
    pub version: u64,
    pub files: usize,
    pub bytes: u64,
    pub rows: Option<u64>,
    pub last_commit: Option<DateTime<Utc>>,
    pub change_feed: bool,
}

pub async fn describe(entry: &Entry) -> Result<TableInfo> {
    use deltalake::table::config::TablePropertiesExt;
    let table = open(entry).await?;
    let state = table.snapshot().map_err(|e| PersonaError::delta(entry.display_name(), e))?;
    let (mut files, mut bytes, mut rows) = (0usize, 0u64, Some(0u64));
    for file in state.log_data().iter() {
        files += 1;
        bytes += file.size().max(0) as u64;
        rows = rows.zip(file.num_records()).map(|(a, b)| a + b as u64);
    }
    let last: Vec<_> = table.history(Some(1)).try_collect().await.map_err(|e| PersonaError::delta(entry.display_name(), e))?;
    Ok(TableInfo {
        name: entry.display_name(),
        location: entry.table.url.to_string(),
        version: table.version().unwrap_or(0),
        files,
        bytes,
        rows,
        last_commit: last.first().and_then(|c| c.timestamp).and_then(DateTime::from_timestamp_millis),
        change_feed: state.table_config().enable_change_data_feed(),
    })
}

/// The `persona tables` listing as aligned columns.
pub fn format_tables(tables: &[TableInfo]) -> String {
    let header = ["table", "version", "files", "size", "rows", "last commit (UTC)", "cdf", "location"];
    let rows: Vec<[String; 8]> = tables
        .iter()
        .map(|t| {
            [
                t.name.clone(),
                t.version.to_string(),
                t.files.to_string(),
                human_bytes(t.bytes),
                t.rows.map_or_else(|| "?".into(), thousands),
                t.last_commit.map_or_else(|| "-".into(), |c| c.format("%Y-%m-%d %H:%M:%S").to_string()),
                if t.change_feed { "on".into() } else { "off".into() },
                t.location.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

#[derive(Debug, Clone)]
pub struct Optimized {
    pub table: String,
    pub version: Option<u64>,
    pub files_removed: u64,
    pub files_added: u64,
    pub zorder: Vec<String>,
}

impl fmt::Display for Optimized {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = if self.zorder.is_empty() { "compacted".to_string() } else { format!("z-ordered by {}", self.zorder.join(", ")) };
        match self.version {
            Some(v) if self.files_removed > 0 => write!(
                f,
                "{} {how}: {} rewritten into {}, version {v}",
                self.table, count(self.files_removed, "file"), self.files_added
            ),
            _ => write!(f, "{}: nothing to optimize (no small files to compact)", self.table),
        }
    }
}

/// Compacts small files (and Z-orders by `zorder` when given) in one commit.
pub async fn optimize(entry: &Entry, zorder: &[String]) -> Result<Optimized> {
    let table = open(entry).await?;
    let before = table.version();
    let kind = if zorder.is_empty() { OptimizeType::Compact } else { OptimizeType::ZOrder(zorder.to_vec()) };
    let (table, metrics) = table.optimize().with_type(kind).await.map_err(|e| PersonaError::delta(entry.display_name(), e))?;
    Ok(Optimized {
        table: entry.display_name(),
        version: table.version().filter(|v| Some(*v) != before),
        files_removed: metrics.num_files_removed,
        files_added: metrics.num_files_added,
        zorder: zorder.to_vec(),
    })
}

#[derive(Debug, Clone)]
pub struct Vacuumed {
    pub table: String,
    pub dry_run: bool,
    pub retain_hours: Option<u64>,
    pub files: Vec<String>,
}

impl fmt::Display for Vacuumed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let retention = self.retain_hours.map_or_else(|| "the table's retention".to_string(), |h| format!("{h} hours"));
        let verb = if self.dry_run { "would delete" } else { "deleted" };
        write!(f, "{}: {verb} {} not needed by any version within {retention}", self.table, count(self.files.len() as u64, "file"))?;
        if self.dry_run {
            for file in &self.files {
                write!(f, "\n  {file}")?;
            }
        }
        Ok(())
    }
}

/// Deletes files no version within the retention period reads, and orphaned files no commit
/// ever referenced (left by failed writes). A retention shorter than the table's
/// `delta.deletedFileRetentionDuration` (7 days by default) would break readers of older
/// versions and concurrent writers, so it needs `force`.
pub async fn vacuum(entry: &Entry, retain_hours: Option<u64>, dry_run: bool, force: bool) -> Result<Vacuumed> {
    let table = open(entry).await?;
    let mut builder = table.vacuum().with_dry_run(dry_run).with_mode(VacuumMode::Full).with_enforce_retention_duration(!force);
    if let Some(h) = retain_hours {
        builder = builder.with_retention_period(chrono::Duration::hours(h as i64));
    }
    let (_, metrics) = builder.await.map_err(|e| {
        let text = e.to_string();
        if text.contains("retention") {
            PersonaError::InvalidArgument(format!(
                "{}: {text}; a shorter retention breaks time travel to older versions and concurrent writers: pass --force to do it anyway",
                entry.display_name()
            ))
        } else {
            PersonaError::delta(entry.display_name(), e)
        }
    })?;
    Ok(Vacuumed { table: entry.display_name(), dry_run, retain_hours, files: metrics.files_deleted })
}

/// Writes a checkpoint of the table's newest version, so readers replay fewer log files.
pub async fn checkpoint(entry: &Entry) -> Result<u64> {
    let table = open(entry).await?;
    deltalake::checkpoints::create_checkpoint(&table, None).await.map_err(|e| PersonaError::delta(entry.display_name(), e))?;
    Ok(table.version().unwrap_or(0))
}
