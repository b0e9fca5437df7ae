//! Survivorship aggregates: which value a golden record keeps when sources disagree.
//!
//! All of them keep "the best" non-NULL value under some key (the latest timestamp, the most
//! frequent, the highest-priority source). [`Survivor`] is that choice for one value under an
//! orderable key; its state is just `(value, key)`, so partial aggregates merge exactly like
//! raw rows and results do not depend on how rows were partitioned. Ties on the key go to the
//! smallest value, which makes the answer deterministic too.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, make_comparator};
use arrow::buffer::NullBuffer;
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{AggregateUDF, DocSection};

pub(crate) mod latest_value;
pub(crate) mod merge_profile;
pub(crate) mod most_frequent;
pub(crate) mod priority_value;

pub(crate) const DOC_SECTION: DocSection = DocSection {
    include: true,
    label: "Survivorship Aggregate Functions",
    description: Some("Pick the value a merged (golden) record keeps from several sources."),
};

/// The aggregate UDFs of this module.
pub(crate) fn udafs() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::from(latest_value::LatestValue::new()),
        AggregateUDF::from(most_frequent::MostFrequent::new()),
        AggregateUDF::from(priority_value::PriorityValue::new()),
        AggregateUDF::from(merge_profile::MergeProfile::new()),
    ]
}

/// The non-NULL value with the greatest key seen so far; on equal keys, the smallest value.
#[derive(Debug)]
pub(crate) struct Survivor {
    value: ScalarValue,
    key: ScalarValue,
}

impl Survivor {
    pub(crate) fn new(value_type: &DataType, key_type: &DataType) -> Result<Self> {
        Ok(Self {
            value: ScalarValue::try_from(value_type)?,
            key: ScalarValue::try_from(key_type)?,
        })
    }

    /// Offers every row whose value and key are non-NULL and which `rows` (if given) marks
    /// valid: a struct's null mask, whose child arrays may hold leftovers under NULL rows.
    pub(crate) fn update(
        &mut self,
        values: &ArrayRef,
        keys: &ArrayRef,
        rows: Option<&NullBuffer>,
    ) -> Result<()> {
        let value_nulls = values.logical_nulls();
        let key_nulls = keys.logical_nulls();
        let usable = |row: usize| {
            value_nulls.as_ref().is_none_or(|n| n.is_valid(row))
                && key_nulls.as_ref().is_none_or(|n| n.is_valid(row))
                && rows.is_none_or(|n| n.is_valid(row))
        };
        // Pick the batch's best row with array comparators, then build only one ScalarValue.
        let key_order = make_comparator(keys.as_ref(), keys.as_ref(), SortOptions::default())?;
        let mut value_order = None;
        let mut best: Option<usize> = None;
        for row in (0..values.len()).filter(|&row| usable(row)) {
            let Some(current) = best else {
                best = Some(row);
                continue;
            };
            let better = match key_order(row, current) {
                Ordering::Greater => true,
                Ordering::Less => false,
                Ordering::Equal => {
                    if value_order.is_none() {
                        value_order = Some(make_comparator(
                            values.as_ref(),
                            values.as_ref(),
                            SortOptions::default(),
                        )?);
                    }
                    value_order
                        .as_ref()
                        .is_some_and(|cmp| cmp(row, current).is_lt())
                }
            };
            if better {
                best = Some(row);
            }
        }
        if let Some(row) = best {
            self.offer(
                ScalarValue::try_from_array(values, row)?,
                ScalarValue::try_from_array(keys, row)?,
            );
        }
        Ok(())
    }

    fn offer(&mut self, value: ScalarValue, key: ScalarValue) {
        let better = self.key.is_null()
            || match key.partial_cmp(&self.key) {
                Some(Ordering::Greater) => true,
                Some(Ordering::Equal) => {
                    value.partial_cmp(&self.value).is_some_and(Ordering::is_lt)
                }
                Some(Ordering::Less) | None => false,
            };
        if better {
            self.value = value;
            self.key = key;
        }
    }

    pub(crate) fn value(&self) -> &ScalarValue {
        &self.value
    }

    /// The partial-aggregation state: the value and its key (both NULL when nothing was seen).
    pub(crate) fn state(&self) -> [ScalarValue; 2] {
        [self.value.clone(), self.key.clone()]
    }

    /// The fields of [`Self::state`] under an aggregate's `state_name`, each given as its name
    /// suffix and type; nullable, because the state is NULL until a row qualifies.
    pub(crate) fn state_fields(
        state_name: &str,
        value: (&str, &DataType),
        key: (&str, &DataType),
    ) -> [FieldRef; 2] {
        [value, key].map(|(suffix, data_type)| {
            Arc::new(Field::new(
                format_state_name(state_name, suffix),
                data_type.clone(),
                true,
            ))
        })
    }

    pub(crate) fn size(&self) -> usize {
        size_of_val(self) + self.value.size() + self.key.size()
            - size_of_val(&self.value)
            - size_of_val(&self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use datafusion::logical_expr::Accumulator;

    /// An accumulator's partial state as the arrays a final accumulator's `merge_batch` takes.
    pub(super) fn state_arrays(acc: &mut dyn Accumulator) -> Vec<ArrayRef> {
        acc.state()
            .unwrap()
            .iter()
            .map(|s| s.to_array().unwrap())
            .collect()
    }

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(values.iter().copied().collect::<StringArray>())
    }

    fn ints(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(values.iter().copied().collect::<Int64Array>())
    }

    #[test]
    fn greatest_key_then_smallest_value() {
        let mut s = Survivor::new(&DataType::Utf8, &DataType::Int64).unwrap();
        s.update(
            &strings(&[Some("a"), None, Some("c"), Some("b"), Some("z")]),
            &ints(&[Some(1), Some(9), Some(5), Some(5), None]),
            None,
        )
        .unwrap();
        // the NULL value at key 9 and the value without a key are skipped; 5 ties, "b" < "c"
        assert_eq!(s.value(), &ScalarValue::from("b"));
        s.update(&strings(&[Some("a")]), &ints(&[Some(5)]), None)
            .unwrap();
        assert_eq!(s.value(), &ScalarValue::from("a"));
        s.update(&strings(&[Some("y")]), &ints(&[Some(4)]), None)
            .unwrap();
        assert_eq!(s.value(), &ScalarValue::from("a"));
    }

    #[test]
    fn masked_rows_are_ignored() {
        let mut s = Survivor::new(&DataType::Utf8, &DataType::Int64).unwrap();
        let mask = NullBuffer::from(vec![true, false]);
        s.update(
            &strings(&[Some("kept"), Some("masked")]),
            &ints(&[Some(1), Some(2)]),
            Some(&mask),
        )
        .unwrap();
        assert_eq!(s.value(), &ScalarValue::from("kept"));
    }

    #[test]
    fn empty_state_is_typed_nulls() {
        let s = Survivor::new(&DataType::Utf8, &DataType::Int64).unwrap();
        assert_eq!(
            s.state(),
            [ScalarValue::Utf8(None), ScalarValue::Int64(None)]
        );
    }
}
