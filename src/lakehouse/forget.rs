//! `persona forget --key COLUMN=VALUE`: a customer's right to be forgotten, done and proven.
//!
//! For every table (configured, in the lakehouse folder, and persona's own) that has one of
//! the key columns, or a pair of columns `<column>_a` / `<column>_b` (persona.identity_pairs
//! names the two profiles of a linked pair so):
//! 1. delete the rows whose column holds the value (one Delta commit);
//! 2. vacuum with zero retention in full mode: the files the delete replaced, older versions'
//!    files, change-feed files (`_change_data/`, which hold the deleted rows) and orphaned files
//!    are removed, so no earlier version can be read back; this deliberately ends time travel to
//!    versions before the delete for those tables;
//! 3. read every Parquet file left under the table's location and check that none holds the
//!    value (in the key column, or as a partition directory).
//!
//! Check samples: persona.check_failures keeps sampled failing rows as JSON; a sample that
//! quotes a key (`"customer_id":17850` or `"customer_id":"17850"`) is deleted and verified like a
//! key column.
//!
//! Golden records: before anything is deleted, persona.identity_links gives the master ids the
//! forgotten profiles were linked to; their rows in persona.customers are deleted too (they
//! merged the forgotten profiles' values). The person's other profiles keep their links, so
//! `persona resolve` rebuilds the golden record from what remains, under the same id.
//!
//! The transaction log itself is not rewritten: per-file statistics in older commits may still
//! quote the value as a column's minimum or maximum until those commits expire
//! (`delta.logRetentionDuration`, 30 days by default). The report counts such log files.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use deltalake::DeltaTable;
use deltalake::operations::vacuum::VacuumMode;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::{Entry, upkeep};
use crate::catalog::PERSONA_SCHEMA;
use crate::config::Config;
use crate::ingest::progress::count;
use crate::store;
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
    /// The columns matched: a key's own column and the `<column>_a` / `<column>_b` of a pair
    /// table (`persona.identity_pairs`), or `master_customer_id` for golden records.
    pub columns: Vec<String>,
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
    /// The master customer ids the forgotten profiles were linked to (from
    /// persona.identity_links, read before it was changed) whose golden records in
    /// persona.customers were deleted.
    pub master_ids: Vec<String>,
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
                "{} ({}): {} deleted in version {}, {} rewritten, {} removed by vacuum; {verdict}",
                t.table,
                t.columns.join(", "),
                count(t.rows_deleted, "row"),
                t.version,
                count(t.files_rewritten, "file"),
                count(t.files_removed, "file"),
            )?;
            if t.log_mentions > 0 {
                writeln!(
                    f,
                    "  note: {} log file(s) still quote the value in file statistics until the log expires (delta.logRetentionDuration)",
                    t.log_mentions
                )?;
            }
        }
        if !self.master_ids.is_empty() {
            writeln!(
                f,
                "golden records deleted for master id(s) {}; run `persona resolve` to rebuild them from the person's remaining profiles, if any",
                self.master_ids.join(", ")
            )?;
        }
        if !self.untouched.is_empty() {
            writeln!(f, "tables without a key column: {}", self.untouched.join(", "))?;
        }
        write!(f, "{}", if self.verified() { "forgotten everywhere" } else { "NOT forgotten everywhere" })
    }
}

/// A key's value in one column of one table, with the column's type.
#[derive(Debug, Clone)]
struct Matched {
    key: Key,
    data_type: DataType,
}

/// The columns of `schema` the keys name: `column` itself, and `column_a` / `column_b`, the two
/// sides of a pair table such as persona.identity_pairs.
fn matching(schema: &Schema, keys: &[Key]) -> Vec<Matched> {
    let mut out: Vec<Matched> = Vec::new();
    for k in keys {
        for column in [k.column.clone(), format!("{}_a", k.column), format!("{}_b", k.column)] {
            if let Ok(field) = schema.field_with_name(&column) {
                let key = Key { column, value: k.value.clone() };
                if !out.iter().any(|m| m.key == key) {
                    out.push(Matched { key, data_type: field.data_type().clone() });
                }
            }
        }
    }
    out
}

fn schema_of(table: &DeltaTable) -> SchemaRef {
    crate::ingest::writer::schema_of(table).unwrap_or_else(|| Arc::new(Schema::empty()))
}

pub async fn forget(config: &Config, keys: &[Key]) -> Result<ForgetReport> {
    if keys.is_empty() {
        return Err(PersonaError::InvalidArgument("name the customer with --key COLUMN=VALUE".into()));
    }
    let entries = super::all(config)?;
    let is = |e: &Entry, name: &str| e.schema == PERSONA_SCHEMA && e.table.name == name;
    // Read before identity_links loses the profiles' rows: the people they belong to.
    let master_ids = match entries.iter().find(|e| is(e, store::IDENTITY_LINKS)) {
        Some(links) => master_ids_of(links, keys).await?,
        None => Vec::new(),
    };
    let mut report = ForgetReport::default();
    for entry in &entries {
        let table = upkeep::open(entry).await?;
        let schema = schema_of(&table);
        let mut matched = matching(&schema, keys);
        if is(entry, store::CUSTOMERS)
            && let Ok(field) = schema.field_with_name(MASTER_ID)
        {
            // The golden records of those people: built from the forgotten profiles too.
            report.master_ids.clone_from(&master_ids);
            matched.extend(master_ids.iter().map(|id| Matched {
                key: Key { column: MASTER_ID.into(), value: id.clone() },
                data_type: field.data_type().clone(),
            }));
        }
        let samples = if is(entry, store::CHECK_FAILURES) && schema.field_with_name(SAMPLE).is_ok() { sample_needles(keys) } else { Vec::new() };
        if matched.is_empty() && samples.is_empty() {
            report.untouched.push(entry.display_name());
            continue;
        }
        report.tables.push(forget_in(entry, table, &matched, &samples).await?);
    }
    Ok(report)
}

const MASTER_ID: &str = "master_customer_id";

/// The column of persona.check_failures holding each sampled failing row as JSON.
const SAMPLE: &str = "row";

/// How a key appears inside a JSON sample row (compact, as the check runner writes it):
/// `"customer_id":"17850"` as text, and `"customer_id":17850` followed by `,` or `}` as a number.
fn sample_needles(keys: &[Key]) -> Vec<String> {
    let mut needles = Vec::new();
    for k in keys {
        let name = serde_json::to_string(&k.column).expect("a string is JSON");
        needles.push(format!("{name}:{}", serde_json::to_string(&k.value).expect("a string is JSON")));
        if k.value.parse::<f64>().is_ok_and(f64::is_finite) {
            needles.extend([format!("{name}:{},", k.value), format!("{name}:{}}}", k.value)]);
        }
    }
    needles
}

/// The master ids persona.identity_links gives the profiles the keys name.
async fn master_ids_of(links: &Entry, keys: &[Key]) -> Result<Vec<String>> {
    let table = upkeep::open(links).await?;
    let schema = schema_of(&table);
    let matched = matching(&schema, keys);
    if matched.is_empty() || schema.field_with_name(MASTER_ID).is_err() {
        return Ok(Vec::new());
    }
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_table("links", crate::catalog::scan::provider(&table).await?)?;
    let sql = format!("SELECT DISTINCT {MASTER_ID} AS id FROM links WHERE {} ORDER BY 1", predicate(&matched));
    let mut ids = Vec::new();
    for batch in ctx.sql(&sql).await?.collect().await? {
        let column = cast(batch.column(0), &DataType::Utf8)?;
        let column = column.as_string::<i32>();
        ids.extend((0..column.len()).filter(|i| column.is_valid(*i)).map(|i| column.value(i).to_string()));
    }
    Ok(ids)
}

async fn forget_in(entry: &Entry, table: DeltaTable, matched: &[Matched], samples: &[String]) -> Result<Forgotten> {
    let name = entry.display_name();
    let delta_err = |e| PersonaError::delta(&name, e);
    let mut parts: Vec<String> = Vec::new();
    if !matched.is_empty() {
        parts.push(predicate(matched));
    }
    let sample_column = crate::ingest::writer::quote(SAMPLE);
    parts.extend(samples.iter().map(|n| format!("strpos({sample_column}, '{}') > 0", n.replace('\'', "''"))));
    let (table, deleted) = table.delete().with_predicate(parts.join(" OR ")).await.map_err(delta_err)?;
    let (table, vacuumed) = table
        .vacuum()
        .with_retention_period(chrono::Duration::zero())
        .with_enforce_retention_duration(false)
        .with_mode(VacuumMode::Full)
        .await
        .map_err(delta_err)?;
    let keys: Vec<Key> = matched.iter().map(|m| m.key.clone()).collect();
    let (files_checked, still_holding) = holding(&table, &keys, samples).await?;
    let mut columns: Vec<String> = Vec::new();
    if !samples.is_empty() {
        columns.push(format!("{SAMPLE} (JSON)"));
    }
    for k in &keys {
        if !columns.contains(&k.column) {
            columns.push(k.column.clone());
        }
    }
    let mut values: Vec<&str> = keys.iter().map(|k| k.value.as_str()).collect();
    values.sort_unstable();
    values.dedup();
    Ok(Forgotten {
        table: name.clone(),
        columns,
        rows_deleted: deleted.num_deleted_rows.unwrap_or(0) as u64,
        files_rewritten: deleted.num_removed_files as u64,
        files_removed: vacuumed.files_deleted.len() as u64,
        files_checked,
        still_holding,
        log_mentions: log_mentions(&table, &values).await?,
        version: table.version().unwrap_or(0),
    })
}

/// Rows holding any of the matched values: `"column" = value` (or `IN (...)` for several values
/// of one column), ORed over the columns, each value written as its column's type so file
/// statistics prune.
fn predicate(matched: &[Matched]) -> String {
    let mut columns: Vec<(&str, &DataType, Vec<&str>)> = Vec::new();
    for m in matched {
        match columns.iter_mut().find(|(c, _, _)| *c == m.key.column) {
            Some((_, _, values)) => values.push(&m.key.value),
            None => columns.push((&m.key.column, &m.data_type, vec![&m.key.value])),
        }
    }
    let parts: Vec<String> = columns.iter().map(|(column, data_type, values)| column_predicate(column, data_type, values)).collect();
    parts.join(" OR ")
}

fn column_predicate(column: &str, data_type: &DataType, values: &[&str]) -> String {
    let quoted = crate::ingest::writer::quote(column);
    let text = |v: &str| format!("'{}'", v.replace('\'', "''"));
    let integer = matches!(data_type, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)
        && values.iter().all(|v| v.parse::<i64>().is_ok());
    let (subject, literals): (String, Vec<String>) = if integer {
        (quoted, values.iter().map(|v| v.to_string()).collect())
    } else if matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        (quoted, values.iter().map(|v| text(v)).collect())
    } else {
        (format!("CAST({quoted} AS VARCHAR)"), values.iter().map(|v| text(v)).collect())
    };
    match literals.as_slice() {
        [one] => format!("{subject} = {one}"),
        many => format!("{subject} IN ({})", many.join(", ")),
    }
}

/// Reads the key columns of every Parquet file under the table's location (data files,
/// change-feed files, orphans alike) and returns how many were read and which hold a key's value
/// in its column (or as a partition directory).
pub async fn files_holding(table: &DeltaTable, keys: &[Key]) -> Result<(usize, Vec<String>)> {
    holding(table, keys, &[]).await
}

/// [`files_holding`], also looking for `samples` needles inside the JSON sample column.
async fn holding(table: &DeltaTable, keys: &[Key], samples: &[String]) -> Result<(usize, Vec<String>)> {
    let store = table.object_store();
    let io = |e: object_store::Error| PersonaError::Io(std::io::Error::other(e));
    let objects: Vec<_> = store.list(None).try_collect().await.map_err(io)?;
    let partitions: Vec<String> = keys.iter().map(|k| format!("{}={}", k.column, k.value)).collect();
    let mut checked = 0;
    let mut holding = Vec::new();
    for object in objects {
        let path = object.location.to_string();
        if !path.ends_with(".parquet") || path.starts_with("_delta_log/") {
            continue;
        }
        checked += 1;
        let decoded = percent_decode(&path);
        if decoded.split('/').any(|segment| partitions.iter().any(|p| p == segment)) {
            holding.push(path);
            continue;
        }
        let bytes = store.get(&object.location).await.map_err(io)?.bytes().await.map_err(io)?;
        let parquet = |e: datafusion::parquet::errors::ParquetError| PersonaError::Io(std::io::Error::other(e));
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(parquet)?;
        let columns: Vec<String> = builder.parquet_schema().columns().iter().map(|c| c.name().to_string()).collect();
        let wanted: Vec<(usize, Vec<&str>)> = columns
            .iter()
            .enumerate()
            .filter_map(|(i, name)| {
                let values: Vec<&str> = keys.iter().filter(|k| &k.column == name).map(|k| k.value.as_str()).collect();
                let values = if name == SAMPLE && !samples.is_empty() { samples.iter().map(String::as_str).collect() } else { values };
                (!values.is_empty()).then_some((i, values))
            })
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let mask = ProjectionMask::leaves(builder.parquet_schema(), wanted.iter().map(|(i, _)| *i));
        let reader = builder.with_projection(mask).build().map_err(parquet)?;
        let mut found = false;
        'batches: for batch in reader {
            let batch = batch?;
            for (column, values) in wanted.iter().map(|(i, values)| (&columns[*i], values)) {
                let Some(array) = batch.column_by_name(column) else { continue };
                let text = cast(array, &DataType::Utf8)?;
                let text = text.as_string::<i32>();
                let inside = column == SAMPLE && !samples.is_empty();
                let holds = |v: &str| if inside { values.iter().any(|n| v.contains(n)) } else { values.contains(&v) };
                if (0..text.len()).any(|i| text.is_valid(i) && holds(text.value(i))) {
                    found = true;
                    break 'batches;
                }
            }
        }
        if found {
            holding.push(path);
        }
    }
    Ok((checked, holding))
}

/// Log files whose JSON quotes one of the values as a string or a number.
async fn log_mentions(table: &DeltaTable, values: &[&str]) -> Result<usize> {
    let store = table.object_store();
    let io = |e: object_store::Error| PersonaError::Io(std::io::Error::other(e));
    let prefix = deltalake::Path::from("_delta_log");
    let objects: Vec<_> = store.list(Some(&prefix)).try_collect().await.map_err(io)?;
    let mut count = 0;
    for object in objects.iter().filter(|o| o.location.as_ref().ends_with(".json")) {
        let bytes = store.get(&object.location).await.map_err(io)?.bytes().await.map_err(io)?;
        let text = String::from_utf8_lossy(&bytes);
        let mentions = |value: &str| {
            let quoted = serde_json::to_string(value).unwrap_or_default();
            let as_number = value.parse::<f64>().is_ok() && [",", "}"].iter().any(|end| text.contains(&format!(":{value}{end}")));
            text.contains(&format!(":{quoted}")) || as_number
        };
        if values.iter().any(|v| mentions(v)) {
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
        let m = |key: &Key, data_type: DataType| Matched { key: key.clone(), data_type };
        assert_eq!(predicate(&[m(&k, DataType::Int64)]), "\"CustomerID\" = 17850");
        assert_eq!(predicate(&[m(&k, DataType::Utf8)]), "\"CustomerID\" = '17850'");
        let a = Key { column: "id_a".into(), value: "x'y".into() };
        let b = Key { column: "id_a".into(), value: "7".into() };
        let c = Key { column: "n".into(), value: "7".into() };
        assert_eq!(
            predicate(&[m(&a, DataType::Utf8), m(&b, DataType::Utf8), m(&c, DataType::Float64)]),
            "\"id_a\" IN ('x''y', '7') OR CAST(\"n\" AS VARCHAR) = '7'"
        );
        let schema = Schema::new(vec![
            datafusion::arrow::datatypes::Field::new("source_customer_id_a", DataType::Utf8, false),
            datafusion::arrow::datatypes::Field::new("source_customer_id_b", DataType::Utf8, false),
            datafusion::arrow::datatypes::Field::new("customer_id", DataType::Utf8, false),
        ]);
        let keys: Vec<Key> = ["source_customer_id=5", "customer_id=5", "email=x"].iter().map(|k| k.parse().unwrap()).collect();
        let columns: Vec<String> = matching(&schema, &keys).into_iter().map(|m| m.key.column).collect();
        assert_eq!(columns, ["source_customer_id_a", "source_customer_id_b", "customer_id"]);
        assert!("nothing".parse::<Key>().is_err());
        assert_eq!(percent_decode("customer_id=a%20b/x"), "customer_id=a b/x");
    }
}
