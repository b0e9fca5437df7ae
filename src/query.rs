//! From SQL text to a checked logical plan: parse once, enforce the client's policy, refuse
//! unknown tables by name, then plan.
//!
//! Network clients are read-only: only queries, `EXPLAIN` of a query, `SHOW` and `CALL` of
//! persona's own procedures (which write only persona's tables, see `procedures.rs`) pass. DDL,
//! `COPY`, `SET`/`RESET`, DML and reading a server file by path are refused before anything
//! is planned, so no file can be created or read on their behalf.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{ParamValues, ScalarValue, TableReference};
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Statement, Value, visit_expressions_mut};
use datafusion::sql::sqlparser::dialect::dialect_from_str;

pub use crate::access::Access;
use crate::error::{PersonaError, Result};

/// A planned statement and what its parameters are.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: LogicalPlan,
    /// `$1..$n` in order, with the type DataFusion inferred (`Utf8` when it could not).
    pub parameters: Schema,
}

/// Parses and plans one SQL statement for a client with the given access.
pub async fn plan_sql(ctx: &SessionContext, sql: &str, access: Access) -> Result<Planned> {
    let state = ctx.state();
    let rewritten = rewrite_time_travel(&state, sql)?;
    let mut statement = parse_one(&state, rewritten.as_deref().unwrap_or(sql))?;
    check_table_versions(&statement)?;
    if let DFStatement::Statement(s) = &statement
        && let Some(plan) = crate::procedures::plan(ctx, s, access)
    {
        return Ok(Planned { plan: plan?, parameters: Schema::empty() });
    }
    // INSERT, DELETE, UPDATE and MERGE on Delta tables, for callers with write access.
    if let DFStatement::Statement(s) = &statement
        && crate::dml::is_dml(s)
    {
        return Ok(Planned { plan: crate::dml::plan(ctx, s, access).await?, parameters: Schema::empty() });
    }
    // Everything else that changes data or files is refused for every access level.
    check_read_only(&statement)?;
    number_question_marks(&mut statement);
    check_tables(&state, &statement)?;
    refresh_change_feed_tables(&state, &statement).await?;
    let plan = state.statement_to_plan(statement).await?;
    // Defence in depth: the planner's own verdict must agree with the statement check (it is
    // what stops `SELECT ... INTO`, a query that creates a table).
    datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|e| PersonaError::PermissionDenied(format!("{}: network clients are read-only", e.strip_backtrace())))?;
    let parameters = parameter_schema(&plan)?;
    Ok(Planned { plan, parameters })
}

/// Binds positional parameter values (`$1` is `values[0]`) into a plan.
pub fn bind(planned: Planned, values: Vec<ScalarValue>) -> Result<LogicalPlan> {
    let expected = planned.parameters.fields().len();
    if values.len() != expected {
        return Err(PersonaError::InvalidArgument(format!(
            "the statement has {expected} parameter(s) but {} value(s) were bound",
            values.len()
        )));
    }
    if expected == 0 {
        return Ok(planned.plan);
    }
    // Bound values arrive in the client's types (ADBC sends Python ints as Int64, strings as
    // Utf8); cast them to what the plan expects so `$1` compares like a literal would.
    let cast = values
        .into_iter()
        .zip(planned.parameters.fields())
        .map(|(v, f)| {
            if v.data_type() == *f.data_type() {
                Ok(v)
            } else {
                v.cast_to(f.data_type()).map_err(|e| {
                    PersonaError::InvalidArgument(format!(
                        "parameter {}: cannot use a {} value as {}: {}",
                        f.name(),
                        v.data_type(),
                        f.data_type(),
                        e.strip_backtrace()
                    ))
                })
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(planned.plan.with_param_values(ParamValues::from(cast))?)
}

pub fn dialect(state: &SessionState) -> Result<Box<dyn datafusion::sql::sqlparser::dialect::Dialect>> {
    let dialect_name = state.config().options().sql_parser.dialect.to_string();
    dialect_from_str(&dialect_name).ok_or_else(|| PersonaError::Config(format!("unknown SQL dialect {dialect_name}")))
}

/// Time travel (`FROM events VERSION AS OF 3`, `TIMESTAMP AS OF '...'`) becomes an internal
/// table name the Delta schema resolves (`catalog/versions.rs`): DataFusion's default dialect
/// does not parse the clause, and its planner ignores a parsed one.
fn rewrite_time_travel(state: &SessionState, sql: &str) -> Result<Option<String>> {
    let normalize = state.config().options().sql_parser.enable_ident_normalization;
    crate::catalog::versions::rewrite_sql(sql, dialect(state)?.as_ref(), normalize)
}

/// Refuses table-version syntax a dialect parses but persona does not serve (`FOR SYSTEM_TIME
/// AS OF`, `AT(...)`, `CHANGES(...)`): DataFusion would silently read the newest version.
fn check_table_versions(statement: &DFStatement) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{TableFactor, Visit, Visitor};
    struct Versions;
    impl Visitor for Versions {
        type Break = String;
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
            match factor {
                TableFactor::Table { version: Some(v), name, .. } => ControlFlow::Break(format!("{name} {v}")),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    let inner = match statement {
        DFStatement::Statement(s) => s.as_ref(),
        DFStatement::Explain(e) => return check_table_versions(&e.statement),
        _ => return Ok(()),
    };
    match inner.visit(&mut Versions) {
        ControlFlow::Break(clause) => Err(PersonaError::InvalidArgument(format!(
            "`{clause}` is not supported; read a table as it was with VERSION AS OF n or TIMESTAMP AS OF 'time'"
        ))),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// `table_changes('t', ...)` is planned synchronously from the table as last loaded: move each
/// table it names to its newest version first.
async fn refresh_change_feed_tables(state: &SessionState, statement: &DFStatement) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{FunctionArg, FunctionArgExpr, TableFactor, Visit, Visitor};
    struct Names(Vec<String>);
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, args: Some(args), .. } = factor
                && name.to_string().eq_ignore_ascii_case(crate::catalog::changes::NAME)
                && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) = args.args.first()
                && let Value::SingleQuotedString(table) = &v.value
            {
                self.0.push(table.clone());
            }
            ControlFlow::Continue(())
        }
    }
    let inner = match statement {
        DFStatement::Statement(s) => s.as_ref(),
        DFStatement::Explain(e) => return Box::pin(refresh_change_feed_tables(state, &e.statement)).await,
        _ => return Ok(()),
    };
    let mut names = Names(Vec::new());
    let _ = inner.visit(&mut names);
    for name in names.0 {
        let (schema, table) = crate::catalog::changes::split_name(&name);
        let reference = TableReference::partial(schema, table);
        if let Ok(provider) = state.schema_for_ref(reference) {
            // Opens a table that appeared since start-up and follows it to its newest version.
            provider.table(table).await?;
        }
    }
    Ok(())
}

/// Parses exactly one statement with the session's dialect.
pub fn parse_one(state: &SessionState, sql: &str) -> Result<DFStatement> {
    let options = state.config().options();
    let dialect = dialect(state)?;
    let mut statements = DFParserBuilder::new(sql)
        .with_dialect(dialect.as_ref())
        .with_recursion_limit(options.sql_parser.recursion_limit.get())
        .build()?
        .parse_statements()?;
    match statements.len() {
        1 => Ok(statements.pop_front().expect("one statement")),
        0 => Err(PersonaError::InvalidArgument("the SQL text holds no statement".into())),
        n => Err(PersonaError::InvalidArgument(format!(
            "the SQL text holds {n} statements; send one statement per request"
        ))),
    }
}

fn check_read_only(statement: &DFStatement) -> Result<()> {
    let refused = |what: &str| {
        Err(PersonaError::PermissionDenied(format!(
            "{what} is not allowed over Flight SQL, whatever the user's access; \
             writes go through INSERT, UPDATE, DELETE, MERGE and bulk ingest (for users with write access)"
        )))
    };
    match statement {
        DFStatement::Statement(s) => match s.as_ref() {
            Statement::Query(_)
            | Statement::ShowTables { .. }
            | Statement::ShowColumns { .. }
            | Statement::ShowFunctions { .. }
            | Statement::ShowVariable { .. } => Ok(()),
            other => refused(statement_kind(other)),
        },
        // DataFusion's parser turns every EXPLAIN into its own statement: check what it explains.
        DFStatement::Explain(e) => check_read_only(&e.statement),
        DFStatement::CreateExternalTable(_) => refused("CREATE EXTERNAL TABLE"),
        DFStatement::CopyTo(_) => refused("COPY ... TO"),
        DFStatement::Reset(_) => refused("RESET"),
    }
}

/// A short name for a refused statement, for the error message.
fn statement_kind(s: &Statement) -> &'static str {
    match s {
        Statement::Insert(_) => "INSERT",
        Statement::Update { .. } => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::Merge { .. } => "MERGE",
        Statement::CreateTable(_) => "CREATE TABLE",
        Statement::CreateView { .. } => "CREATE VIEW",
        Statement::CreateSchema { .. } => "CREATE SCHEMA",
        Statement::CreateDatabase { .. } => "CREATE DATABASE",
        Statement::CreateFunction(_) => "CREATE FUNCTION",
        Statement::Drop { .. } => "DROP",
        Statement::DropFunction(_) => "DROP FUNCTION",
        Statement::Truncate(_) => "TRUNCATE",
        Statement::AlterTable(_) => "ALTER TABLE",
        Statement::Set(_) => "SET",
        Statement::Copy { .. } => "COPY",
        Statement::Prepare { .. } | Statement::Execute { .. } | Statement::Deallocate { .. } => {
            "SQL-level PREPARE/EXECUTE (use Flight SQL prepared statements)"
        }
        Statement::StartTransaction { .. } | Statement::Commit { .. } | Statement::Rollback { .. } => {
            "a transaction statement"
        }
        _ => "this statement",
    }
}

/// JDBC and ODBC write parameters as `?`; DataFusion numbers them. Rewrite `?` to `$1, $2, ...`
/// in the order they appear.
fn number_question_marks(statement: &mut DFStatement) {
    let inner = match statement {
        DFStatement::Statement(s) => s.as_mut(),
        DFStatement::Explain(e) => return number_question_marks(&mut e.statement),
        _ => return,
    };
    let mut n = 0;
    let _ = visit_expressions_mut(inner, |expr| {
        if let Expr::Value(v) = expr
            && let Value::Placeholder(p) = &mut v.value
            && p == "?"
        {
            n += 1;
            *p = format!("${n}");
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Refuses file paths used as tables and reports unknown tables by name.
fn check_tables(state: &SessionState, statement: &DFStatement) -> Result<()> {
    for reference in state.resolve_table_references(statement)? {
        let name = reference.table();
        // Table functions (`generate_series(1, 3)`) appear among the references too.
        if matches!(reference, TableReference::Bare { .. }) && state.table_functions().contains_key(name) {
            continue;
        }
        if looks_like_path(name) {
            return Err(PersonaError::PermissionDenied(format!(
                "reading a file by path (`{name}`) is not allowed; query the catalog's tables"
            )));
        }
        let known = state
            .schema_for_ref(reference.clone())
            .map(|schema| schema.table_exist(name))
            .unwrap_or(false);
        if !known {
            return Err(PersonaError::TableNotFound(display_reference(&reference)));
        }
    }
    Ok(())
}

fn looks_like_path(name: &str) -> bool {
    const FILE_SUFFIXES: [&str; 8] = [".csv", ".parquet", ".json", ".ndjson", ".avro", ".arrow", ".txt", ".gz"];
    let lower = name.to_ascii_lowercase();
    name.contains('/')
        || name.contains('\\')
        || name.contains("://")
        || FILE_SUFFIXES.iter().any(|s| lower.ends_with(s))
}

fn display_reference(r: &TableReference) -> String {
    let hint = "; list tables with SHOW TABLES";
    format!("{r}{hint}")
}

fn parameter_schema(plan: &LogicalPlan) -> Result<Schema> {
    let types: HashMap<String, Option<DataType>> = plan.get_parameter_types()?;
    let mut numbered: Vec<(usize, String, DataType)> = types
        .into_iter()
        .map(|(id, ty)| {
            let n = id.trim_start_matches('$').parse::<usize>().map_err(|_| {
                PersonaError::InvalidArgument(format!(
                    "parameter `{id}`: use positional parameters ($1, $2, ... or ?)"
                ))
            })?;
            Ok((n, id, ty.unwrap_or(DataType::Utf8)))
        })
        .collect::<Result<_>>()?;
    numbered.sort_by_key(|(n, _, _)| *n);
    for (i, (n, _, _)) in numbered.iter().enumerate() {
        if *n != i + 1 {
            return Err(PersonaError::InvalidArgument(format!(
                "parameters must be numbered $1..$n without gaps; ${} is missing",
                i + 1
            )));
        }
    }
    Ok(Schema::new(
        numbered.into_iter().map(|(_, id, ty)| Field::new(id, ty, true)).collect::<Vec<_>>(),
    ))
}

#[cfg(test)]
mod tests {
    use super::looks_like_path;

    #[test]
    fn paths_are_recognised() {
        assert!(looks_like_path("/etc/hostname"));
        assert!(looks_like_path("data.csv"));
        assert!(looks_like_path("s3://bucket/x"));
        assert!(!looks_like_path("events"));
    }
}
