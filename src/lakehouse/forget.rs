//! `persona forget --key COLUMN=VALUE`: a customer's right to be forgotten, done and proven.
//!
//! For every table (configured, in the lakehouse folder, and persona's own) that has one of
//! the key columns:
//! 1. delete the rows whose column holds the value (one Delta commit);
//! 2. vacuum with zero retention in full mode: the files the delete replaced, older versions'
//!    files, change-feed files (`_change_data/`, which hold the deleted rows) and orphaned files
//!    are removed, so no earlier version can be read back; this deliberately ends time travel to
//!    versions before the delete for those tables;
//! 3. read every Parquet file left under the table's location and check that none holds the
//!    value (in the key column, or as a partition directory).
//!
//! The transaction log itself is not rewritten: per-file statistics in older commits may still
//! quote the value as a column's minimum or maximum until those commits expire
//! (`delta.logRetentionDuration`, 30 days by default). The report counts such log files.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::DeltaTable;
use deltalake::operations::vacuum::VacuumMode;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::{Entry, upkeep};
use crate::config::Config;
use crate::error::{PersonaError, Result};

/// `COLUMN=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub column: String,
    pub value: String,
}

impl std::str::FromStr for Key {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_once('=') {
            Some((c, v)) if !c.trim().is_empty() && !v.is_empty() => Ok(Key { column: c.trim().to_string(), value: v.to_string() }),
            _ => Err(format!("`{s}` is not COLUMN=VALUE (e.g. customer_id=17850)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Forgotten {
    pub table: String,
    pub column: String,
    pub rows_deleted: u64,
    pub files_rewritten: u64,
    pub files_removed: u64,
    pub files_checked: usize,
    /// Data files that still hold the value: must be empty.
    pub still_holding: Vec<String>,
    /// Log files whose statistics still quote the value.
    pub log_mentions: usize,
    pub version: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ForgetReport {
    pub tables: Vec<Forgotten>,
    /// Tables without any of the key columns.
    pub untouched: Vec<String>,
}

impl ForgetReport {
    /// True when no data file of any table still holds the value.
    pub fn verified(&self) -> bool {
        self.tables.iter().all(|t| t.still_holding.is_empty())
    }
}

impl fmt::Display for ForgetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tables {
            let verdict = if t.still_holding.is_empty() {
                format!("verified: none of the {} remaining data files holds it", t.files_checked)
            } else {
                format!("NOT VERIFIED: {} file(s) still hold it: {}", t.still_holding.len(), t.still_holding.join(", "))
            };
            writeln!(
                f,
                "{} ({}): {} rows deleted in version {}, {} files rewritten, {} files removed by vacuum; {verdict}",
                t.table, t.column, t.rows_deleted, t.version, t.files_rewritten, t.files_removed
            )?;
            if t.log_mentions > 0 {
                writeln!(
                    f,
                    "  note: {} log file(s) still quote the value in file statistics until the log expires (delta.logRetentionDuration)",
                    t.log_mentions
                )?;
            }
        }
        if !self.untouched.is_empty() {
            writeln!(f, "tables without a key column: {}", self.untouched.join(", "))?;
        }
        write!(f, "{}", if self.verified() { "forgotten everywhere" } else { "NOT forgotten everywhere" })
    }
}

pub async fn forget(config: &Config, keys: &[Key]) -> Result<ForgetReport> {
    if keys.is_empty() {
        return Err(PersonaError::InvalidArgument("name the customer with --key COLUMN=VALUE".into()));
    }
    let mut report = ForgetReport::default();
    for entry in super::all(config)? {
        let table = upkeep::open(&entry).await?;
        let schema = crate::ingest::writer::schema_of(&table).unwrap_or_else(|| Arc::new(datafusion::arrow::datatypes::Schema::empty()));
        let Some((key, field)) = keys.iter().find_map(|k| schema.field_with_name(&k.column).ok().map(|f| (k, f.clone()))) else {
            report.untouched.push(entry.display_name());
            continue;
        };
        report.tables.push(forget_in(&entry, table, key, field.data_type()).await?);
    }
    Ok(report)
}

async fn forget_in(entry: &Entry, table: DeltaTable, key: &Key, data_type: &DataType) -> Result<Forgotten> {
    let name = entry.display_name();
    let delta_err = |e| PersonaError::delta(&name, e);
    let (table, deleted) = table.delete().with_predicate(predicate(key, data_type)).await.map_err(delta_err)?;
    let (table, vacuumed) = table
        .vacuum()
        .with_retention_period(chrono::Duration::zero())
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .await
        .map_err(delta_err)?;
    let (files_checked, still_holding) = files_holding(&table, key).await?;
    Ok(Forgotten {
        table: name.clone(),
        column: key.column.clone(),
        rows_deleted: deleted.num_deleted_rows.unwrap_or(0) as u64,
        files_rewritten: deleted.num_removed_files as u64,
        files_removed: vacuumed.files_deleted.len() as u64,
        files_checked,
        still_holding,
        log_mentions: log_mentions(&table, &key.value).await?,
        version: table.version().unwrap_or(0),
    })
}

/// `"column" = value`, the value written as the column's type so file statistics prune.
fn predicate(key: &Key, data_type: &DataType) -> String {
    let column = crate::ingest::writer::quote(&key.column);
    let text = format!("'{}'", key.value.replace('\'', "''"));
    match data_type {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 if key.value.parse::<i64>().is_ok() => {
            format!("{column} = {}", key.value)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => format!("{column} = {text}"),
        _ => format!("CAST({column} AS VARCHAR) = {text}"),
    }
}

/// Reads the key column of every Parquet file under the table's location (data files,
/// change-feed files, orphans alike) and returns how many were read and which hold the value.
pub async fn files_holding(table: &DeltaTable, key: &Key) -> Result<(usize, Vec<String>)> {
    let store = table.object_store();
    let objects: Vec<_> = store.list(None).try_collect().await.map_err(|e| PersonaError::Io(std::io::Error::other(e)))?;
    let partition = format!("{}={}", key.column, key.value);
    let mut checked = 0;
    let mut holding = Vec::new();
    for object in objects {
        let path = object.location.to_string();
        if !path.ends_with(".parquet") || path.starts_with("_delta_log/") {
            continue;
        }
        checked += 1;
        let decoded = percent_decode(&path);
        if decoded.split('/').any(|segment| segment == partition) {
            holding.push(path);
            continue;
        }
        let bytes = store
            .get(&object.location)
            .await
            .map_err(|e| PersonaError::Io(std::io::Error::other(e)))?
            .bytes()
            .await
            .map_err(|e| PersonaError::Io(std::io::Error::other(e)))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| PersonaError::Io(std::io::Error::other(e)))?;
        let Some(index) = builder.parquet_schema().columns().iter().position(|c| c.name() == key.column) else { continue };
        let mask = ProjectionMask::leaves(builder.parquet_schema(), [index]);
        let reader = builder.with_projection(mask).build().map_err(|e| PersonaError::Io(std::io::Error::other(e)))?;
        let mut found = false;
        for batch in reader {
            let batch = batch?;
            let text = cast(batch.column(0), &DataType::Utf8)?;
            let text = text.as_string::<i32>();
            if (0..text.len()).any(|i| text.is_valid(i) && text.value(i) == key.value) {
                found = true;
                break;
            }
        }
        if found {
            holding.push(path);
        }
    }
    Ok((checked, holding))
}

/// Log files whose JSON quotes the value as a string or a number.
async fn log_mentions(table: &DeltaTable, value: &str) -> Result<usize> {
    let store = table.object_store();
    let prefix = deltalake::Path::from("_delta_log");
    let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.map_err(|e| PersonaError::Io(std::io::Error::other(e)))?;
    let quoted = serde_json::to_string(value).unwrap_or_default();
    let numeric = value.parse::<f64>().is_ok();
    let mut count = 0;
    for object in objects.iter().filter(|o| o.location.as_ref().ends_with(".json")) {
        let bytes = store.get(&object.location).await.map_err(|e| PersonaError::Io(std::io::Error::other(e)))?.bytes().await.map_err(|e| PersonaError::Io(std::io::Error::other(e)))?;
        let text = String::from_utf8_lossy(&bytes);
        let as_number = numeric && [",", "}"].iter().any(|end| text.contains(&format!(":{value}{end}")));
        if text.contains(&format!(":{quoted}")) || as_number {
            count += 1;
        }
    }
    Ok(count)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_predicates() {
        let k: Key = "CustomerID=17850".parse().unwrap();
        assert_eq!(predicate(&k, &DataType::Int64), "\"CustomerID\" = 17850");
        assert_eq!(predicate(&k, &DataType::Utf8), "\"CustomerID\" = '17850'");
        assert!("nothing".parse::<Key>().is_err());
        assert_eq!(percent_decode("customer_id=a%20b/x"), "customer_id=a b/x");
    }
}
