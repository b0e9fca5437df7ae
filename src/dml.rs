//! INSERT, DELETE, UPDATE and MERGE on Delta tables, for network clients with write access.
//!
//! DataFusion plans DML against its own table providers, which for Delta tables cannot write.
//! persona plans these statements itself: the statement is checked while planning (the table
//! exists, is one of the user's Delta tables, the clauses are supported), so a mistake fails in
//! GetFlightInfo, and the write runs when the plan is executed (DoGet, or DoPut for
//! `CommandStatementUpdate`) as one Delta commit through delta-rs, which retries on conflict
//! with concurrent writers. Each statement answers one row: `count` (rows inserted, updated or
//! deleted) and `version` (the table version it committed).
//!
//! Expressions (`WHERE`, `SET`, `ON`, ...) are handed to delta-rs as SQL and parsed with this
//! session's state, so the persona UDFs work in them. Sources (`INSERT ... SELECT`, `MERGE ...
//! USING`) are planned like any query a client sends, under the same policy.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{DataFrame, Expr as DfExpr, SessionContext, cast, col, lit};
use datafusion::scalar::ScalarValue;
use datafusion::sql::sqlparser::ast::{
    AssignmentTarget, Delete, FromTable, Insert, Merge, MergeAction, MergeClauseKind, MergeInsertKind, ObjectName,
    Statement, TableFactor, TableObject, Update,
};
use deltalake::DeltaTable;
use futures::future::BoxFuture;

use crate::access::Access;
use crate::catalog::{CATALOG, DeltaSchema, PERSONA_SCHEMA, USER_SCHEMA};
use crate::config::TableConfig;
use crate::error::{PersonaError, Result};
use crate::ingest::writer::{self, Mode, WriteRequest, quote};
use crate::procedures::work;

/// True for the statements this module writes with.
pub fn is_dml(statement: &Statement) -> bool {
    matches!(statement, Statement::Insert(_) | Statement::Delete(_) | Statement::Update(_) | Statement::Merge(_))
}

/// The answer of every DML statement.
pub fn result_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("count", DataType::Int64, false), Field::new("version", DataType::Int64, false)]))
}

/// What a statement will do, checked and ready to run.
#[derive(Debug, Clone)]
enum Write {
    Insert { table: TableConfig, columns: Vec<String>, source: String, overwrite: bool },
    Delete { table: TableConfig, predicate: Option<String> },
    Update { table: TableConfig, assignments: Vec<(String, String)>, predicate: Option<String> },
    Merge { table: TableConfig, source: String, source_alias: String, target_alias: String, on: String, clauses: Vec<Clause> },
}

#[derive(Debug, Clone)]
enum Clause {
    MatchedUpdate { predicate: Option<String>, assignments: Vec<(String, String)> },
    MatchedDelete { predicate: Option<String> },
    NotMatchedInsert { predicate: Option<String>, columns: Vec<String>, values: Vec<String> },
    NotMatchedBySourceUpdate { predicate: Option<String>, assignments: Vec<(String, String)> },
    NotMatchedBySourceDelete { predicate: Option<String> },
}

/// Plans a DML statement; the write happens when the plan is executed.
///
/// Boxed (and declared Send): planning a query plans DML, which plans its source query again,
/// and a recursive future needs a box to have a size.
pub fn plan<'a>(ctx: &'a SessionContext, statement: &'a Statement, access: Access) -> BoxFuture<'a, Result<LogicalPlan>> {
    Box::pin(plan_statement(ctx, statement, access))
}

async fn plan_statement(ctx: &SessionContext, statement: &Statement, access: Access) -> Result<LogicalPlan> {
    let verb = verb(statement);
    if access < Access::Write {
        return Err(PersonaError::PermissionDenied(format!(
            "{verb} is not allowed without write access: network clients are read-only unless [access] in persona.toml grants them write"
        )));
    }
    let write = match statement {
        Statement::Insert(i) => insert(ctx, i).await?,
        Statement::Delete(d) => delete(ctx, d).await?,
        Statement::Update(u) => update(ctx, u).await?,
        Statement::Merge(m) => merge(ctx, m).await?,
        _ => return Err(PersonaError::InvalidArgument(format!("{verb} is not a DML statement"))),
    };
    let ctx = ctx.clone();
    work(result_schema(), move || {
        let (ctx, write) = (ctx.clone(), write.clone());
        Box::pin(async move { run(&ctx, &write).await })
    })
}

fn verb(statement: &Statement) -> &'static str {
    match statement {
        Statement::Insert(_) => "INSERT",
        Statement::Delete(_) => "DELETE",
        Statement::Update(_) => "UPDATE",
        Statement::Merge(_) => "MERGE",
        _ => "this statement",
    }
}

fn unsupported(what: &str) -> PersonaError {
    PersonaError::InvalidArgument(format!("{what} is not supported on Delta tables"))
}

/// The user's Delta table a statement names, as configured (its location and credentials).
async fn target(ctx: &SessionContext, name: &ObjectName) -> Result<TableConfig> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(|i| if i.quote_style.is_some() { i.value.clone() } else { i.value.to_lowercase() }))
        .collect::<Option<_>>()
        .ok_or_else(|| PersonaError::InvalidArgument(format!("`{name}` is not a table name")))?;
    let (catalog, schema, table) = match parts.as_slice() {
        [t] => (CATALOG, USER_SCHEMA, t.as_str()),
        [s, t] => (CATALOG, s.as_str(), t.as_str()),
        [c, s, t] => (c.as_str(), s.as_str(), t.as_str()),
        _ => return Err(PersonaError::InvalidArgument(format!("`{name}` is not a table name"))),
    };
    if schema == PERSONA_SCHEMA {
        return Err(PersonaError::PermissionDenied(format!(
            "`{name}` is one of persona's own tables, which only persona writes"
        )));
    }
    let not_found = || PersonaError::TableNotFound(format!("{name}; list tables with SHOW TABLES"));
    if catalog != CATALOG || schema != USER_SCHEMA {
        return Err(not_found());
    }
    let provider = ctx.catalog(CATALOG).and_then(|c| c.schema(USER_SCHEMA)).ok_or_else(not_found)?;
    let delta = provider.as_ref().downcast_ref::<DeltaSchema>().ok_or_else(not_found)?;
    let followed = delta.followed(table).await?.ok_or_else(not_found)?;
    Ok(followed.config().clone())
}

fn table_name(factor: &TableFactor) -> Result<(&ObjectName, Option<String>)> {
    match factor {
        TableFactor::Table { name, alias, args: None, version: None, .. } => Ok((name, alias.as_ref().map(|a| a.name.value.clone()))),
        other => Err(PersonaError::InvalidArgument(format!("`{other}` is not a table this statement can write"))),
    }
}

fn column_name(name: &ObjectName) -> Result<String> {
    // `SET t.amount = ...` names the target's column; only its last part matters.
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| if i.quote_style.is_some() { i.value.clone() } else { i.value.to_lowercase() })
        .ok_or_else(|| PersonaError::InvalidArgument(format!("`{name}` is not a column name")))
}

fn assignments(list: &[datafusion::sql::sqlparser::ast::Assignment]) -> Result<Vec<(String, String)>> {
    list.iter()
        .map(|a| match &a.target {
            AssignmentTarget::ColumnName(c) => Ok((column_name(c)?, a.value.to_string())),
            AssignmentTarget::Tuple(_) => Err(unsupported("assigning a tuple of columns")),
        })
        .collect()
}

/// Plans a source query under the same policy as a client's query, so a DML statement cannot
/// read what a plain query may not (a server file by path, say).
async fn source_frame(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let planned = crate::query::plan_sql(ctx, sql, Access::Read).await?;
    Ok(ctx.execute_logical_plan(planned.plan).await?)
}

async fn insert(ctx: &SessionContext, i: &Insert) -> Result<Write> {
    let TableObject::TableName(name) = &i.table else { return Err(unsupported("INSERT INTO a table function")) };
    let modified = i.on.is_some()
        || i.returning.is_some()
        || i.output.is_some()
        || !i.assignments.is_empty()
        || i.partitioned.is_some()
        || !i.after_columns.is_empty()
        || i.or.is_some()
        || i.ignore
        || i.replace_into
        || i.priority.is_some()
        || i.insert_alias.is_some()
        || i.settings.is_some()
        || i.format_clause.is_some()
        || i.multi_table_insert_type.is_some()
        || !i.multi_table_into_clauses.is_empty();
    if modified {
        // Each of these changes what INSERT means (replace, ignore, upsert...): refuse rather
        // than run a plain append.
        return Err(unsupported("INSERT with OR / IGNORE / REPLACE / ON CONFLICT / RETURNING / SET / PARTITION clauses"));
    }
    let table = target(ctx, name).await?;
    let source = i.source.as_ref().ok_or_else(|| PersonaError::InvalidArgument("INSERT needs VALUES or a SELECT".into()))?;
    let schema = table_schema(&table).await?;
    let columns = i.columns.iter().map(|c| table_column(&schema, &column_name(c)?)).collect::<Result<Vec<_>>>()?;
    let source = source.to_string();
    // Plan it now, so a bad source or a column count mismatch fails before anything runs.
    let frame = source_frame(ctx, &source).await?;
    aligned(frame, &schema, &columns)?;
    Ok(Write::Insert { table, columns, source, overwrite: i.overwrite })
}

async fn delete(ctx: &SessionContext, d: &Delete) -> Result<Write> {
    if d.using.is_some() || d.returning.is_some() || !d.order_by.is_empty() || d.limit.is_some() || !d.tables.is_empty() {
        return Err(unsupported("DELETE with USING, RETURNING, ORDER BY or LIMIT"));
    }
    let from = match &d.from {
        FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
    };
    let [one] = from.as_slice() else { return Err(unsupported("DELETE from several tables")) };
    if !one.joins.is_empty() {
        return Err(unsupported("DELETE with a join"));
    }
    let (name, alias) = table_name(&one.relation)?;
    let table = target(ctx, name).await?;
    let predicate = d.selection.as_ref().map(|e| e.to_string());
    validate(ctx, name, alias.as_deref(), &[], predicate.as_deref()).await?;
    Ok(Write::Delete { table, predicate })
}

async fn update(ctx: &SessionContext, u: &Update) -> Result<Write> {
    if u.from.is_some() || u.returning.is_some() || !u.table.joins.is_empty() || u.limit.is_some() {
        return Err(unsupported("UPDATE with FROM, a join, RETURNING or LIMIT"));
    }
    let (name, alias) = table_name(&u.table.relation)?;
    let table = target(ctx, name).await?;
    let schema = table_schema(&table).await?;
    let assignments = resolved(&schema, assignments(&u.assignments)?)?;
    let predicate = u.selection.as_ref().map(|e| e.to_string());
    let values: Vec<&str> = assignments.iter().map(|(_, v)| v.as_str()).collect();
    validate(ctx, name, alias.as_deref(), &values, predicate.as_deref()).await?;
    Ok(Write::Update { table, assignments, predicate })
}

async fn merge(ctx: &SessionContext, m: &Merge) -> Result<Write> {
    if m.output.is_some() {
        return Err(unsupported("MERGE with OUTPUT"));
    }
    let (name, alias) = table_name(&m.table)?;
    let table = target(ctx, name).await?;
    let target_alias = alias.unwrap_or_else(|| table.name.clone());
    let (source, source_alias) = match &m.source {
        TableFactor::Table { name, alias, .. } => {
            let alias = alias.as_ref().map(|a| a.name.value.clone()).unwrap_or_else(|| column_name(name).unwrap_or_default());
            (format!("SELECT * FROM {name}"), alias)
        }
        TableFactor::Derived { subquery, alias: Some(alias), .. } => (subquery.to_string(), alias.name.value.clone()),
        other => return Err(PersonaError::InvalidArgument(format!("MERGE ... USING `{other}`: use a table or a subquery with an alias"))),
    };
    source_frame(ctx, &source).await?;
    let schema = table_schema(&table).await?;
    let mut expressions: Vec<String> = vec![m.on.to_string()];
    let mut clauses = Vec::new();
    for c in &m.clauses {
        let predicate = c.predicate.as_ref().map(|e| e.to_string());
        let clause = match (&c.clause_kind, &c.action) {
            (MergeClauseKind::Matched, MergeAction::Update(u)) => {
                Clause::MatchedUpdate { predicate, assignments: resolved(&schema, assignments(&u.assignments)?)? }
            }
            (MergeClauseKind::Matched, MergeAction::Delete { .. }) => Clause::MatchedDelete { predicate },
            (MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget, MergeAction::Insert(i)) => {
                let MergeInsertKind::Values(values) = &i.kind else { return Err(unsupported("INSERT ROW in MERGE")) };
                let [row] = values.rows.as_slice() else { return Err(unsupported("several VALUES rows in MERGE")) };
                let values: Vec<String> = row.content.iter().map(|e| e.to_string()).collect();
                let mut columns =
                    i.columns.iter().map(|c| table_column(&schema, &column_name(c)?)).collect::<Result<Vec<_>>>()?;
                if columns.is_empty() {
                    columns = schema.fields().iter().map(|f| f.name().clone()).collect();
                }
                if columns.len() != values.len() {
                    return Err(PersonaError::InvalidArgument(format!(
                        "MERGE INSERT names {} columns but gives {} values",
                        columns.len(),
                        values.len()
                    )));
                }
                Clause::NotMatchedInsert { predicate, columns, values }
            }
            (MergeClauseKind::NotMatchedBySource, MergeAction::Update(u)) => {
                Clause::NotMatchedBySourceUpdate { predicate, assignments: resolved(&schema, assignments(&u.assignments)?)? }
            }
            (MergeClauseKind::NotMatchedBySource, MergeAction::Delete { .. }) => Clause::NotMatchedBySourceDelete { predicate },
            (kind, action) => return Err(PersonaError::InvalidArgument(format!("`WHEN {kind} THEN {action}` is not a valid MERGE clause"))),
        };
        expressions.extend(clause.expressions());
        clauses.push(clause);
    }
    // Every expression must plan over the target and source side by side, checked now so a
    // typo fails before anything is written.
    for e in &expressions {
        refuse_in_expressions(e)?;
    }
    let check = format!(
        "SELECT {} FROM {name} AS {ta} FULL JOIN ({source}) AS {sa} ON {on}",
        numbered(&expressions),
        ta = quote(&target_alias),
        sa = quote(&source_alias),
        on = m.on
    );
    crate::query::plan_sql(ctx, &check, Access::Read).await.map_err(|e| PersonaError::InvalidArgument(format!("MERGE: {e}")))?;
    Ok(Write::Merge { table, source, source_alias, target_alias, on: m.on.to_string(), clauses })
}

impl Clause {
    /// The SQL expressions the clause evaluates.
    fn expressions(&self) -> Vec<String> {
        let (predicate, values): (&Option<String>, Vec<String>) = match self {
            Clause::MatchedUpdate { predicate, assignments } | Clause::NotMatchedBySourceUpdate { predicate, assignments } => {
                (predicate, assignments.iter().map(|(_, v)| v.clone()).collect())
            }
            Clause::MatchedDelete { predicate } | Clause::NotMatchedBySourceDelete { predicate } => (predicate, Vec::new()),
            Clause::NotMatchedInsert { predicate, values, .. } => (predicate, values.clone()),
        };
        predicate.iter().cloned().chain(values).collect()
    }
}

/// The table's column a statement names: exactly, or else the one column whose name differs
/// only in case (unquoted names are folded to lower case, Delta columns often are not).
fn table_column(schema: &Schema, name: &str) -> Result<String> {
    if schema.field_with_name(name).is_ok() {
        return Ok(name.to_string());
    }
    let folded: Vec<&str> =
        schema.fields().iter().map(|f| f.name().as_str()).filter(|n| n.eq_ignore_ascii_case(name)).collect();
    match folded.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(PersonaError::InvalidArgument(format!(
            "`{name}` is not a column of the table (its columns: {})",
            schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn resolved(schema: &Schema, assignments: Vec<(String, String)>) -> Result<Vec<(String, String)>> {
    assignments.into_iter().map(|(c, v)| Ok((table_column(schema, &c)?, v))).collect()
}

/// Refuses what delta-rs cannot evaluate inside a write: subqueries, parameters, variables.
fn refuse_in_expressions(sql: &str) -> Result<()> {
    use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Value, Visit, Visitor};
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    use std::ops::ControlFlow;
    struct Refused;
    impl Visitor for Refused {
        type Break = &'static str;
        fn pre_visit_expr(&mut self, e: &SqlExpr) -> ControlFlow<&'static str> {
            match e {
                SqlExpr::Subquery(_) | SqlExpr::Exists { .. } | SqlExpr::InSubquery { .. } => ControlFlow::Break("a subquery"),
                SqlExpr::Value(v) if matches!(v.value, Value::Placeholder(_)) => ControlFlow::Break("a `?` parameter"),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    // A source query may hold subqueries (it is planned by persona); expressions may not.
    let parsed = Parser::new(&GenericDialect {}).try_with_sql(sql).and_then(|mut p| p.parse_expr());
    let Ok(expr) = parsed else { return Ok(()) };
    match expr.visit(&mut Refused) {
        ControlFlow::Break(what) => Err(PersonaError::InvalidArgument(format!(
            "{what} is not supported inside INSERT / UPDATE / DELETE / MERGE expressions; use MERGE ... USING (SELECT ...) to bring other rows in"
        ))),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// `a AS e0, b AS e1, ...`: a select list of expressions that may repeat.
fn numbered<S: AsRef<str>>(expressions: &[S]) -> String {
    expressions.iter().enumerate().map(|(i, e)| format!("({}) AS e{i}", e.as_ref())).collect::<Vec<_>>().join(", ")
}

/// Plans `SELECT values FROM table WHERE predicate` as a client query, so unknown columns and
/// type errors fail while planning, with the same messages as in a query.
async fn validate(ctx: &SessionContext, name: &ObjectName, alias: Option<&str>, values: &[&str], predicate: Option<&str>) -> Result<()> {
    for e in values.iter().copied().chain(predicate) {
        refuse_in_expressions(e)?;
    }
    let select = if values.is_empty() { "1".to_string() } else { numbered(values) };
    let alias = alias.map(|a| format!(" AS {}", quote(a))).unwrap_or_default();
    let filter = predicate.map(|p| format!(" WHERE {p}")).unwrap_or_default();
    crate::query::plan_sql(ctx, &format!("SELECT {select} FROM {name}{alias}{filter}"), Access::Read).await?;
    Ok(())
}

async fn table_schema(table: &TableConfig) -> Result<SchemaRef> {
    let opened = writer::open(table).await?;
    writer::schema_of(&opened).ok_or_else(|| PersonaError::TableNotFound(format!("{}: the table has no version yet", table.name)))
}

/// The source rows in the table's columns and types: listed columns by position, the others NULL.
fn aligned(frame: DataFrame, schema: &Schema, columns: &[String]) -> Result<DataFrame> {
    let source: Vec<String> = frame.schema().fields().iter().map(|f| f.name().clone()).collect();
    let names: Vec<String> = if columns.is_empty() { schema.fields().iter().map(|f| f.name().clone()).collect() } else { columns.to_vec() };
    if names.len() != source.len() {
        return Err(PersonaError::InvalidArgument(format!(
            "INSERT gives {} values per row for {} columns ({})",
            source.len(),
            names.len(),
            names.join(", ")
        )));
    }
    for n in &names {
        if schema.field_with_name(n).is_err() {
            return Err(PersonaError::InvalidArgument(format!("INSERT names `{n}`, which is not a column of the table")));
        }
    }
    let exprs: Vec<DfExpr> = schema
        .fields()
        .iter()
        .map(|f| match names.iter().position(|n| n == f.name()) {
            Some(i) => cast(col(datafusion::common::Column::from_name(&source[i])), f.data_type().clone()).alias(f.name()),
            None => cast(lit(ScalarValue::Null), f.data_type().clone()).alias(f.name()),
        })
        .collect();
    Ok(frame.select(exprs)?)
}

/// The session delta-rs runs a write in: its own planner (DML plans use custom nodes only it
/// can execute) plus the persona UDFs, so expressions may use them.
fn write_session() -> Result<Arc<datafusion::execution::SessionState>> {
    let ctx = deltalake::delta_datafusion::create_session().into_inner();
    persona_udfs::register_all(&ctx)?;
    Ok(Arc::new(ctx.state()))
}

async fn run(ctx: &SessionContext, write: &Write) -> Result<RecordBatch> {
    let (count, version) = match write {
        Write::Insert { table, columns, source, overwrite } => {
            let opened = writer::open(table).await?;
            let schema = writer::schema_of(&opened).ok_or_else(|| PersonaError::TableNotFound(table.name.clone()))?;
            let frame = aligned(source_frame(ctx, source).await?, &schema, columns)?;
            let request = WriteRequest {
                table: table.clone(),
                mode: if *overwrite { Mode::Overwrite } else { Mode::Append },
                partition_by: Vec::new(),
                allow_new_columns: false,
                app_ids: Vec::new(),
                metadata: serde_json::json!({"operation": "sql insert"}),
                retries: writer::APPEND_RETRIES,
            };
            let written = writer::write(opened, schema, frame.execute_stream().await?, &request).await?;
            (written.rows_inserted, written.version)
        }
        Write::Delete { table, predicate } => {
            let opened = writer::open(table).await?;
            let before = opened.clone();
            let mut builder = opened.delete().with_session_state(write_session()?);
            if let Some(p) = predicate {
                builder = builder.with_predicate(p.clone());
            }
            let (t, metrics) = builder.await.map_err(|e| PersonaError::delta(&table.name, e))?;
            let deleted = match metrics.num_deleted_rows {
                Some(n) => n as u64,
                // Whole files removed without reading them (a partition predicate, no
                // predicate): count the rows they held at the version the delete read.
                None => rows_matching(before, predicate.as_deref()).await?,
            };
            (deleted, version_of(&t))
        }
        Write::Update { table, assignments, predicate } => {
            let opened = writer::open(table).await?;
            let mut builder = opened.update().with_session_state(write_session()?);
            if let Some(p) = predicate {
                builder = builder.with_predicate(p.clone());
            }
            for (column, value) in assignments {
                builder = builder.with_update(column.as_str(), value.clone());
            }
            let (t, metrics) = builder.await.map_err(|e| PersonaError::delta(&table.name, e))?;
            (metrics.num_updated_rows as u64, version_of(&t))
        }
        Write::Merge { table, source, source_alias, target_alias, on, clauses } => {
            let opened = writer::open(table).await?;
            // delta-rs reads a merge source more than once; hold it in memory so every read
            // sees the same rows (a source over a followed table could otherwise move on).
            let frame = source_frame(ctx, source).await?.cache().await?;
            let (t, m) = merge_builder(opened, frame, on, source_alias, target_alias, clauses)?
                .await
                .map_err(|e| PersonaError::delta(&table.name, e))?;
            ((m.num_target_rows_inserted + m.num_target_rows_updated + m.num_target_rows_deleted) as u64, version_of(&t))
        }
    };
    Ok(RecordBatch::try_new(
        result_schema(),
        vec![Arc::new(Int64Array::from(vec![count as i64])), Arc::new(Int64Array::from(vec![version as i64]))],
    )?)
}

/// Rows of `table` (as loaded) where `predicate` holds.
async fn rows_matching(table: DeltaTable, predicate: Option<&str>) -> Result<u64> {
    let ctx = SessionContext::new_with_state((*write_session()?).clone());
    ctx.register_table("t", crate::catalog::scan::provider(&table).await?)?;
    let filter = predicate.map(|p| format!(" WHERE {p}")).unwrap_or_default();
    let batches = ctx.sql(&format!("SELECT count(*) FROM t{filter}")).await?.collect().await?;
    let n = batches.first().map(|b| datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::Int64Type>(b.column(0)).value(0));
    Ok(n.unwrap_or_default() as u64)
}

fn version_of(table: &DeltaTable) -> u64 {
    table.version().unwrap_or_default()
}

fn merge_builder(
    table: DeltaTable,
    source: DataFrame,
    on: &str,
    source_alias: &str,
    target_alias: &str,
    clauses: &[Clause],
) -> Result<deltalake::operations::merge::MergeBuilder> {
    let delta_err = |e| PersonaError::delta(&table_label(target_alias), e);
    let mut builder = table
        .merge(source, on.to_string())
        .with_source_alias(source_alias)
        .with_target_alias(target_alias)
        .with_session_state(write_session()?);
    for clause in clauses {
        builder = match clause.clone() {
            Clause::MatchedUpdate { predicate, assignments } => builder
                .when_matched_update(|u| {
                    let u = match predicate { Some(p) => u.predicate(p), None => u };
                    assignments.into_iter().fold(u, |u, (c, v)| u.update(quote(&c), v))
                })
                .map_err(delta_err)?,
            Clause::MatchedDelete { predicate } => builder
                .when_matched_delete(|d| match predicate { Some(p) => d.predicate(p), None => d })
                .map_err(delta_err)?,
            Clause::NotMatchedInsert { predicate, columns, values } => builder
                .when_not_matched_insert(|i| {
                    let i = match predicate { Some(p) => i.predicate(p), None => i };
                    columns.into_iter().zip(values).fold(i, |i, (c, v)| i.set(quote(&c), v))
                })
                .map_err(delta_err)?,
            Clause::NotMatchedBySourceUpdate { predicate, assignments } => builder
                .when_not_matched_by_source_update(|u| {
                    let u = match predicate { Some(p) => u.predicate(p), None => u };
                    assignments.into_iter().fold(u, |u, (c, v)| u.update(quote(&c), v))
                })
                .map_err(delta_err)?,
            Clause::NotMatchedBySourceDelete { predicate } => builder
                .when_not_matched_by_source_delete(|d| match predicate { Some(p) => d.predicate(p), None => d })
                .map_err(delta_err)?,
        };
    }
    Ok(builder)
}

fn table_label(alias: &str) -> String {
    format!("MERGE INTO {alias}")
}
