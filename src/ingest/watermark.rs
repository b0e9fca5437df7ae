//! `persona.load_watermarks`: what each load took from each source file, so the next load of
//! the same folder or pattern reads only files that are new, grew or changed.
//!
//! One row per (table, source file), updated in place (a Delta merge on those two columns) each
//! time the file is loaded again: its size, modification time and SHA-256 when loaded, the
//! records read from it (loaded plus rejected), and the table version the rows landed in. The
//! watermark saves work; it is not what makes a load idempotent (the Delta transaction ids in
//! the target table are, see `load.rs`), so deleting this table only makes the next load hash
//! every file again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimestampMicrosecondType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;

use super::columns::timestamp_type;
use super::writer::{self, Mode, WriteRequest};
use crate::config::TableConfig;
use crate::error::Result;

pub const TABLE: &str = crate::store::LOAD_WATERMARKS;

/// What the last load of one source file into one table took.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub table: String,
    pub source: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
    pub sha256: String,
    pub records: u64,
    pub rows: u64,
    pub rejected: u64,
    pub version: u64,
    pub loaded_at: DateTime<Utc>,
}

pub fn location(data_dir: &Path) -> Result<TableConfig> {
    crate::store::location(data_dir, TABLE)
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("table_name", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, true),
        Field::new("size_bytes", DataType::Int64, true),
        Field::new("modified_at", timestamp_type(), true),
        Field::new("sha256", DataType::Utf8, true),
        Field::new("records", DataType::Int64, true),
        Field::new("rows_loaded", DataType::Int64, true),
        Field::new("rows_rejected", DataType::Int64, true),
        Field::new("table_version", DataType::Int64, true),
        Field::new("loaded_at", timestamp_type(), true),
    ]))
}

/// The marks of one table, by source path.
pub async fn read(data_dir: &Path, table: &str) -> Result<HashMap<String, Mark>> {
    let config = location(data_dir)?;
    if config.url.scheme() == "file" && !has_log(&config) {
        return Ok(HashMap::new());
    }
    let delta = writer::open(&config).await?;
    if delta.version().is_none() {
        return Ok(HashMap::new());
    }
    let ctx = SessionContext::new();
    ctx.register_table(TABLE, crate::catalog::scan::provider(&delta).await?)?;
    let wanted = schema();
    let columns: Vec<&str> = wanted.fields().iter().map(|f| f.name().as_str()).collect();
    let df = ctx
        .table(TABLE)
        .await?
        .filter(datafusion::prelude::col("table_name").eq(datafusion::prelude::lit(table)))?
        .select_columns(&columns)?;
    let batches = df.collect().await?;
    let mut marks = HashMap::new();
    for b in &batches {
        // Read back in the written types (the reader may hand strings over as views).
        let columns = b
            .columns()
            .iter()
            .zip(schema().fields())
            .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let b = RecordBatch::try_new(schema(), columns)?;
        let text = |i: usize| b.column(i).as_string::<i32>().clone();
        let number = |i: usize| b.column(i).as_primitive::<Int64Type>().clone();
        let time = |i: usize| b.column(i).as_primitive::<TimestampMicrosecondType>().clone();
        let (tables, sources, sizes, modified, hashes) = (text(0), text(1), number(2), time(3), text(4));
        let (records, rows, rejected, versions, loaded) = (number(5), number(6), number(7), number(8), time(9));
        for r in 0..b.num_rows() {
            let at = |a: &TimestampMicrosecondArray| DateTime::from_timestamp_micros(a.value(r)).unwrap_or_default();
            let n = |a: &Int64Array| if a.is_valid(r) { a.value(r).max(0) as u64 } else { 0 };
            let mark = Mark {
                table: tables.value(r).to_string(),
                source: sources.value(r).to_string(),
                size: n(&sizes),
                modified: at(&modified),
                sha256: hashes.value(r).to_string(),
                records: n(&records),
                rows: n(&rows),
                rejected: n(&rejected),
                version: n(&versions),
                loaded_at: at(&loaded),
            };
            marks.insert(mark.source.clone(), mark);
        }
    }
    Ok(marks)
}

fn has_log(config: &TableConfig) -> bool {
    config.url.to_file_path().is_ok_and(|d| d.join("_delta_log").is_dir())
}

/// Records marks (one commit; a source already marked for the table is updated).
pub async fn record(data_dir: &Path, marks: &[Mark]) -> Result<()> {
    if marks.is_empty() {
        return Ok(());
    }
    let micros = |t: &DateTime<Utc>| t.timestamp_micros();
    let strings = |f: fn(&Mark) -> &str| Arc::new(StringArray::from_iter_values(marks.iter().map(f))) as _;
    let numbers = |f: fn(&Mark) -> u64| Arc::new(Int64Array::from_iter_values(marks.iter().map(|m| f(m) as i64))) as _;
    let times = |f: fn(&Mark) -> &DateTime<Utc>| {
        Arc::new(TimestampMicrosecondArray::from_iter_values(marks.iter().map(|m| micros(f(m)))).with_timezone("UTC")) as _
    };
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            strings(|m| &m.table),
            strings(|m| &m.source),
            numbers(|m| m.size),
            times(|m| &m.modified),
            strings(|m| &m.sha256),
            numbers(|m| m.records),
            numbers(|m| m.rows),
            numbers(|m| m.rejected),
            numbers(|m| m.version),
            times(|m| &m.loaded_at),
        ],
    )?;
    let config = location(data_dir)?;
    let table = writer::open(&config).await?;
    let stream = Box::pin(RecordBatchStreamAdapter::new(schema(), futures::stream::iter([Ok(batch)])));
    let request = WriteRequest {
        table: config,
        mode: Mode::Merge { key: vec!["table_name".into(), "source".into()] },
        partition_by: Vec::new(),
        allow_new_columns: false,
        app_ids: Vec::new(),
        metadata: serde_json::json!({ "operation": "load watermarks" }),
        retries: 0,
    };
    writer::write(table, schema(), stream, &request).await?;
    Ok(())
}
