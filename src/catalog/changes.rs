//! `table_changes('events', 3 [, 5])`: the Delta change data feed of a table as rows.
//!
//! Each row is a row inserted, deleted or updated by a commit between the two versions
//! (inclusive; the end defaults to the newest version), with the table's columns and
//! `_change_type` (`insert`, `delete`, `update_preimage`, `update_postimage`), `_commit_version`
//! and `_commit_timestamp`. A start or end given as a string is a time (`'2026-01-01 00:00:00'`,
//! UTC when no zone is given). The table must record its changes
//! (`delta.enableChangeDataFeed = true`, which tables persona creates have).
//!
//! DataFusion plans table functions synchronously, so this function reads the table as the
//! catalog last loaded it; `query.rs` refreshes every table a `table_changes` call names just
//! before planning, so the newest commit is always included.

use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use deltalake::delta_datafusion::DeltaCdfTableProvider;
use futures::TryStreamExt;

use super::{DeltaSchema, USER_SCHEMA, versions};
use crate::error::{PersonaError, Result};

pub const NAME: &str = "table_changes";

#[derive(Debug)]
pub struct TableChanges {
    catalog: Arc<dyn CatalogProvider>,
}

impl TableChanges {
    pub fn new(catalog: Arc<dyn CatalogProvider>) -> Self {
        Self { catalog }
    }
}

/// `events` -> (`public`, `events`); `persona.customers` -> (`persona`, `customers`).
pub fn split_name(name: &str) -> (&str, &str) {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [table] => (USER_SCHEMA, table),
        [.., schema, table] => (schema, table),
        [] => (USER_SCHEMA, name),
    }
}

/// A version bound: a number, or a time as text.
enum Bound {
    Version(u64),
    Time(chrono::DateTime<chrono::Utc>),
}

fn bound(expr: &Expr, which: &str) -> Result<Bound> {
    let usage = || {
        PersonaError::InvalidArgument(format!(
            "{NAME}: the {which} must be a version number or a time string, e.g. {NAME}('events', 3, 5)"
        ))
    };
    let Expr::Literal(value, _) = expr else { return Err(usage()) };
    match value {
        ScalarValue::Int64(Some(v)) if *v >= 0 => Ok(Bound::Version(*v as u64)),
        ScalarValue::Int32(Some(v)) if *v >= 0 => Ok(Bound::Version(*v as u64)),
        ScalarValue::UInt64(Some(v)) => Ok(Bound::Version(*v)),
        ScalarValue::Utf8(Some(t)) | ScalarValue::Utf8View(Some(t)) | ScalarValue::LargeUtf8(Some(t)) => {
            Ok(Bound::Time(versions::parse_timestamp(t)?))
        }
        _ => Err(usage()),
    }
}

/// The table name a `table_changes` call reads, for refreshing it before planning.
pub fn table_argument(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Literal(ScalarValue::Utf8(Some(t)) | ScalarValue::Utf8View(Some(t)), _) => Some(t),
        _ => None,
    }
}

impl TableChanges {
    fn provider(&self, args: &[Expr]) -> Result<Arc<dyn TableProvider>> {
        let usage = || PersonaError::InvalidArgument(format!("usage: {NAME}('table', start_version [, end_version])"));
        if args.len() < 2 || args.len() > 3 {
            return Err(usage());
        }
        let name = table_argument(&args[0]).ok_or_else(usage)?;
        let (schema_name, table_name) = split_name(name);
        let schema = self
            .catalog
            .schema(schema_name)
            .ok_or_else(|| PersonaError::TableNotFound(format!("{name}: no schema `{schema_name}`")))?;
        let delta_schema = schema
            .downcast_ref::<DeltaSchema>()
            .ok_or_else(|| PersonaError::TableNotFound(format!("{name} is not a Delta table")))?;
        let followed = delta_schema
            .followed_now(table_name)
            .ok_or_else(|| PersonaError::TableNotFound(format!("{name}; list tables with SHOW TABLES")))?;
        let table = followed.loaded();
        let newest = table.version().unwrap_or(0);
        use deltalake::table::config::TablePropertiesExt;
        let state = table.snapshot().map_err(|e| PersonaError::delta(name, e))?;
        if !state.table_config().enable_change_data_feed() {
            return Err(PersonaError::InvalidArgument(format!(
                "table {name} does not record its changes: set its property delta.enableChangeDataFeed = true \
                 (tables persona creates have it), then changes from that version on can be read"
            )));
        }
        let mut builder = table.clone().scan_cdf();
        let check = |v: u64, which: &str| {
            if v > newest {
                Err(PersonaError::VersionNotFound(format!("{NAME}: table {name} has no version {v} ({which}): its versions are 0 to {newest}")))
            } else {
                Ok(v)
            }
        };
        let start = match bound(&args[1], "start")? {
            Bound::Version(v) => {
                builder = builder.with_starting_version(check(v, "start")?);
                Some(v)
            }
            Bound::Time(t) => {
                builder = builder.with_starting_timestamp(t);
                None
            }
        };
        if let Some(end) = args.get(2) {
            match bound(end, "end")? {
                Bound::Version(v) => {
                    if start.is_some_and(|s| v < s) {
                        return Err(PersonaError::InvalidArgument(format!(
                            "{NAME}: the end version {v} is before the start version {}",
                            start.unwrap_or(0)
                        )));
                    }
                    builder = builder.with_ending_version(check(v, "end")?);
                }
                Bound::Time(t) => builder = builder.with_ending_timestamp(t),
            }
        } else {
            builder = builder.with_ending_version(newest);
        }
        Ok(Arc::new(Changes(DeltaCdfTableProvider::try_new(builder).map_err(|e| PersonaError::delta(name, e))?)))
    }
}

/// The change feed as one sealed scan. delta-rs plans it as a union of scans, some of which
/// may have no partitions (a version range with no removed files); DataFusion's optimizer then
/// pushes an `ORDER BY` into such an empty branch and rejects its own plan. Sealing the scan
/// keeps the optimizer out of it: it is read as one partition, the union's parts in turn.
#[derive(Debug)]
struct Changes(DeltaCdfTableProvider);

#[async_trait::async_trait]
impl TableProvider for Changes {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> datafusion::logical_expr::TableType {
        self.0.table_type()
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let inner = self.0.scan(state, projection, filters, limit).await?;
        Ok(Arc::new(Sealed::new(inner)))
    }
}

#[derive(Debug)]
struct Sealed {
    inner: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl Sealed {
    fn new(inner: Arc<dyn ExecutionPlan>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(inner.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self { inner, properties: Arc::new(properties) }
    }
}

impl DisplayAs for Sealed {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "TableChangesExec")
    }
}

impl ExecutionPlan for Sealed {
    fn name(&self) -> &'static str {
        "TableChangesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn datafusion::physical_plan::PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, _partition: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let inner = self.inner.clone();
        let parts = inner.output_partitioning().partition_count();
        let streams = futures::stream::iter((0..parts).map(move |p| inner.execute(p, context.clone())));
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.inner.schema(), streams.try_flatten())))
    }
}

impl TableFunctionImpl for TableChanges {
    fn call_with_args(&self, args: datafusion::catalog::TableFunctionArgs) -> DfResult<Arc<dyn TableProvider>> {
        Ok(self.provider(args.exprs())?)
    }
}
