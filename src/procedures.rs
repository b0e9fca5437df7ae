//! Procedures a client may `CALL`: work persona does on its own tables, started over Flight
//! SQL like any query.
//!
//! | procedure | access | answers |
//! |---|---|---|
//! | `CALL persona.resolve()` | write | one row of identity-resolution figures |
//! | `CALL persona.preview_segment('name')` | read | each condition with the members left and removed; writes nothing |
//! | `CALL persona.run_segment('name')` | write | the run: status, members, entered, exited, ... |
//! | `CALL persona.run_checks(['name', ...])` | write | one row per check (all checks without names); also `run_checks('a', 'b')` |
//!
//! A procedure is planned as a scan of a one-partition streaming table whose stream does the
//! work when it is executed, so it follows the same path as a query: `GetFlightInfo` plans it
//! (cheap, the result schema is known) and `DoGet` runs it. Procedures write only under
//! persona's data folder, never a path a client names; those that write need write access.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::provider_as_source;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Statement, Value};
use futures::future::BoxFuture;

use crate::access::Access;
use crate::error::{PersonaError, Result};
use crate::identity::{self, Settings};
use crate::runs::{self, AudienceConfig, ChecksConfig, Runs, Trigger};

/// What procedures need beyond the session, kept as a session config extension.
#[derive(Debug, Clone)]
pub struct ProcedureEnv {
    /// The user's configured tables (empty: the embedded lakehouse), for writes that name a
    /// table which does not exist yet.
    pub tables: Vec<crate::config::TableConfig>,
    pub ingest: crate::ingest::stream::IngestConfig,
    pub data_dir: PathBuf,
    pub sql_dir: PathBuf,
    pub identity: Settings,
    pub audience: AudienceConfig,
    pub checks: ChecksConfig,
}

impl ProcedureEnv {
    fn runs(&self, ctx: &SessionContext) -> Runs {
        Runs {
            ctx: ctx.clone(),
            data_dir: self.data_dir.clone(),
            sql_dir: self.sql_dir.clone(),
            audience: self.audience.clone(),
            checks: self.checks.clone(),
            trigger: Trigger::Sql(None),
        }
    }
}

/// The procedures there are, as `CALL` names them, with the access each needs.
pub const PROCEDURES: [(&str, Access); 4] = [
    ("persona.resolve", Access::Write),
    ("persona.preview_segment", Access::Read),
    ("persona.run_segment", Access::Write),
    ("persona.run_checks", Access::Write),
];

/// Plans `CALL name(...)` for a caller with `access`; `None` when the statement is not a `CALL`.
pub fn plan(ctx: &SessionContext, statement: &Statement, access: Access) -> Option<Result<LogicalPlan>> {
    let Statement::Call(function) = statement else { return None };
    Some(plan_call(ctx, &function.name.to_string(), &function.args, access))
}

fn plan_call(ctx: &SessionContext, name: &str, args: &FunctionArguments, access: Access) -> Result<LogicalPlan> {
    let lower = name.to_lowercase();
    let qualified = if lower.contains('.') { lower.clone() } else { format!("persona.{lower}") };
    let Some((name, needed)) = PROCEDURES.iter().find(|(n, _)| *n == qualified) else {
        return Err(PersonaError::NotFound(format!(
            "procedure `{lower}`; available: {}",
            PROCEDURES.map(|(n, _)| format!("{n}()")).join(", ")
        )));
    };
    if access < *needed {
        return Err(PersonaError::PermissionDenied(format!("{name}() needs {needed} access")));
    }
    let env = ctx.state().config().get_extension::<ProcedureEnv>().ok_or_else(|| {
        PersonaError::InvalidArgument("procedures are not available in this session".into())
    })?;
    let args = string_args(name, args)?;
    // Names are checked while planning, so a typo fails in GetFlightInfo with the known names.
    let exactly_one = |args: &[String]| -> Result<String> {
        match args {
            [one] => {
                runs::project::Project::load(&env.sql_dir)?.segment(one)?;
                Ok(one.clone())
            }
            _ => Err(PersonaError::InvalidArgument(format!("{name}() takes one segment name, e.g. {name}('lapsed_high_value')"))),
        }
    };
    let ctx = ctx.clone();
    match *name {
        "persona.resolve" => {
            if !args.is_empty() {
                return Err(PersonaError::InvalidArgument(
                    "persona.resolve() takes no arguments; set the rules in persona.toml [identity]".into(),
                ));
            }
            work(resolve_schema(), move || {
                let (ctx, env) = (ctx.clone(), env.clone());
                Box::pin(async move { resolve(&ctx, &env).await })
            })
        }
        "persona.preview_segment" => {
            let segment = exactly_one(&args)?;
            work(preview_schema(), move || {
                let (runs, segment) = (env.runs(&ctx), segment.clone());
                Box::pin(async move { preview(&runs, &segment).await })
            })
        }
        "persona.run_segment" => {
            let segment = exactly_one(&args)?;
            work(run_schema(), move || {
                let (runs, segment) = (env.runs(&ctx), segment.clone());
                Box::pin(async move { run_segment(&runs, &segment).await })
            })
        }
        "persona.run_checks" => {
            let project = runs::project::Project::load(&env.sql_dir)?;
            for n in &args {
                project.check(n)?;
            }
            work(checks_schema(), move || {
                let (runs, names) = (env.runs(&ctx), args.clone());
                Box::pin(async move { run_checks(&runs, &names).await })
            })
        }
        other => unreachable!("procedure {other} is listed but not planned"),
    }
}

/// The arguments of a call as strings: string literals, given one by one (`run_checks('a', 'b')`)
/// or as an array (`run_checks(['a', 'b'])`, `ARRAY['a', 'b']`, `make_array('a', 'b')`).
fn string_args(name: &str, args: &FunctionArguments) -> Result<Vec<String>> {
    let list = match args {
        FunctionArguments::None => return Ok(Vec::new()),
        FunctionArguments::List(l) => &l.args,
        FunctionArguments::Subquery(_) => return Err(PersonaError::InvalidArgument(format!("{name}() takes string literals"))),
    };
    let mut out = Vec::new();
    for a in list {
        match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => strings_of(name, e, &mut out)?,
            other => return Err(not_a_string(name, &other.to_string())),
        }
    }
    Ok(out)
}

/// A string literal, or an array of them, appended to `out`.
fn strings_of(name: &str, e: &Expr, out: &mut Vec<String>) -> Result<()> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                out.push(s.clone());
                Ok(())
            }
            other => Err(not_a_string(name, &other.to_string())),
        },
        Expr::Nested(inner) => strings_of(name, inner, out),
        Expr::Array(array) => array.elem.iter().try_for_each(|e| strings_of(name, e, out)),
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("make_array") => match &f.args {
            FunctionArguments::List(l) => l.args.iter().try_for_each(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => strings_of(name, e, out),
                other => Err(not_a_string(name, &other.to_string())),
            }),
            FunctionArguments::None => Ok(()),
            FunctionArguments::Subquery(_) => Err(not_a_string(name, &e.to_string())),
        },
        other => Err(not_a_string(name, &other.to_string())),
    }
}

fn not_a_string(name: &str, what: &str) -> PersonaError {
    PersonaError::InvalidArgument(format!("{name}(): `{what}` is not a string literal such as {}", example(name)))
}

/// A call of the procedure with a name of the kind it takes.
fn example(name: &str) -> String {
    match name {
        "persona.run_checks" => format!("'events_not_in_future', as in {name}('events_not_in_future') or {name}(['a', 'b'])"),
        _ => format!("'lapsed_high_value', as in {name}('lapsed_high_value')"),
    }
}

type Job = Arc<dyn Fn() -> BoxFuture<'static, Result<RecordBatch>> + Send + Sync>;

/// A plan whose one partition runs `job` when executed and streams the batch it returns.
pub(crate) fn work(schema: SchemaRef, job: impl Fn() -> BoxFuture<'static, Result<RecordBatch>> + Send + Sync + 'static) -> Result<LogicalPlan> {
    let stream = Work { schema: schema.clone(), job: Arc::new(job) };
    let table = StreamingTable::try_new(schema, vec![Arc::new(stream)])?;
    Ok(LogicalPlanBuilder::scan("procedure", provider_as_source(Arc::new(table)), None)?.build()?)
}

struct Work {
    schema: SchemaRef,
    job: Job,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Work").field("schema", &self.schema).finish()
    }
}

impl PartitionStream for Work {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _task: Arc<TaskContext>) -> SendableRecordBatchStream {
        let job = (self.job)();
        let work = async move { job.await.map_err(datafusion::error::DataFusionError::from) };
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), futures::stream::once(work)))
    }
}

fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(fields.iter().map(|(n, t)| Field::new(*n, t.clone(), true)).collect::<Vec<_>>()))
}

fn ints(v: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from_iter(v))
}

fn texts<S: AsRef<str>>(v: impl IntoIterator<Item = Option<S>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(v.into_iter().map(|s| s.map(|s| s.as_ref().to_string()))))
}

fn resolve_schema() -> SchemaRef {
    use DataType::*;
    schema(&[
        ("profiles", Int64),
        ("candidate_pairs", Int64),
        ("links", Int64),
        ("master_customer_ids", Int64),
        ("new_ids", Int64),
        ("merged_ids", Int64),
        ("seconds", Float64),
    ])
}

async fn resolve(ctx: &SessionContext, env: &ProcedureEnv) -> Result<RecordBatch> {
    let s = identity::job::run(ctx, &env.data_dir, &env.identity).await?;
    tracing::info!("CALL persona.resolve(): {s}");
    let n = |v: usize| ints([Some(v as i64)]);
    Ok(RecordBatch::try_new(
        resolve_schema(),
        vec![
            n(s.profiles),
            n(s.candidate_pairs),
            n(s.links),
            n(s.master_ids),
            n(s.new_ids),
            n(s.aliases),
            Arc::new(Float64Array::from(vec![s.elapsed.as_secs_f64()])),
        ],
    )?)
}

fn preview_schema() -> SchemaRef {
    schema(&[("condition", DataType::Utf8), ("members", DataType::Int64), ("removed", DataType::Int64)])
}

async fn preview(runs: &Runs, segment: &str) -> Result<RecordBatch> {
    let p = runs::segments::preview(runs, segment).await?;
    let mut rows: Vec<(String, i64, Option<i64>)> = Vec::new();
    if let Some(all) = p.unfiltered {
        rows.push(("(no conditions)".into(), all as i64, None));
    }
    rows.extend(p.steps.iter().map(|s| (s.condition.clone(), s.members as i64, Some(s.removed as i64))));
    rows.push(("members".into(), p.evaluated.members.len() as i64, None));
    Ok(RecordBatch::try_new(
        preview_schema(),
        vec![
            texts(rows.iter().map(|r| Some(r.0.as_str()))),
            ints(rows.iter().map(|r| Some(r.1))),
            ints(rows.iter().map(|r| r.2)),
        ],
    )?)
}

fn run_schema() -> SchemaRef {
    use DataType::*;
    schema(&[
        ("segment", Utf8),
        ("version", Int64),
        ("run_number", Int64),
        ("status", Utf8),
        ("members", Int64),
        ("entered", Int64),
        ("exited", Int64),
        ("suppressed", Int64),
        ("output_version", Int64),
        ("message", Utf8),
    ])
}

async fn run_segment(runs: &Runs, segment: &str) -> Result<RecordBatch> {
    let o = runs::segments::run(runs, segment).await?;
    let published = o.members.is_some();
    Ok(RecordBatch::try_new(
        run_schema(),
        vec![
            texts([Some(o.segment.as_str())]),
            ints([Some(o.version)]),
            ints([Some(o.run_number)]),
            texts([Some(o.status)]),
            ints([o.members.map(|n| n as i64)]),
            ints([published.then_some(o.entered.len() as i64)]),
            ints([published.then_some(o.exited.len() as i64)]),
            ints([o.suppressed.map(|n| n as i64)]),
            ints([o.output_version.map(|n| n as i64)]),
            texts([o.message.as_deref()]),
        ],
    )?)
}

fn checks_schema() -> SchemaRef {
    use DataType::*;
    schema(&[
        ("check", Utf8),
        ("severity", Utf8),
        ("status", Utf8),
        ("failing_rows", Int64),
        ("value", Float64),
        ("message", Utf8),
    ])
}

async fn run_checks(runs: &Runs, names: &[String]) -> Result<RecordBatch> {
    let results = runs::checks::run(runs, names).await?;
    Ok(RecordBatch::try_new(
        checks_schema(),
        vec![
            texts(results.iter().map(|c| Some(c.name.as_str()))),
            texts(results.iter().map(|c| c.severity.map(|s| s.as_str()))),
            texts(results.iter().map(|c| Some(c.status.as_str()))),
            ints(results.iter().map(|c| c.failing_rows.map(|n| n as i64))),
            Arc::new(Float64Array::from_iter(results.iter().map(|c| c.value))),
            texts(results.iter().map(|c| Some(c.message.as_str()))),
        ],
    )?)
}
