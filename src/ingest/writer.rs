//! One atomic Delta commit from a stream of Arrow batches: append, overwrite or merge (upsert
//! by key).
//!
//! delta-rs writes the data files first and then commits one log entry; a write that fails or
//! is interrupted before the commit leaves the table at its previous version (the orphaned
//! files are never read and `persona vacuum` removes them). The commit carries the caller's
//! Delta application transaction ids (`txn` actions), so the caller can tell later that an
//! input is already in the table. A load commits with no automatic retry: when another writer
//! commits first, the write fails cleanly and can be run again, and the txn version recorded is
//! exactly the table version the write landed in. Appends that others may race (Flight SQL
//! ingest, SQL INSERT) ask for retries: delta-rs then re-checks the commit against what landed
//! meanwhile, and blind appends never conflict with each other.
//!
//! Tables created here get `delta.enableChangeDataFeed = true`, so `table_changes(...)` works
//! on them from their first version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::provider_as_source;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::{DataFrame, SessionContext};
use deltalake::DeltaTable;
use deltalake::kernel::Transaction;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;

use super::columns;
use crate::config::TableConfig;
use crate::error::{PersonaError, Result};

/// How rows reach the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Add the rows.
    Append,
    /// Replace the table's rows with these (earlier versions stay readable by time travel).
    Overwrite,
    /// Update rows whose key matches, insert the others. Within the input, the last row for a
    /// key wins.
    Merge { key: Vec<String> },
}

/// What to write where.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub table: TableConfig,
    pub mode: Mode,
    /// Partition columns of a table this write creates (an existing table keeps its own).
    pub partition_by: Vec<String>,
    /// Columns the table lacks are added (Delta schema evolution) instead of refused.
    pub allow_new_columns: bool,
    /// Delta application transaction ids committed with the rows.
    pub app_ids: Vec<String>,
    /// Recorded in the commit's `commitInfo` under `persona`.
    pub metadata: serde_json::Value,
    /// Commit attempts after the first when another writer committed meanwhile.
    pub retries: usize,
}

/// Retries for appends that race other writers: each attempt re-reads only the new log entries.
pub const APPEND_RETRIES: usize = 15;

/// What a write did.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub version: u64,
    pub rows_inserted: u64,
    pub rows_updated: u64,
    pub files_added: u64,
    pub files_removed: u64,
    pub created: bool,
    /// The table as of the new version, for a caller that writes again (saves reading the log).
    pub table: Option<DeltaTable>,
}

/// Opens a table for writing; the result has no state when the location holds no table yet.
pub async fn open(table: &TableConfig) -> Result<DeltaTable> {
    if let Ok(dir) = table.url.to_file_path() {
        std::fs::create_dir_all(&dir)?;
    }
    let options: HashMap<String, String> = table.storage_options.clone().into_iter().collect();
    DeltaTable::try_from_url_with_storage_options(table.url.clone(), options)
        .await
        .map_err(|e| PersonaError::delta(&table.name, e))
}

/// The table's schema as Arrow, `None` when it does not exist yet.
pub fn schema_of(table: &DeltaTable) -> Option<SchemaRef> {
    table.snapshot().ok().map(|s| s.snapshot().arrow_schema())
}

/// Writes `input` (batches in `schema`) to the table as one commit.
pub async fn write(
    table: DeltaTable,
    schema: SchemaRef,
    input: SendableRecordBatchStream,
    request: &WriteRequest,
) -> Result<Written> {
    write_with_transaction(table, schema, input, request, None).await
}

/// Like [`write`], also committing the application transaction `(app id, version)` whose
/// version the caller chooses (a streaming writer's row offset, say).
pub async fn write_with_transaction(
    table: DeltaTable,
    schema: SchemaRef,
    input: SendableRecordBatchStream,
    request: &WriteRequest,
    txn: Option<(&str, u64)>,
) -> Result<Written> {
    let name = request.table.name.clone();
    let delta_err = |e| PersonaError::delta(&name, e);
    let existing = schema_of(&table);
    if let Some(existing) = &existing {
        columns::check(existing, &schema, request.allow_new_columns, &format!("table {name}"))?;
    }
    let read_version = table.version();
    let landing = read_version.map_or(0, |v| v + 1);
    let commit = CommitProperties::default()
        .with_application_transactions(
            request
                .app_ids
                .iter()
                .map(|id| Transaction::new(id, landing as i64))
                .chain(txn.map(|(id, version)| Transaction::new(id, version as i64)))
                .collect(),
        )
        .with_metadata([("persona".to_string(), request.metadata.clone())])
        .with_max_retries(request.retries);
    // delta-rs plans writes through a session that has its extension planner.
    let ctx = deltalake::delta_datafusion::create_session().into_inner();
    let source = one_shot_plan(schema.clone(), input)?;
    let key = match &request.mode {
        Mode::Merge { key } => {
            for k in key {
                if schema.field_with_name(k).is_err() {
                    return Err(PersonaError::InvalidArgument(format!("merge key `{k}` is not a column of the input")));
                }
            }
            Some(key.clone())
        }
        _ => None,
    };
    let written = match (key, existing.is_some()) {
        (Some(key), true) => {
            let source = last_row_per_key(&ctx, source, &key).await?;
            let predicate = key
                .iter()
                .map(|k| format!("target.{q} = source.{q}", q = quote(k)))
                .collect::<Vec<_>>()
                .join(" AND ");
            let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
            let (table, metrics) = table
                .merge(source, predicate)
                .with_source_alias("source")
                .with_target_alias("target")
                .with_merge_schema(request.allow_new_columns)
                .with_session_state(Arc::new(ctx.state()))
                .with_commit_properties(commit)
                .when_matched_update(|u| {
                    names.iter().fold(u, |u, n| u.update(quote(n), format!("source.{}", quote(n))))
                })
                .map_err(delta_err)?
                .when_not_matched_insert(|i| names.iter().fold(i, |i, n| i.set(quote(n), format!("source.{}", quote(n)))))
                .map_err(delta_err)?
                .await
                .map_err(|e| commit_error(&name, e))?;
            Written {
                version: table.version().unwrap_or(landing),
                rows_inserted: metrics.num_target_rows_inserted as u64,
                rows_updated: metrics.num_target_rows_updated as u64,
                files_added: metrics.num_target_files_added as u64,
                files_removed: metrics.num_target_files_removed as u64,
                created: false,
                table: Some(table),
            }
        }
        (key, exists) => {
            // A merge into a table that does not exist yet inserts every (last-per-key) row.
            let plan = match &key {
                Some(key) => last_row_per_key(&ctx, source, key).await?.logical_plan().clone(),
                None => source,
            };
            let mut builder = table
                .write(Vec::new())
                .with_input_plan(plan)
                .with_session_state(Arc::new(ctx.state()))
                .with_save_mode(if request.mode == Mode::Overwrite { SaveMode::Overwrite } else { SaveMode::Append })
                .with_table_name(&name)
                .with_commit_properties(commit);
            if request.allow_new_columns && exists {
                // An overwrite that may change columns states the table's new schema (Flight
                // SQL ingest in replace mode); an append or a load only adds columns.
                builder = builder.with_schema_mode(if request.mode == Mode::Overwrite { SchemaMode::Overwrite } else { SchemaMode::Merge });
            }
            if !exists {
                builder = builder
                    .with_partition_columns(request.partition_by.clone())
                    .with_configuration([("delta.enableChangeDataFeed".to_string(), Some("true".to_string()))]);
            }
            let table = builder.await.map_err(|e| commit_error(&name, e))?;
            let metrics = last_operation_metrics(&table).await;
            Written {
                version: table.version().unwrap_or(landing),
                rows_inserted: metrics.get("num_added_rows").copied().unwrap_or(0),
                rows_updated: 0,
                files_added: metrics.get("num_added_files").copied().unwrap_or(0),
                files_removed: metrics.get("num_removed_files").copied().unwrap_or(0),
                created: !exists,
                table: Some(table),
            }
        }
    };
    Ok(written)
}

/// Explains the one commit failure a caller can act on: another writer was first.
pub fn commit_error(name: &str, e: deltalake::DeltaTableError) -> PersonaError {
    if crate::error::is_conflict(&e) {
        return PersonaError::Conflict(format!(
            "table {name}: another writer committed a new version while this write ran; nothing was written, run it again ({e})"
        ));
    }
    PersonaError::delta(name, e)
}

/// The version the table's log records for the application transaction `app_id`, if any.
pub async fn transaction_version(table: &DeltaTable, app_id: &str) -> Result<Option<u64>> {
    let Ok(state) = table.snapshot() else { return Ok(None) };
    let version = state
        .transaction_version(table.log_store().as_ref(), app_id)
        .await
        .map_err(|e| PersonaError::delta("transactions", e))?;
    Ok(version.map(|v| v.max(0) as u64))
}

/// The numeric `operationMetrics` of the table's newest commit.
async fn last_operation_metrics(table: &DeltaTable) -> HashMap<String, u64> {
    use futures::TryStreamExt;
    let infos: Vec<_> = table.history(Some(1)).try_collect().await.unwrap_or_default();
    infos
        .first()
        .and_then(|i| i.info.get("operationMetrics"))
        .and_then(|m| m.as_object())
        .map(|m| m.iter().filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n))).collect())
        .unwrap_or_default()
}

/// `"name"`, with embedded quotes doubled.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Keeps the last input row of each key, so a merge never matches one target row twice. The
/// result is held in memory: delta-rs reads a merge's source more than once (to find the
/// files it touches, then to rewrite them), and the input stream can be read only once.
async fn last_row_per_key(ctx: &SessionContext, plan: LogicalPlan, key: &[String]) -> Result<DataFrame> {
    let columns: Vec<String> = plan.schema().fields().iter().map(|f| quote(f.name())).collect();
    ctx.register_table("persona_input", Arc::new(PlanTable(plan)))?;
    let keys = key.iter().map(|k| quote(k)).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {cols} FROM (SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY persona_ordinal DESC) AS persona_rank \
         FROM (SELECT *, row_number() OVER () AS persona_ordinal FROM persona_input)) WHERE persona_rank = 1",
        cols = columns.join(", ")
    );
    let deduplicated = ctx.sql(&sql).await?;
    let schema = Arc::new(deduplicated.schema().as_arrow().clone());
    let batches = deduplicated.collect().await?;
    Ok(ctx.read_table(Arc::new(datafusion::datasource::MemTable::try_new(schema, vec![batches])?))?)
}

/// A logical plan usable as a table in SQL.
#[derive(Debug)]
struct PlanTable(LogicalPlan);

#[async_trait::async_trait]
impl datafusion::catalog::TableProvider for PlanTable {
    fn schema(&self) -> SchemaRef {
        Arc::new(self.0.schema().as_arrow().clone())
    }
    fn table_type(&self) -> datafusion::logical_expr::TableType {
        datafusion::logical_expr::TableType::View
    }
    fn get_logical_plan(&self) -> Option<std::borrow::Cow<'_, LogicalPlan>> {
        Some(std::borrow::Cow::Borrowed(&self.0))
    }
    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::prelude::Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let view = datafusion::datasource::ViewTable::new(self.0.clone(), None);
        view.scan(state, projection, filters, limit).await
    }
}

/// A plan that reads `stream` once: the write executes it exactly once.
fn one_shot_plan(schema: SchemaRef, stream: SendableRecordBatchStream) -> Result<LogicalPlan> {
    let once = OneShot { schema: schema.clone(), stream: Mutex::new(Some(stream)) };
    let table = StreamingTable::try_new(schema, vec![Arc::new(once)])?;
    Ok(LogicalPlanBuilder::scan("input", provider_as_source(Arc::new(table)), None)?.build()?)
}

struct OneShot {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OneShot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneShot")
    }
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        match self.stream.lock().expect("stream lock").take() {
            Some(stream) => stream,
            None => {
                let err = datafusion::error::DataFusionError::Internal("the input stream of a write was read twice".into());
                Box::pin(datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                    self.schema.clone(),
                    futures::stream::once(async move { Err(err) }),
                ))
            }
        }
    }
}
