//! persona's own tables: where they live and how they are written.
//!
//! Every table persona writes itself is a Delta table under `<data_dir>/persona/<name>`, served in
//! schema `persona`: identity resolution's tables, and the run records of segments and checks.
//! The catalog knows all of them from start-up and picks each up when its first commit appears.
//! Each write here is one Delta commit, so a reader sees a whole write or none of it.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;

use crate::config::{TableConfig, location_url};
use crate::error::{PersonaError, Result};

/// Identity resolution (see `identity/job.rs`).
pub const IDENTITY_LINKS: &str = "identity_links";
pub const IDENTITY_ALIASES: &str = "identity_aliases";
pub const IDENTITY_PAIRS: &str = "identity_pairs";
pub const CUSTOMERS: &str = "customers";
/// Segment and check runs (see `runs/`).
pub const SEGMENT_RUNS: &str = "segment_runs";
pub const SEGMENT_MEMBERS: &str = "segment_members";
pub const SEGMENT_CHANGES: &str = "segment_changes";
pub const CHECK_RUNS: &str = "check_runs";
pub const CHECK_FAILURES: &str = "check_failures";
/// What each load took from each source file (see `ingest/watermark.rs`).
pub const LOAD_WATERMARKS: &str = "load_watermarks";

/// Every table persona writes, in the order `SHOW TABLES` lists them.
pub const TABLES: [&str; 10] = [
    CHECK_FAILURES, CHECK_RUNS, CUSTOMERS, IDENTITY_ALIASES, IDENTITY_LINKS, IDENTITY_PAIRS, LOAD_WATERMARKS, SEGMENT_CHANGES,
    SEGMENT_MEMBERS, SEGMENT_RUNS,
];

/// Where persona keeps its own tables.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("persona")
}

/// The location of one of persona's tables.
pub fn location(data_dir: &Path, name: &str) -> Result<TableConfig> {
    let dir = dir(data_dir).join(name);
    let url = location_url(&dir.to_string_lossy(), Path::new("")).map_err(PersonaError::Config)?;
    Ok(TableConfig { name: name.to_string(), url, storage_options: Default::default() })
}

/// True when the table has been written at least once.
pub fn exists(data_dir: &Path, name: &str) -> bool {
    dir(data_dir).join(name).join("_delta_log").is_dir()
}

/// Every persona table, whether or not anything has written it yet.
pub fn all_tables(data_dir: &Path) -> Result<Vec<TableConfig>> {
    TABLES.iter().map(|name| location(data_dir, name)).collect()
}

/// How a write treats what the table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Append,
    Overwrite,
}

/// Writes `batches` to one of persona's tables in one commit, creating the table on first use;
/// returns the new version. Appends merge new columns into the schema, so a later persona that
/// records more about a run keeps reading the tables an earlier one wrote.
pub async fn write(data_dir: &Path, name: &str, batches: Vec<RecordBatch>, mode: Mode, partition_by: &[&str]) -> Result<u64> {
    let cfg = location(data_dir, name)?;
    std::fs::create_dir_all(dir(data_dir).join(name))?;
    let table = DeltaTable::try_from_url(cfg.url).await.map_err(|e| PersonaError::delta(name, e))?;
    let mut builder = table
        .write(batches)
        .with_table_name(name)
        .with_commit_properties(CommitProperties::default())
        .with_save_mode(match mode {
            Mode::Append => SaveMode::Append,
            Mode::Overwrite => SaveMode::Overwrite,
        });
    if mode == Mode::Append {
        builder = builder.with_schema_mode(SchemaMode::Merge);
    }
    if !partition_by.is_empty() {
        builder = builder.with_partition_columns(partition_by.iter().map(|c| c.to_string()));
    }
    let written = builder.await.map_err(|e| PersonaError::delta(name, e))?;
    Ok(written.version().unwrap_or_default())
}
