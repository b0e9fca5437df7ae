//! Procedures a client may `CALL`: work persona does on its own tables, started over Flight
//! SQL like any query. `CALL persona.resolve()` re-runs identity resolution over
//! `public.profiles` and answers one row of figures.
//!
//! A procedure is planned as a scan of a one-partition streaming table whose stream does the
//! work when it is executed, so it follows the same path as a query: `GetFlightInfo` plans it
//! (cheap, the result schema is known) and `DoGet` runs it. Procedures write only under
//! persona's data folder, never a path a client names; those that write need write access.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::provider_as_source;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{FunctionArguments, Statement};

use crate::access::Access;
use crate::error::{PersonaError, Result};
use crate::identity::{self, Settings};

/// What procedures need beyond the session, kept as a session config extension.
#[derive(Debug, Clone)]
pub struct ProcedureEnv {
    pub data_dir: PathBuf,
    pub identity: Settings,
}

/// The procedures there are, as `CALL` names them.
pub const NAMES: [&str; 1] = ["persona.resolve"];

/// Plans `CALL name()` for a caller with `access`; `None` when the statement is not a `CALL`.
pub fn plan(ctx: &SessionContext, statement: &Statement, access: Access) -> Option<Result<LogicalPlan>> {
    let Statement::Call(function) = statement else { return None };
    let name = function.name.to_string().to_lowercase();
    Some(match name.as_str() {
        "persona.resolve" | "resolve" => {
            if access < Access::Write {
                return Some(Err(PersonaError::PermissionDenied(
                    "persona.resolve() rewrites the identity tables: it needs write access".into(),
                )));
            }
            if !matches!(&function.args, FunctionArguments::None)
                && !matches!(&function.args, FunctionArguments::List(l) if l.args.is_empty())
            {
                return Some(Err(PersonaError::InvalidArgument(
                    "persona.resolve() takes no arguments; set the rules in persona.toml [identity]".into(),
                )));
            }
            resolve_plan(ctx)
        }
        _ => Err(PersonaError::TableNotFound(format!(
            "no procedure named `{name}`; available: {}",
            NAMES.map(|n| format!("{n}()")).join(", ")
        ))),
    })
}

static RESOLVE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("profiles", DataType::Int64, false),
        Field::new("candidate_pairs", DataType::Int64, false),
        Field::new("links", DataType::Int64, false),
        Field::new("master_customer_ids", DataType::Int64, false),
        Field::new("new_ids", DataType::Int64, false),
        Field::new("merged_ids", DataType::Int64, false),
        Field::new("seconds", DataType::Float64, false),
    ]))
});

fn resolve_plan(ctx: &SessionContext) -> Result<LogicalPlan> {
    let env = ctx.state().config().get_extension::<ProcedureEnv>().ok_or_else(|| {
        PersonaError::InvalidArgument("procedures are not available in this session".into())
    })?;
    let stream = Resolve { ctx: ctx.clone(), env, schema: RESOLVE_SCHEMA.clone() };
    let table = StreamingTable::try_new(RESOLVE_SCHEMA.clone(), vec![Arc::new(stream)])?;
    Ok(LogicalPlanBuilder::scan("resolve", provider_as_source(Arc::new(table)), None)?.build()?)
}

struct Resolve {
    ctx: SessionContext,
    env: Arc<ProcedureEnv>,
    schema: SchemaRef,
}

impl std::fmt::Debug for Resolve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolve").field("data_dir", &self.env.data_dir).finish()
    }
}

impl PartitionStream for Resolve {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _task: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (ctx, env, schema) = (self.ctx.clone(), self.env.clone(), self.schema.clone());
        let work = async move {
            let s = identity::job::run(&ctx, &env.data_dir, &env.identity)
                .await
                .map_err(datafusion::error::DataFusionError::from)?;
            tracing::info!("CALL persona.resolve(): {s}");
            let count = |n: usize| Arc::new(Int64Array::from(vec![n as i64])) as _;
            Ok(RecordBatch::try_new(
                schema,
                vec![
                    count(s.profiles),
                    count(s.candidate_pairs),
                    count(s.links),
                    count(s.master_ids),
                    count(s.new_ids),
                    count(s.aliases),
                    Arc::new(Float64Array::from(vec![s.elapsed.as_secs_f64()])),
                ],
            )?)
        };
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::once(work)))
    }
}
