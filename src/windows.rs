//! Window functions over many small partitions, computed in one pass.
//!
//! Segments pick one row per customer with `row_number() OVER (PARTITION BY customer_id ORDER
//! BY ...)` and total per customer with `sum(...) OVER (PARTITION BY customer_id)`. DataFusion 55
//! evaluates a window one partition at a time: a slice of the batch, a fresh accumulator and a
//! few scalars for each. With a partition per customer of one to three rows that is 2.5-3.3 µs a
//! row (168k rows of top_spenders_per_country took about 1 s of CPU at 50M events), most of
//! the query.
//!
//! Here the input is already sorted by the partition keys and then the window's ORDER BY (the
//! sort DataFusion puts below the window). So one pass over the sorted rows numbers the
//! partitions; `row_number` is each row's position in its partition, and an aggregate over the
//! whole partition is a grouped aggregate by partition number (DataFusion's vectorised groups
//! accumulators), taken back to every row. The rule swaps a window operator for this one only
//! when every function is such a case and the sort below proves the order; anything else
//! (other frames, other functions, DISTINCT, FILTER, no sort) keeps DataFusion's operator.
//! Like DataFusion's `WindowAggExec`, it holds its input partition in memory: what it replaces
//! sits on a full sort, which held the same rows.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use datafusion::arrow::compute::{cast, concat_batches, partition, take};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::window::{PlainAggregateWindowExpr, StandardWindowExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec, WindowUDFExpr};
use datafusion::physical_expr::OrderingRequirements;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, PhysicalExpr, PlanProperties, SendableRecordBatchStream, WindowExpr,
};
use futures::TryStreamExt;

/// Aggregates whose value over a whole partition does not depend on the rows' order.
const ORDER_FREE_AGGREGATES: [&str; 5] = ["sum", "count", "min", "max", "avg"];

/// Replaces window operators this module can compute in one pass.
#[derive(Debug, Default)]
pub struct OnePassWindows;

impl PhysicalOptimizerRule for OnePassWindows {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _config: &ConfigOptions) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match one_pass(&node) {
                Some(replacement) => Transformed::yes(replacement),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "persona_one_pass_windows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// One window function, as computed here.
#[derive(Debug, Clone)]
enum Function {
    RowNumber,
    /// An order-free aggregate over the whole partition.
    Aggregate(Arc<AggregateFunctionExpr>),
}

/// The one-pass operator for `node`, when `node` is a window operator it can replace.
fn one_pass(node: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    let (exprs, input) = if let Some(w) = node.downcast_ref::<WindowAggExec>() {
        (w.window_expr(), w.input())
    } else if let Some(w) = node.downcast_ref::<BoundedWindowAggExec>() {
        (w.window_expr(), w.input())
    } else {
        return None;
    };
    let first = exprs.first()?;
    let (partition_by, order_by) = (first.partition_by(), first.order_by());
    let same_window = |e: &Arc<dyn WindowExpr>| e.partition_by() == partition_by && e.order_by() == order_by;
    if !exprs.iter().all(same_window) || !sorted_for(input, partition_by, order_by) {
        return None;
    }
    let functions = exprs.iter().map(function).collect::<Option<Vec<_>>>()?;
    // The replaced operator's schema, partitioning and order; but rows come out only once the
    // whole input is in.
    let properties = node.properties().as_ref().clone().with_emission_type(EmissionType::Final);
    Some(Arc::new(OnePassWindowExec {
        input: Arc::clone(input),
        partition_by: partition_by.to_vec(),
        functions,
        properties: Arc::new(properties),
        // The per-child form; DataFusion 55 keeps it for operators written outside it.
        #[expect(deprecated, reason = "the replaced operators state their requirement in this form too")]
        distribution: node.required_input_distribution(),
        ordering: node.required_input_ordering(),
    }))
}

/// Whether the rows `input` gives are sorted by the partition keys (in any order and
/// direction) and then the window's ORDER BY: a full sort below, with only window operators
/// (which keep their input's order and its columns' positions) in between. Rows of one
/// partition are then together and in the window's order.
fn sorted_for(input: &Arc<dyn ExecutionPlan>, partition_by: &[Arc<dyn PhysicalExpr>], order_by: &[datafusion::physical_expr::PhysicalSortExpr]) -> bool {
    let mut node = Arc::clone(input);
    while node.is::<WindowAggExec>() || node.is::<BoundedWindowAggExec>() || node.is::<OnePassWindowExec>() {
        node = Arc::clone(node.children()[0]);
    }
    let Some(sort) = node.downcast_ref::<SortExec>() else { return false };
    if sort.fetch().is_some() {
        return false;
    }
    let keys: Vec<_> = sort.expr().iter().collect();
    if keys.len() < partition_by.len() + order_by.len() {
        return false;
    }
    let (leading, rest) = keys.split_at(partition_by.len());
    let covers_partition = leading.iter().all(|k| partition_by.iter().any(|p| p == &k.expr))
        && partition_by.iter().all(|p| leading.iter().any(|k| &k.expr == p));
    // Sort keys after the window's ORDER BY only order its ties, which any order may do.
    covers_partition && rest.iter().zip(order_by).all(|(k, o)| *k == o)
}

fn function(expr: &Arc<dyn WindowExpr>) -> Option<Function> {
    if let Some(standard) = expr.as_any().downcast_ref::<StandardWindowExpr>() {
        let udf = standard.get_standard_func_expr().as_any().downcast_ref::<WindowUDFExpr>()?;
        return (udf.fun().name() == "row_number").then_some(Function::RowNumber);
    }
    let plain = expr.as_any().downcast_ref::<PlainAggregateWindowExpr>()?;
    let frame = expr.get_window_frame();
    let aggregate = plain.get_aggregate_expr();
    let whole_partition = frame.start_bound.is_unbounded() && frame.end_bound.is_unbounded();
    // `sum(x) FILTER (WHERE ...) OVER (...)` keeps DataFusion's operator. DataFusion 55 does not
    // export the trait that reads the filter; its name is in the expression's name (the
    // logical expression's display), and a false match only leaves the window as it was.
    let unfiltered = !expr.name().contains(" FILTER (WHERE ");
    let order_free = unfiltered
        && ORDER_FREE_AGGREGATES.contains(&aggregate.fun().name())
        && !aggregate.is_distinct()
        && !aggregate.ignore_nulls()
        && aggregate.order_bys().is_empty()
        && aggregate.groups_accumulator_supported();
    (whole_partition && order_free).then(|| Function::Aggregate(Arc::new(aggregate.clone())))
}

#[derive(Debug)]
struct OnePassWindowExec {
    input: Arc<dyn ExecutionPlan>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    functions: Vec<Function>,
    properties: Arc<PlanProperties>,
    /// What the replaced operator required of its input (rows of a partition together, in
    /// order), kept in case the plan is checked or optimized again.
    distribution: Vec<Distribution>,
    ordering: Vec<Option<OrderingRequirements>>,
}

impl DisplayAs for OnePassWindowExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<String> = self
            .functions
            .iter()
            .map(|func| match func {
                Function::RowNumber => "row_number".to_string(),
                Function::Aggregate(a) => a.fun().name().to_string(),
            })
            .collect();
        write!(f, "OnePassWindowExec: [{}] over {} partition key(s)", names.join(", "), self.partition_by.len())
    }
}

impl ExecutionPlan for OnePassWindowExec {
    fn name(&self) -> &'static str {
        "OnePassWindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        self.distribution.clone()
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.ordering.clone()
    }

    fn apply_expressions(&self, f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>) -> DfResult<TreeNodeRecursion> {
        let arguments = self.functions.iter().flat_map(|func| match func {
            Function::RowNumber => Vec::new(),
            Function::Aggregate(a) => a.expressions(),
        });
        for e in self.partition_by.iter().cloned().chain(arguments) {
            if f(&e)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children).map_err(|c| DataFusionError::Internal(format!("OnePassWindowExec takes one input, not {}", c.len())))?;
        Ok(Arc::new(OnePassWindowExec {
            input,
            partition_by: self.partition_by.clone(),
            functions: self.functions.clone(),
            properties: Arc::clone(&self.properties),
            distribution: self.distribution.clone(),
            ordering: self.ordering.clone(),
        }))
    }

    fn execute(&self, partition_index: usize, context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition_index, Arc::clone(&context))?;
        let input_schema = self.input.schema();
        let schema = self.schema();
        let (partition_by, functions) = (self.partition_by.clone(), self.functions.clone());
        let batch_size = context.session_config().batch_size().max(1);
        let output = futures::stream::once(async move {
            let batches: Vec<RecordBatch> = input.try_collect().await?;
            let rows = concat_batches(&input_schema, &batches)?;
            let with_windows = compute(&rows, &partition_by, &functions, &schema)?;
            let chunks: Vec<DfResult<RecordBatch>> = (0..with_windows.num_rows())
                .step_by(batch_size)
                .map(|start| Ok(with_windows.slice(start, batch_size.min(with_windows.num_rows() - start))))
                .collect();
            Ok::<_, DataFusionError>(futures::stream::iter(chunks))
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), output)))
    }
}

/// `rows` (sorted by partition, then the window order) with the window columns appended.
fn compute(
    rows: &RecordBatch,
    partition_by: &[Arc<dyn PhysicalExpr>],
    functions: &[Function],
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> DfResult<RecordBatch> {
    let n = rows.num_rows();
    let keys = partition_by.iter().map(|e| e.evaluate(rows)?.into_array(n)).collect::<DfResult<Vec<ArrayRef>>>()?;
    let ranges = if keys.is_empty() || n == 0 { vec![0..n] } else { partition(&keys)?.ranges() };
    // Each row's partition number (for aggregates) and place in its partition (row_number),
    // built only when a function needs them.
    let any = |row_number: bool| functions.iter().any(|f| matches!(f, Function::RowNumber) == row_number);
    let group: Vec<usize> = if any(false) { ranges.iter().enumerate().flat_map(|(g, r)| std::iter::repeat_n(g, r.len())).collect() } else { Vec::new() };
    let position: Vec<u64> = if any(true) { ranges.iter().flat_map(|r| 1..=r.len() as u64).collect() } else { Vec::new() };
    let mut columns = rows.columns().to_vec();
    let first_window = columns.len();
    for (k, func) in functions.iter().enumerate() {
        let column: ArrayRef = match func {
            Function::RowNumber => Arc::new(UInt64Array::from(position.clone())),
            Function::Aggregate(aggregate) => {
                let values = aggregate.expressions().iter().map(|e| e.evaluate(rows)?.into_array(n)).collect::<DfResult<Vec<_>>>()?;
                let mut accumulator = aggregate.create_groups_accumulator()?;
                accumulator.update_batch(&values, &group, None, ranges.len())?;
                let per_partition = accumulator.evaluate(EmitTo::All)?;
                let index = UInt32Array::from_iter_values(group.iter().map(|&g| g as u32));
                take(per_partition.as_ref(), &index, None)?
            }
        };
        let want = schema.field(first_window + k).data_type();
        columns.push(if column.data_type() == want { column } else { cast(&column, want)? });
    }
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}
