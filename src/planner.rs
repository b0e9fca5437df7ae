//! persona's query planner: DataFusion's physical planner, after one rewrite that has to run a
//! query and so cannot be an (synchronous) optimizer rule.
//!
//! Segment SQL anchors its time windows to the data rather than to the clock:
//!
//! ```sql
//! WITH bounds AS (SELECT max(event_time) AS latest FROM events)
//! SELECT ... FROM events e CROSS JOIN bounds b WHERE e.event_time > b.latest - INTERVAL '90 days'
//! ```
//!
//! DataFusion plans that as a nested-loop join against a one-row input. The window then never
//! reaches the Delta scan, so every file is read whatever its statistics say, and `b.latest` is a
//! column evaluated row by row (and hashed as a group key where it is grouped by). An aggregate
//! without `GROUP BY` yields exactly one row, so when such an input is deterministic and
//! uncorrelated its values are the same constants for the whole query. The planner runs it
//! first and writes those values into the plan as literals: the join becomes a projection of the
//! other input, and the literals are put into the filter, projection or aggregate right above
//! it. DataFusion's optimizer, run again on the result, folds `literal - INTERVAL` into one
//! constant, pushes the window into the scan (files outside it are skipped by their Delta
//! statistics), and drops group keys that are constants. A left (right) join without keys or
//! condition against a one-row right (left) input is folded the same way. (DataFusion 55 runs
//! an uncorrelated scalar subquery in `WHERE` as a physical subquery of its own, not as a join:
//! that form is left to it.)
//!
//! The one-row input is read from the same table providers as the rest of the plan, so a query
//! over pinned table versions (a segment run) sees one version throughout. `EXPLAIN` runs
//! nothing and shows the plan unfolded; `EXPLAIN ANALYZE` shows what ran.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, JoinType, Result as DfResult, ScalarValue};
use datafusion::execution::context::QueryPlanner;
use datafusion::catalog::Session;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, Filter, Join, LogicalPlan, Projection};
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

/// The query planner every persona session uses (`session.rs`).
#[derive(Debug, Default)]
pub struct PersonaQueryPlanner;

#[async_trait]
impl QueryPlanner for PersonaQueryPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = match fold_one_row_joins(plan, session).await? {
            // The rewrite opens new work for the optimizer (constant windows to push into scans,
            // constant group keys to drop): run it again on the result.
            Some(folded) => session.optimize(&folded)?,
            None => plan.clone(),
        };
        DefaultPhysicalPlanner::default().create_physical_plan(&plan, session).await
    }
}

/// Which input of a join is the one-row side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Left,
    Right,
}

impl Side {
    fn input(self, join: &Join) -> &LogicalPlan {
        match self {
            Side::Left => &join.left,
            Side::Right => &join.right,
        }
    }
}

/// The plan with every foldable join replaced, or `None` when nothing was folded.
async fn fold_one_row_joins(plan: &LogicalPlan, session: &dyn Session) -> DfResult<Option<LogicalPlan>> {
    if matches!(plan, LogicalPlan::Explain(_)) {
        return Ok(None);
    }
    // First find the one-row inputs and run each; the rewrite itself is synchronous. Inputs are
    // told apart by plan equality, which does not see every difference (a table function's
    // arguments): every occurrence is run, and equal plans that gave different rows are not
    // folded at all.
    let mut sides: Vec<LogicalPlan> = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::Join(join) = node
            && let Some(side) = one_row_side(join)
        {
            sides.push(side.input(join).clone());
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if sides.is_empty() {
        return Ok(None);
    }
    let mut values: Vec<(LogicalPlan, Option<Vec<ScalarValue>>)> = Vec::with_capacity(sides.len());
    for side in sides {
        let row = run_one_row(&side, session).await;
        match values.iter_mut().find(|(p, _)| *p == side) {
            Some((_, seen)) if *seen != row => *seen = None,
            Some(_) => {}
            None => values.push((side, row)),
        }
    }
    let values: Vec<(LogicalPlan, Vec<ScalarValue>)> = values.into_iter().filter_map(|(p, row)| row.map(|r| (p, r))).collect();
    if values.is_empty() {
        return Ok(None);
    }
    let folded = plan.clone().transform_up_with_subqueries(|node| {
        if let LogicalPlan::Join(join) = &node
            && let Some(side) = one_row_side(join)
        {
            if let Some((_, row)) = values.iter().find(|(p, _)| p == side.input(join)) {
                let LogicalPlan::Join(join) = node else { unreachable!("matched a join above") };
                let replaced = replace_join(join, side, row)?;
                return Ok(Transformed::yes(inline_literals(replaced)?.data));
            }
        }
        inline_literals(node)
    })?;
    Ok(folded.transformed.then_some(folded.data))
}

/// The input of `join` that yields exactly one row and can stand in for constants, if any.
///
/// An inner join without equality keys pairs every row with that one row (and its filter only
/// keeps some pairs); a left join without keys or filter keeps every left row with the right's
/// one row, and a right join the mirror image. Other joins would need NULL rows or
/// semi-join logic, so they are left alone.
fn one_row_side(join: &Join) -> Option<Side> {
    if !join.on.is_empty() {
        return None;
    }
    let unfiltered = join.filter.is_none();
    let right_ok = join.join_type == JoinType::Inner || (join.join_type == JoinType::Left && unfiltered);
    let left_ok = join.join_type == JoinType::Inner || (join.join_type == JoinType::Right && unfiltered);
    if right_ok && yields_one_row(&join.right) && foldable(&join.right) {
        Some(Side::Right)
    } else if left_ok && yields_one_row(&join.left) && foldable(&join.left) {
        Some(Side::Left)
    } else {
        None
    }
}

/// An aggregate without `GROUP BY` (under aliases and projections) always yields one row.
fn yields_one_row(plan: &LogicalPlan) -> bool {
    match plan {
        LogicalPlan::SubqueryAlias(alias) => yields_one_row(&alias.input),
        LogicalPlan::Projection(projection) => yields_one_row(&projection.input),
        LogicalPlan::Aggregate(aggregate) => aggregate.group_expr.is_empty(),
        _ => false,
    }
}

/// Running the input once gives the values every evaluation would: nothing in it is volatile
/// (`random()`), it refers to no outer query, and it has no parameter still waiting for a value.
fn foldable(plan: &LogicalPlan) -> bool {
    let unbound = |e: &Expr| e.exists(|x| Ok(matches!(x, Expr::Placeholder(_)))).unwrap_or(true);
    let varies = plan
        .exists(|node| Ok(node.expressions().iter().any(|e| e.is_volatile() || e.contains_outer() || unbound(e))))
        .unwrap_or(true);
    !varies
}

/// Runs a one-row input; `None` when it did not give exactly one row of the planned types, or
/// failed (then nothing is folded, and the query runs as written, so an input that would never
/// have been evaluated cannot fail it).
async fn run_one_row(plan: &LogicalPlan, session: &dyn Session) -> Option<Vec<ScalarValue>> {
    let run = async {
        let physical = session.create_physical_plan(plan).await?;
        collect(physical, session.task_ctx()).await
    };
    let batches = match run.await {
        Ok(batches) => batches,
        Err(e) => {
            tracing::debug!(error = %e.strip_backtrace(), "one-row input not folded: it failed to run");
            return None;
        }
    };
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let batch = batches.iter().find(|b| b.num_rows() == 1).filter(|_| rows == 1)?;
    let fields = plan.schema().fields();
    if batch.num_columns() != fields.len() {
        return None;
    }
    // In the types the plan above expects, should execution have produced another.
    batch
        .columns()
        .iter()
        .zip(fields.iter())
        .map(|(column, field)| ScalarValue::try_from_array(column, 0).and_then(|v| v.cast_to(field.data_type())).ok())
        .collect()
}

/// The join as its other input with the one row's values as literal columns, under the join's
/// own column names and order, filtered by the join's filter.
fn replace_join(join: Join, side: Side, row: &[ScalarValue]) -> DfResult<LogicalPlan> {
    let (kept, one_row) = match side {
        Side::Right => (join.left, join.right),
        Side::Left => (join.right, join.left),
    };
    let one_row_len = one_row.schema().fields().len();
    let kept_len = join.schema.fields().len() - one_row_len;
    let exprs = join
        .schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            // The join's output is the left input's columns, then the right's.
            let from_one_row = match side {
                Side::Right => i.checked_sub(kept_len),
                Side::Left => (i < one_row_len).then_some(i),
            };
            match from_one_row {
                Some(k) => Expr::Literal(row[k].clone(), None).alias_qualified(qualifier.cloned(), field.name()),
                None => Expr::Column(Column::from((qualifier, field))),
            }
        })
        .collect();
    let projection = LogicalPlan::Projection(Projection::try_new(exprs, kept)?);
    match join.filter {
        Some(predicate) => Ok(LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(projection))?)),
        None => Ok(projection),
    }
}

/// Puts the literal columns of a node's input into the node's own expressions, keeping every
/// output name, so that the optimizer sees constants where it looks for them (a constant group
/// key, a window bound inside an aggregate's CASE).
fn inline_literals(node: LogicalPlan) -> DfResult<Transformed<LogicalPlan>> {
    let grouping_sets = matches!(&node, LogicalPlan::Aggregate(a) if a.group_expr.iter().any(|e| matches!(e, Expr::GroupingSet(_))));
    if grouping_sets || !matches!(node, LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::Aggregate(_)) {
        // A grouping set (ROLLUP, CUBE) must stay one: renaming it would turn it into a column.
        return Ok(Transformed::no(node));
    }
    let constants: HashMap<Column, ScalarValue> = node.inputs().into_iter().flat_map(literal_columns).collect();
    if constants.is_empty() {
        return Ok(Transformed::no(node));
    }
    let names = NamePreserver::new(&node);
    let rewritten = node.map_expressions(|expr| {
        let saved = names.save(&expr);
        let replaced = expr.transform(|e| match &e {
            Expr::Column(c) => match constants.get(c) {
                Some(value) => Ok(Transformed::yes(Expr::Literal(value.clone(), None))),
                None => Ok(Transformed::no(e)),
            },
            _ => Ok(Transformed::no(e)),
        })?;
        Ok(if replaced.transformed { replaced.update_data(|e| saved.restore(e)) } else { replaced })
    })?;
    if rewritten.transformed { rewritten.map_data(|plan| plan.recompute_schema()) } else { Ok(rewritten) }
}

/// The output columns of `plan` that hold one literal value on every row.
fn literal_columns(plan: &LogicalPlan) -> Vec<(Column, ScalarValue)> {
    match plan {
        LogicalPlan::Projection(projection) => projection
            .expr
            .iter()
            .zip(projection.schema.columns())
            .filter_map(|(expr, column)| literal_of(expr).map(|value| (column, value.clone())))
            .collect(),
        // The same columns under another qualifier, in the same order.
        LogicalPlan::SubqueryAlias(alias) => {
            let inner: HashMap<Column, ScalarValue> = literal_columns(&alias.input).into_iter().collect();
            alias
                .input
                .schema()
                .columns()
                .into_iter()
                .zip(alias.schema.columns())
                .filter_map(|(was, now)| inner.get(&was).map(|value| (now, value.clone())))
                .collect()
        }
        // Nodes that pass their input's columns through unchanged.
        LogicalPlan::Filter(Filter { input, .. }) => literal_columns(input),
        LogicalPlan::Sort(sort) => literal_columns(&sort.input),
        LogicalPlan::Limit(limit) => literal_columns(&limit.input),
        _ => Vec::new(),
    }
}

fn literal_of(expr: &Expr) -> Option<&ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value),
        Expr::Alias(alias) => literal_of(&alias.expr),
        _ => None,
    }
}
