//! `latest_value(value, ts)`: the most recent non-NULL value.

use std::sync::LazyLock;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::{DOC_SECTION, Survivor};

const NAME: &str = "latest_value";

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct LatestValue {
    signature: Signature,
}

impl LatestValue {
    pub(crate) fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for LatestValue {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [value, _] => Ok(value.clone()),
            _ => exec_err!(
                "{NAME} takes 2 arguments (value, ts), got {}",
                arg_types.len()
            ),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let [value, ts] = args.expr_fields else {
            return exec_err!("{NAME} takes 2 arguments (value, ts)");
        };
        Ok(Box::new(LatestValueAccumulator(Survivor::new(
            value.data_type(),
            ts.data_type(),
        )?)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let [value, ts] = args.input_fields else {
            return exec_err!("{NAME} takes 2 arguments (value, ts)");
        };
        Ok(Survivor::state_fields(
            args.name,
            ("value", value.data_type()),
            ("ts", ts.data_type()),
        )
        .to_vec())
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            Documentation::builder(
                DOC_SECTION,
                "The non-NULL value with the greatest timestamp. Rows whose value or ts is NULL \
                 are ignored; when several values share the greatest ts, the smallest value \
                 wins, so the answer does not depend on row order or partitioning. NULL when \
                 no row qualifies.",
                "latest_value(value, ts)",
            )
            .with_sql_example(
                "```sql\n> SELECT customer_id, latest_value(email, updated_at) FROM profiles GROUP BY customer_id;\n```",
            )
            .with_argument("value", "Expression of any type.")
            .with_argument("ts", "Ordering key of any orderable type, usually a timestamp.")
            .build()
        });
        Some(&DOC)
    }
}

#[derive(Debug)]
struct LatestValueAccumulator(Survivor);

impl Accumulator for LatestValueAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values {
            [value, ts] => self.0.update(value, ts, None),
            _ => exec_err!("{NAME} takes 2 arguments (value, ts), got {}", values.len()),
        }
    }

    /// The state is itself a (value, ts) pair, so merging partial results is an update.
    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.0.state().to_vec())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.0.value().clone())
    }

    fn size(&self) -> usize {
        self.0.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::tests::state_arrays;
    use arrow::array::{StringArray, TimestampMicrosecondArray};
    use std::sync::Arc;

    fn batch(values: &[Option<&str>], ts: &[Option<i64>]) -> Vec<ArrayRef> {
        vec![
            Arc::new(values.iter().copied().collect::<StringArray>()),
            Arc::new(ts.iter().copied().collect::<TimestampMicrosecondArray>()),
        ]
    }

    fn accumulator() -> LatestValueAccumulator {
        let ts = DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None);
        LatestValueAccumulator(Survivor::new(&DataType::Utf8, &ts).unwrap())
    }

    /// Splitting rows over partial accumulators and merging their states must give the answer
    /// a single accumulator gives.
    #[test]
    fn merge_batch_equals_single_pass() {
        let values = [
            Some("old"),
            Some("new"),
            None,
            Some("tie-b"),
            Some("tie-a"),
            Some("x"),
        ];
        let ts = [Some(1), Some(7), Some(9), Some(7), Some(7), None];

        let mut single = accumulator();
        single.update_batch(&batch(&values, &ts)).unwrap();
        assert_eq!(single.evaluate().unwrap(), ScalarValue::from("new"));

        let mut final_acc = accumulator();
        for (lo, hi) in [(0, 2), (2, 4), (4, 6)] {
            let mut partial = accumulator();
            partial
                .update_batch(&batch(&values[lo..hi], &ts[lo..hi]))
                .unwrap();
            final_acc.merge_batch(&state_arrays(&mut partial)).unwrap();
        }
        assert_eq!(final_acc.evaluate().unwrap(), ScalarValue::from("new"));

        // an empty partial state (typed NULLs) merges as nothing
        final_acc
            .merge_batch(&state_arrays(&mut accumulator()))
            .unwrap();
        assert_eq!(final_acc.evaluate().unwrap(), ScalarValue::from("new"));
    }

    #[test]
    fn ties_go_to_the_smallest_value_in_any_order() {
        let mut a = accumulator();
        a.update_batch(&batch(&[Some("b"), Some("a")], &[Some(3), Some(3)]))
            .unwrap();
        let mut b = accumulator();
        b.update_batch(&batch(&[Some("a"), Some("b")], &[Some(3), Some(3)]))
            .unwrap();
        assert_eq!(a.evaluate().unwrap(), ScalarValue::from("a"));
        assert_eq!(b.evaluate().unwrap(), ScalarValue::from("a"));
    }
}
