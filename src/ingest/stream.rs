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
//! Retries after a lost acknowledgement: a stream has a Delta application transaction id, and
//! each micro-batch commits, with its rows, how many rows of the stream are now in the table
//! (the txn version), the way Spark's streaming sink does. A stream sent again under the same id
//! skips as many leading rows as the table already holds for it, however the client batches
//! them, and commits the rest. The id is the client's `x-persona-ingest-id` header (or
//! `persona.ingest_id` ingest option); a stream without one is known by a SHA-256 of its first
//! micro-batch, so sending the very same rows again adds nothing — name streams to append
//! identical rows on purpose, and use a new name for each new stream.
//!
//! Micro-batches are cut at exactly `batch_rows` rows (client batches are sliced), so a retry
//! forms the same first micro-batch whatever its batch sizes; rows are conformed to the table's
//! columns (new tables store what Delta can: no unsigned or view types).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, RecordBatch, new_null_array};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::physical_plan::memory::MemoryStream;
use deltalake::DeltaTable;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::{Action, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::config::TableProperty;
use deltalake::table::state::DeltaTableState;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{columns, encoding};
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
    /// Rows an earlier attempt of the same stream had already committed.
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
            return Err(PersonaError::TableNotFound(format!("{}; ingest in create mode to create it", request.display)));
        }
        _ => {}
    }
    let what = format!("ingest into {}", request.display);
    let replacing = request.if_exists == IfExists::Replace;
    // Replace states the table's new schema; otherwise rows must fit the table's.
    let target: SchemaRef = match &existing {
        Some(existing) if !replacing => {
            columns::check(existing, &schema, false, &what)?;
            existing.clone()
        }
        _ => Arc::new(columns::delta_schema(&schema)),
    };
    let conformed = {
        let target = target.clone();
        batches.map(move |b| b.and_then(|b| conform(&b, &target)))
    };
    if replacing {
        return replace(table, request, target, conformed).await;
    }
    append(table, request, settings, target, Box::pin(conformed)).await
}

/// The batch in the table's columns and types: by name, cast, absent columns NULL.
fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    let columns: Vec<ArrayRef> = target
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => Ok(cast(c, f.data_type())?),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<_>>()?;
    Ok(RecordBatch::try_new(target.clone(), columns)?)
}

/// The whole stream as one overwrite commit (creating the table when it is missing).
async fn replace<S>(table: DeltaTable, request: &IngestRequest, schema: SchemaRef, batches: S) -> Result<Ingested>
where
    S: Stream<Item = Result<RecordBatch>> + Send + 'static,
{
    let stream = datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
        schema.clone(),
        batches.map(|b| b.map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))),
    );
    let write = WriteRequest {
        table: request.table.clone(),
        mode: Mode::Overwrite,
        partition_by: Vec::new(),
        // ADBC's replace means "drop and create": the new rows' columns become the table's.
        allow_new_columns: true,
        app_ids: Vec::new(),
        metadata: serde_json::json!({"operation": "flight ingest", "mode": "replace"}),
        retries: 0,
    };
    let written = writer::write(table, schema, Box::pin(stream), &write).await?;
    Ok(Ingested { rows: written.rows_inserted, commits: 1, skipped_rows: 0, version: Some(written.version) })
}

/// Where a stream stands: its id and how many of its rows the table holds.
struct Progress {
    app_id: Option<String>,
    /// Rows of the stream committed by any attempt (the txn version).
    committed: u64,
    /// Rows of the stream cut into micro-batches so far.
    offset: u64,
}

async fn append<S>(table: DeltaTable, request: &IngestRequest, settings: &IngestConfig, schema: SchemaRef, mut batches: S) -> Result<Ingested>
where
    S: Stream<Item = Result<RecordBatch>> + Send + Unpin + 'static,
{
    let latency = Duration::from_millis(settings.batch_latency_ms);
    let limit = settings.batch_rows.max(1);
    let mut progress = Progress { app_id: request.ingest_id.as_ref().map(|id| format!("persona-ingest:{id}")), committed: 0, offset: 0 };
    if let Some(id) = &progress.app_id {
        progress.committed = committed_rows(&table, id).await?;
    }
    let mut writer = Committer::new(request, &schema, table);
    let mut pending: Vec<RecordBatch> = Vec::new();
    let mut pending_rows = 0usize;
    loop {
        // Wait for the next batch; with rows waiting, only as long as the latency allows.
        let next = if pending.is_empty() {
            batches.next().await
        } else {
            match tokio::time::timeout(latency, batches.next()).await {
                Ok(next) => next,
                Err(_) => {
                    writer.commit(std::mem::take(&mut pending), &mut progress).await?;
                    pending_rows = 0;
                    continue;
                }
            }
        };
        let Some(batch) = next else { break };
        let mut batch = batch?;
        // Cut at exactly `limit` rows, so micro-batches do not depend on the client's batches.
        while pending_rows + batch.num_rows() >= limit {
            let take = limit - pending_rows;
            pending.push(batch.slice(0, take));
            batch = batch.slice(take, batch.num_rows() - take);
            writer.commit(std::mem::take(&mut pending), &mut progress).await?;
            pending_rows = 0;
        }
        if batch.num_rows() > 0 {
            pending_rows += batch.num_rows();
            pending.push(batch);
        }
    }
    // A stream with no rows still creates the table it names (with the stream's schema).
    if !pending.is_empty() || !writer.created() {
        writer.commit(pending, &mut progress).await?;
    }
    writer.settle().await?;
    Ok(writer.done)
}

/// A micro-batch written to Parquet files, waiting for its commit.
struct Encoded {
    adds: Vec<Action>,
    rows: u64,
    /// The stream's app id and its row count once this micro-batch is in.
    txn: (String, u64),
    /// The rows of the micro-batch that creates the table, kept to be written again into the
    /// table of another client that created it first (which may be partitioned).
    creating: Option<Vec<RecordBatch>>,
}

/// Micro-batches on their way into the table: each is encoded to Parquet in a task of its
/// own, up to one per core at once while the next is received, and committed in stream order,
/// so the txn version (rows of the stream in the table) only grows and a failed micro-batch
/// leaves every later one uncommitted. The first micro-batch of a new table is encoded the
/// same way and committed with the table's creation.
struct Committer {
    request: IngestRequest,
    /// The table's columns (Arrow), for a table this stream creates.
    schema: SchemaRef,
    table: DeltaTable,
    /// What the next commit is made against: the table after the last commit.
    state: Option<DeltaTableState>,
    encoding: VecDeque<tokio::task::JoinHandle<Result<Encoded>>>,
    depth: usize,
    done: Ingested,
}

impl Committer {
    fn new(request: &IngestRequest, schema: &SchemaRef, table: DeltaTable) -> Self {
        let state = table.snapshot().ok().cloned();
        let depth = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            request: request.clone(),
            schema: schema.clone(),
            table,
            state,
            encoding: VecDeque::new(),
            depth,
            done: Ingested::default(),
        }
    }

    fn name(&self) -> &str {
        &self.request.table.name
    }

    /// The table exists, or the micro-batch that creates it is on its way: with no table, the
    /// only micro-batch ever queued is the creating one.
    fn created(&self) -> bool {
        self.state.is_some() || !self.encoding.is_empty()
    }

    /// Commits every micro-batch still being encoded.
    async fn settle(&mut self) -> Result<()> {
        while !self.encoding.is_empty() {
            self.commit_oldest().await?;
        }
        Ok(())
    }

    /// Commits the oldest encoded micro-batch; on failure, drops every later one.
    async fn commit_oldest(&mut self) -> Result<()> {
        let Some(task) = self.encoding.pop_front() else { return Ok(()) };
        let result = match task.await.map_err(|e| PersonaError::Io(std::io::Error::other(e))) {
            Ok(Ok(encoded)) => self.commit_encoded(encoded).await,
            Ok(Err(e)) | Err(e) => Err(e),
        };
        if result.is_err() {
            for task in self.encoding.drain(..) {
                task.abort();
            }
        }
        result
    }

    async fn commit_encoded(&mut self, encoded: Encoded) -> Result<()> {
        let rows = encoded.rows;
        let properties = CommitProperties::default()
            .with_application_transaction(Transaction::new(&encoded.txn.0, encoded.txn.1 as i64))
            .with_metadata([("persona".to_string(), serde_json::json!({"operation": "flight ingest", "rows": rows}))]);
        let Some(state) = &self.state else { return self.create(encoded, properties).await };
        let partition_by: Vec<String> = state.metadata().partition_columns().to_vec();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!partition_by.is_empty()).then_some(partition_by),
            predicate: None,
        };
        let finalized = CommitBuilder::from(properties.with_max_retries(APPEND_RETRIES))
            .with_actions(encoded.adds)
            .build(Some(state), self.table.log_store(), operation)
            .await
            .map_err(|e| writer::commit_error(self.name(), e))?;
        self.committed(rows, finalized.version() as u64);
        self.state = Some(finalized.snapshot());
        Ok(())
    }

    fn committed(&mut self, rows: u64, version: u64) {
        self.done.rows += rows;
        self.done.commits += 1;
        self.done.version = Some(version);
    }

    /// Creates the table with its first micro-batch in the same commit.
    async fn create(&mut self, encoded: Encoded, properties: CommitProperties) -> Result<()> {
        let columns: StructType = self.schema.as_ref().try_into_kernel().map_err(|e| PersonaError::delta(self.name(), e.into()))?;
        let created = self
            .table
            .clone()
            .create()
            .with_columns(columns.fields().cloned())
            .with_configuration_property(TableProperty::EnableChangeDataFeed, Some("true"))
            .with_save_mode(SaveMode::ErrorIfExists)
            .with_actions(encoded.adds)
            // No retries: when another client has committed version 0 first, delta-rs would
            // retry this commit as version 1 and put this table's metadata over the winner's.
            .with_commit_properties(properties.with_max_retries(0))
            .await;
        let table = match created {
            Ok(table) => table,
            Err(e) => {
                let Ok(table) = writer::open(&self.request.table).await else { return Err(PersonaError::delta(self.name(), e)) };
                let Some(existing) = writer::schema_of(&table) else { return Err(PersonaError::delta(self.name(), e)) };
                if committed_rows(&table, &encoded.txn.0).await? >= encoded.txn.1 {
                    // This commit landed and only what came after it failed.
                    table
                } else {
                    self.may_append_to_winner(&existing)?;
                    // Its layout may differ (partitions), so the rows are written again.
                    self.append_to_winner(table, encoded.creating.unwrap_or_default(), &encoded.txn).await?
                }
            }
        };
        self.committed(encoded.rows, table.version().unwrap_or(0) as u64);
        self.state = table.snapshot().ok().cloned();
        self.table = table;
        Ok(())
    }

    /// Whether this stream, having lost the race to create the table, may append to the table
    /// the winner created: not when it asked to fail on an existing table, and not when the
    /// winner's columns differ, since every later micro-batch was shaped for this stream's
    /// own columns. Nothing of this stream is committed then; a retry appends as usual.
    fn may_append_to_winner(&self, existing: &Schema) -> Result<()> {
        if self.request.if_exists == IfExists::Fail {
            return Err(PersonaError::AlreadyExists(format!(
                "table {} was created by another client meanwhile; ingest in append or replace mode to add to it",
                self.request.display
            )));
        }
        let same_columns = existing.fields().len() == self.schema.fields().len()
            && self.schema.fields().iter().all(|f| existing.field_with_name(f.name()).is_ok_and(|e| e.data_type() == f.data_type()));
        if !same_columns {
            return Err(PersonaError::Conflict(format!(
                "table {} was created by another client meanwhile with other columns ({}); nothing was written, send the stream again to append to it",
                self.request.display,
                existing.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(())
    }

    /// Writes the rows of a creating micro-batch into the table another client created.
    async fn append_to_winner(&self, table: DeltaTable, batches: Vec<RecordBatch>, txn: &(String, u64)) -> Result<DeltaTable> {
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let write = WriteRequest {
            table: self.request.table.clone(),
            mode: Mode::Append,
            partition_by: Vec::new(),
            allow_new_columns: false,
            app_ids: Vec::new(),
            metadata: serde_json::json!({"operation": "flight ingest", "rows": rows}),
            retries: APPEND_RETRIES,
        };
        let stream = MemoryStream::try_new(batches, self.schema.clone(), None)?;
        let written = writer::write_with_transaction(table, self.schema.clone(), Box::pin(stream), &write, Some((&txn.0, txn.1))).await?;
        match written.table {
            Some(t) => Ok(t),
            None => writer::open(&self.request.table).await,
        }
    }

    /// A Parquet writer for the table: its own layout once it exists, none (no partitions,
    /// default settings) for the table this stream creates.
    fn parquet_writer(&self) -> Result<RecordBatchWriter> {
        let made = if self.state.is_some() {
            RecordBatchWriter::for_table(&self.table)
        } else {
            let options = self.request.table.storage_options.clone().into_iter().collect();
            RecordBatchWriter::try_new(self.request.table.url.as_str(), self.schema.clone(), None, Some(options))
        };
        made.map_err(|e| PersonaError::delta(self.name(), e))
    }

    /// Starts one micro-batch, less the rows an earlier attempt committed.
    async fn commit(&mut self, batches: Vec<RecordBatch>, progress: &mut Progress) -> Result<()> {
        let rows: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let app_id = match &progress.app_id {
            Some(id) => id.clone(),
            None => {
                // An unnamed stream is known by its first micro-batch.
                let id = format!("persona-ingest:{}", fingerprint(&self.schema, &batches)?);
                progress.committed = committed_rows(&self.table, &id).await?;
                progress.app_id = Some(id.clone());
                id
            }
        };
        let start = progress.offset;
        progress.offset += rows;
        let already = progress.committed.saturating_sub(start).min(rows);
        self.done.skipped_rows += already;
        if already == rows && (rows > 0 || self.created()) {
            return Ok(());
        }
        let fresh = skip_rows(batches, already as usize);
        progress.committed = progress.offset;
        let txn = (app_id, progress.offset);
        if self.encoding.len() >= self.depth || self.state.is_none() {
            // The creating commit lands before the next micro-batch is encoded: if another
            // client created the table first, its layout (partitions) is the one to write.
            self.commit_oldest().await?;
        }
        let parquet = self.parquet_writer()?;
        let creating = self.state.is_none().then(|| fresh.clone());
        let name = self.name().to_string();
        self.encoding.push_back(tokio::spawn(async move {
            let rows = fresh.iter().map(|b| b.num_rows() as u64).sum();
            let mut parquet = parquet.with_writer_properties(encoding::writer_properties(&fresh)?);
            for batch in fresh {
                parquet.write(batch).await.map_err(|e| PersonaError::delta(&name, e))?;
            }
            let adds = parquet.flush().await.map_err(|e| PersonaError::delta(&name, e))?;
            Ok(Encoded { adds: adds.into_iter().map(Action::Add).collect(), rows, txn, creating })
        }));
        Ok(())
    }
}

/// The batches without their first `n` rows.
fn skip_rows(batches: Vec<RecordBatch>, mut n: usize) -> Vec<RecordBatch> {
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        if n >= b.num_rows() {
            n -= b.num_rows();
        } else {
            out.push(b.slice(n, b.num_rows() - n));
            n = 0;
        }
    }
    out
}

/// Rows of the stream `app_id` the table holds: the txn version its last commit recorded.
async fn committed_rows(table: &DeltaTable, app_id: &str) -> Result<u64> {
    Ok(writer::transaction_version(table, app_id).await?.unwrap_or(0))
}

/// SHA-256 of batches in Arrow IPC form: the same rows in the same types hash the same, and
/// how they are cut does not matter (each batch is hashed as one).
fn fingerprint(schema: &Schema, batches: &[RecordBatch]) -> Result<String> {
    let batch = concat_batches(&Arc::new(schema.clone()), batches)?;
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
    writer.write(&batch)?;
    writer.finish()?;
    let Hashing(hasher) = writer.into_inner()?;
    Ok(hex::encode(hasher.finalize()))
}
