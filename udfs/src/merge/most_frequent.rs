//! `most_frequent(value)`: the mode, ties broken by the smallest value.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::DOC_SECTION;

const NAME: &str = "most_frequent";

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct MostFrequent {
    signature: Signature,
}

impl MostFrequent {
    pub(crate) fn new() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for MostFrequent {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [value] => Ok(value.clone()),
            _ => exec_err!("{NAME} takes 1 argument, got {}", arg_types.len()),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let [value] = args.expr_fields else {
            return exec_err!("{NAME} takes 1 argument");
        };
        Ok(Box::new(MostFrequentAccumulator {
            value_type: value.data_type().clone(),
            counts: HashMap::new(),
        }))
    }

    /// Partial states carry every distinct value with its count: a value rare in each
    /// partition can still be the most frequent overall, so nothing can be dropped early.
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let [value] = args.input_fields else {
            return exec_err!("{NAME} takes 1 argument");
        };
        Ok(vec![
            Arc::new(Field::new_list(
                format_state_name(args.name, "values"),
                Field::new_list_field(value.data_type().clone(), true),
                true,
            )),
            Arc::new(Field::new_list(
                format_state_name(args.name, "counts"),
                Field::new_list_field(DataType::Int64, true),
                true,
            )),
        ])
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            Documentation::builder(
                DOC_SECTION,
                "The most frequent non-NULL value (the mode). When several values are equally \
                 frequent the smallest one wins (by the type's ordering: 'a' before 'b'), so the \
                 answer does not depend on row order or partitioning. NULL when every value is \
                 NULL.",
                "most_frequent(value)",
            )
            .with_sql_example(
                "```sql\n> SELECT most_frequent(city) FROM (VALUES ('Leeds'), ('York'), ('Leeds')) t(city);\nLeeds\n```",
            )
            .with_argument("value", "Expression of any type.")
            .build()
        });
        Some(&DOC)
    }
}

#[derive(Debug)]
struct MostFrequentAccumulator {
    value_type: DataType,
    counts: HashMap<ScalarValue, i64>,
}

impl Accumulator for MostFrequentAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [values] = values else {
            return exec_err!("{NAME} takes 1 argument, got {}", values.len());
        };
        let nulls = values.logical_nulls();
        for row in 0..values.len() {
            if nulls.as_ref().is_none_or(|n| n.is_valid(row)) {
                *self
                    .counts
                    .entry(ScalarValue::try_from_array(values, row)?)
                    .or_default() += 1;
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, counts] = states else {
            return exec_err!("{NAME}: expected 2 state columns, got {}", states.len());
        };
        let (values, counts) = (values.as_list::<i32>(), counts.as_list::<i32>());
        for row in (0..values.len()).filter(|&row| values.is_valid(row)) {
            let row_values = values.value(row);
            let row_counts = counts.value(row);
            let row_counts = row_counts.as_primitive::<Int64Type>();
            for i in 0..row_values.len() {
                *self
                    .counts
                    .entry(ScalarValue::try_from_array(&row_values, i)?)
                    .or_default() += row_counts.value(i);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let (values, counts): (Vec<ScalarValue>, Vec<ScalarValue>) = self
            .counts
            .iter()
            .map(|(value, count)| (value.clone(), ScalarValue::Int64(Some(*count))))
            .unzip();
        Ok(vec![
            ScalarValue::List(ScalarValue::new_list_nullable(&values, &self.value_type)),
            ScalarValue::List(ScalarValue::new_list_nullable(&counts, &DataType::Int64)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let best = self.counts.iter().reduce(|best, candidate| {
            let better = candidate.1 > best.1
                || (candidate.1 == best.1
                    && candidate.0.partial_cmp(best.0).is_some_and(|o| o.is_lt()));
            if better { candidate } else { best }
        });
        match best {
            Some((value, _)) => Ok(value.clone()),
            None => ScalarValue::try_from(&self.value_type),
        }
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self.counts.capacity() * size_of::<(ScalarValue, i64)>()
            + self
                .counts
                .keys()
                .map(|k| k.size() - size_of_val(k))
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::tests::state_arrays;
    use arrow::array::StringArray;

    fn accumulator() -> MostFrequentAccumulator {
        MostFrequentAccumulator {
            value_type: DataType::Utf8,
            counts: HashMap::new(),
        }
    }

    fn strings(values: &[Option<&str>]) -> Vec<ArrayRef> {
        vec![Arc::new(values.iter().copied().collect::<StringArray>())]
    }

    #[test]
    fn counts_add_up_across_partial_states() {
        // "b" leads no partition ("a" leads the first, "c" the second) but wins overall: 3 vs 2.
        let mut first = accumulator();
        first
            .update_batch(&strings(&[Some("a"), Some("a"), Some("b"), None]))
            .unwrap();
        let mut second = accumulator();
        second
            .update_batch(&strings(&[Some("c"), Some("c"), Some("b"), Some("b")]))
            .unwrap();
        let mut merged = accumulator();
        merged.merge_batch(&state_arrays(&mut first)).unwrap();
        merged.merge_batch(&state_arrays(&mut second)).unwrap();
        merged
            .merge_batch(&state_arrays(&mut accumulator()))
            .unwrap();
        assert_eq!(merged.evaluate().unwrap(), ScalarValue::from("b"));
    }

    #[test]
    fn ties_go_to_the_smallest_value_and_all_null_is_null() {
        let mut acc = accumulator();
        acc.update_batch(&strings(&[
            Some("pear"),
            Some("apple"),
            Some("pear"),
            Some("apple"),
        ]))
        .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::from("apple"));

        let mut nulls = accumulator();
        nulls.update_batch(&strings(&[None, None])).unwrap();
        assert_eq!(nulls.evaluate().unwrap(), ScalarValue::Utf8(None));
    }
}
