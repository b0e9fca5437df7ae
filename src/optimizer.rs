//! Planner rules persona adds to DataFusion's optimizer.
//!
//! `unalias_distinct_aggregates`: segment queries count distinct values per customer, often of
//! an expression over string columns (`count(DISTINCT CASE WHEN event_type = 'purchase' THEN
//! invoice_no END)`). Delta tables are read with `Utf8View` strings, so type coercion turns the
//! `'purchase'` literal into a `Utf8View` one; the expression's display name changes, and the
//! optimizer keeps the original output name by wrapping the aggregate in an alias. DataFusion's
//! `single_distinct_aggregation_to_group_by` (which computes a distinct aggregate as a cheap
//! two-phase group-by instead of hashing every group's distinct set) only recognises bare
//! aggregate functions, so the alias alone turns it off and the query runs several times slower.
//!
//! The same coercion aliases the plain aggregates beside it (`max(CASE WHEN event_type =
//! 'purchase' THEN event_time END)` in rfm_tiers), and one aliased aggregate anywhere in the
//! list turns the rewrite off as well; so do the aliases persona's query planner leaves when it
//! puts constants into an aggregate (`min(b.latest)`, src/planner.rs).
//!
//! The rule takes the aliases off every aggregate call of an aggregate that has a DISTINCT one
//! and restores the output names in a projection above it, so the two-phase rewrite applies;
//! the rows are unchanged.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, Result as DfResult};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan, Projection};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{Optimizer, OptimizerConfig, OptimizerRule};

/// DataFusion's rules with persona's inserted where they must run.
pub fn rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules = Optimizer::new().rules;
    // Before the rule it enables; at the end if a DataFusion upgrade renamed it (then the rule
    // still restores names correctly, it just no longer helps).
    let at = rules.iter().position(|r| r.name() == "single_distinct_aggregation_to_group_by").unwrap_or(rules.len());
    rules.insert(at, Arc::new(UnaliasDistinctAggregates));
    rules
}

#[derive(Debug, Default)]
pub struct UnaliasDistinctAggregates;

/// An aggregate function call under any number of aliases: whether it is DISTINCT.
fn aliased_aggregate(expr: &Expr) -> Option<bool> {
    match expr {
        Expr::Alias(alias) => match alias.expr.as_ref() {
            Expr::AggregateFunction(AggregateFunction { params, .. }) => Some(params.distinct),
            inner @ Expr::Alias(_) => aliased_aggregate(inner),
            _ => None,
        },
        _ => None,
    }
}

fn is_distinct(expr: &Expr) -> bool {
    match expr {
        Expr::AggregateFunction(AggregateFunction { params, .. }) => params.distinct,
        other => aliased_aggregate(other) == Some(true),
    }
}

/// An aggregate function call without its aliases; any other expression as it is. Two calls
/// whose aliases kept them apart (`count(Int64(1)) AS "count(*)"` twice) would then collide:
/// the caller leaves such an aggregate be.
fn unaliased(expr: Expr) -> Expr {
    if aliased_aggregate(&expr).is_none() {
        return expr;
    }
    let mut e = expr;
    while let Expr::Alias(alias) = e {
        e = *alias.expr;
    }
    e
}

impl OptimizerRule for UnaliasDistinctAggregates {
    fn name(&self) -> &str {
        "persona_unalias_distinct_aggregates"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(&self, plan: LogicalPlan, _config: &dyn OptimizerConfig) -> DfResult<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = plan else { return Ok(Transformed::no(plan)) };
        let grouping_sets = matches!(aggregate.group_expr.first(), Some(Expr::GroupingSet(_)));
        let has_distinct = aggregate.aggr_expr.iter().any(is_distinct);
        let has_alias = aggregate.aggr_expr.iter().any(|e| aliased_aggregate(e).is_some());
        if grouping_sets || !has_distinct || !has_alias {
            return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
        }
        let original = Arc::clone(&aggregate.schema);
        let bare_exprs: Vec<Expr> = aggregate.aggr_expr.iter().cloned().map(unaliased).collect();
        // Two aggregates that differ only in their aliases would collide: leave such a plan be.
        let Ok(bare) = Aggregate::try_new(Arc::clone(&aggregate.input), aggregate.group_expr.clone(), bare_exprs) else {
            return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
        };
        // Each output column of the new aggregate, named and qualified as before.
        let names: Vec<Expr> = bare
            .schema
            .iter()
            .zip(original.iter())
            .map(|((qualifier, field), (was_qualifier, was))| {
                Expr::Column(Column::new(qualifier.cloned(), field.name())).alias_qualified(was_qualifier.cloned(), was.name())
            })
            .collect();
        let projection = Projection::try_new(names, Arc::new(LogicalPlan::Aggregate(bare)))?;
        Ok(Transformed::yes(LogicalPlan::Projection(projection)))
    }
}
