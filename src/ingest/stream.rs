//! Streaming appends: a client's stream of Arrow batches (Flight SQL bulk ingest, which ADBC's
//! `adbc_ingest` sends, or a plain DoPut) written to a Delta table in micro-batches.
//!
//! Batches are gathered until `[ingest] batch_rows` rows are waiting, or until the client has
//! sent nothing for `batch_latency_ms` while some are waiting; each micro-batch is one Delta
//! commit. The call is answered only after the last commit, so an acknowledged row is durable.
//!
//! Concurrent writers: appends are committed with delta-rs's conflict retry, and blind appends
//! never conflict, so several clients can stream into one table at once.
//!
//! Retries after a lost acknowledgement: every micro-batch is committed with a Delta
//! application transaction id, and a micro-batch whose id the table already holds is skipped.
//! The id is the client's `persona.ingest_id` option (or `x-persona-ingest-id` header) plus the
//! micro-batch's position in the stream when the client gives one; otherwise it is a SHA-256 of
//! the micro-batch's content, so re-sending the same rows the same way adds nothing.

use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::physical_plan::memory::MemoryStream;
use deltalake::DeltaTable;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::columns;
use super::writer::{self, APPEND_RETRIES, Mode, WriteRequest};
use crate::config::TableConfig;
use crate::error::{PersonaError, Result};

/// `[ingest]` in persona.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Rows per micro-batch (one Delta commit each).
    pub batch_rows: usize,
    /// How long waiting rows may wait for more before they are committed, in milliseconds.
    pub batch_latency_ms: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self { batch_rows: 500_000, batch_latency_ms: 1000 }
    }
}

/// What to do when the table exists, or does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    Fail,
    Append,
    /// Replace the rows in one commit (earlier versions stay readable by time travel).
    Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    Create,
    Fail,
}

#[derive(Debug, Clone)]
pub struct IngestRequest {
    pub table: TableConfig,
    /// `events`, or `public.events`: how errors name the table.
    pub display: String,
    pub if_exists: IfExists,
    pub if_missing: IfMissing,
    /// The client's name for this stream, which makes a retry recognisable.
    pub ingest_id: Option<String>,
}

/// What a stream did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ingested {
    /// Rows committed by this call.
    pub rows: u64,
    pub commits: u64,
    /// Micro-batches an earlier attempt had already committed, and their rows.
    pub skipped: u64,
    pub skipped_rows: u64,
    /// The table's version after the last commit.
    pub version: Option<u64>,
}

/// Writes the stream to the table; returns once every row is committed.
pub async fn ingest<S>(request: &IngestRequest, settings: &IngestConfig, schema: SchemaRef, batches: S) -> Result<Ingested>
where
    S: Stream<Item = Result<RecordBatch>> + Send + Unpin + 'static,
{
    let table = writer::open(&request.table).await?;
    let existing = writer::schema_of(&table);
    match (&existing, request.if_exists, request.if_missing) {
        (Some(_), IfExists::Fail, _) => {
            return Err(PersonaError::AlreadyExists(format!(
                "table {} exists; ingest in append or replace mode to add to it",
                request.display
            )));
        }
        (None, _, IfMissing::Fail) => {
            return Err(PersonaError::TableNotFound(format!(
                "{}; ingest in create mode to create it",
                request.display
            )));
        }
        _ => {}
    }
    if let Some(existing) = &existing {
        columns::check(existing, &schema, false, &format!("ingest into {}", request.display))?;
    }
    if existing.is_some() && request.if_exists == IfExists::Replace {
        return replace(table, request, schema, batches).await;
    }
    append(table, request, settings, schema, batches).await
}

/// The whole stream as one overwrite commit.
async fn replace<S>(table: DeltaTable, request: &IngestRequest, schema: SchemaRef, batches: S) -> Result<Ingested>
where
    S: Stream<Item = Result<RecordBatch>> + Send + Unpin + 'static,
{
    let stream = datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
        schema.clone(),
        batches.map(|b| b.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))),
    );
    let write = WriteRequest {
        table: request.table.clone(),
        mode: Mode::Overwrite,
        partition_by: Vec::new(),
        allow_new_columns: false,
        app_ids: Vec::new(),
        metadata: serde_json::json!({"operation": "flight ingest", "mode": "replace"}),
        retries: 0,
    };
    let written = writer::write(table, schema, Box::pin(stream), &write).await?;
    Ok(Ingested { rows: written.rows_inserted, commits: 1, skipped: 0, skipped_rows: 0, version: Some(written.version) })
}

async fn append<S>(mut table: DeltaTable, request: &IngestRequest, settings: &IngestConfig, schema: SchemaRef, mut batches: S) -> Result<Ingested>
where
    S: Stream<Item = Result<RecordBatch>> + Send + Unpin + 'static,
{
    let latency = Duration::from_millis(settings.batch_latency_ms);
    let limit = settings.batch_rows.max(1);
    let mut done = Ingested::default();
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut pending_rows = 0usize;
    let mut index = 0u64;
    loop {
        // Wait for the next batch; with rows waiting, only as long as the latency allows.
        let next = if pending.is_empty() {
            batches.next().await
        } else {
            match tokio::time::timeout(latency, batches.next()).await {
                Ok(next) => next,
                Err(_) => {
                    table = commit(table, request, &schema, std::mem::take(&mut pending), index, &mut done).await?;
                    pending_rows = 0;
                    index += 1;
                    continue;
                }
            }
        };
        match next {
            Some(batch) => {
                let batch = batch?;
                if batch.num_rows() == 0 {
                    continue;
                }
                pending_rows += batch.num_rows();
                pending.push(batch);
                if pending_rows >= limit {
                    table = commit(table, request, &schema, std::mem::take(&mut pending), index, &mut done).await?;
                    pending_rows = 0;
                    index += 1;
                }
            }
            None => break,
        }
    }
    // A stream with no rows still creates the table it names (with the stream's schema).
    if !pending.is_empty() || table.version().is_none() {
        commit(table, request, &schema, pending, index, &mut done).await?;
    }
    Ok(done)
}

/// Commits one micro-batch unless the table already holds it; returns the table to go on with.
async fn commit(
    table: DeltaTable,
    request: &IngestRequest,
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    index: u64,
    done: &mut Ingested,
) -> Result<DeltaTable> {
    let app_id = match &request.ingest_id {
        Some(id) => format!("persona-ingest:{id}:{index}"),
        None => format!("persona-ingest:{}", fingerprint(schema, &batches)?),
    };
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if already_committed(&table, &app_id).await? {
        done.skipped += 1;
        done.skipped_rows += rows as u64;
        return Ok(table);
    }
    let write = WriteRequest {
        table: request.table.clone(),
        mode: Mode::Append,
        partition_by: Vec::new(),
        allow_new_columns: false,
        app_ids: vec![app_id],
        metadata: serde_json::json!({"operation": "flight ingest", "rows": rows}),
        retries: APPEND_RETRIES,
    };
    let creating = table.version().is_none();
    let stream = MemoryStream::try_new(batches.clone(), schema.clone(), None)?;
    let written = match writer::write(table, schema.clone(), Box::pin(stream), &write).await {
        // Two clients creating the same new table at once: the one that lost finds it made
        // and appends to it, after the same checks as any append.
        Err(PersonaError::Conflict(_)) if creating => {
            let table = writer::open(&request.table).await?;
            if let Some(existing) = writer::schema_of(&table) {
                columns::check(&existing, schema, false, &format!("ingest into {}", request.display))?;
            }
            let stream = MemoryStream::try_new(batches, schema.clone(), None)?;
            writer::write(table, schema.clone(), Box::pin(stream), &write).await?
        }
        other => other?,
    };
    record(done, &written, rows);
    writer::open(&request.table).await
}

fn record(done: &mut Ingested, written: &writer::Written, rows: usize) {
    done.rows += rows as u64;
    done.commits += 1;
    done.version = Some(written.version);
}

async fn already_committed(table: &DeltaTable, app_id: &str) -> Result<bool> {
    let Ok(state) = table.snapshot() else { return Ok(false) };
    let version = state
        .transaction_version(table.log_store().as_ref(), app_id)
        .await
        .map_err(|e| PersonaError::delta("transactions", e))?;
    Ok(version.is_some())
}

/// SHA-256 of the batches in Arrow IPC form: the same rows sent the same way hash the same.
fn fingerprint(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<String> {
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut writer = StreamWriter::try_new(Hashing(Sha256::new()), schema)?;
    for b in batches {
        writer.write(b)?;
    }
    writer.finish()?;
    let Hashing(hasher) = writer.into_inner()?;
    Ok(hex::encode(hasher.finalize()))
}
