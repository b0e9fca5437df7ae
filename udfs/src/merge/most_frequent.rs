//! `most_frequent(value)`: the mode, ties broken by the smallest value.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, new_null_array};
use arrow::buffer::OffsetBuffer;
use arrow::compute::cast;
use arrow::row::{RowConverter, SortField};
use arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature,
    Volatility,
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

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    /// GROUP BY with many small groups (one golden record per person): one accumulator for
    /// all groups, instead of one per group fed a slice at a time.
    fn create_groups_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        let [value] = args.expr_fields else {
            return exec_err!("{NAME} takes 1 argument");
        };
        Ok(Box::new(MostFrequentGroups::try_new(value.data_type())?))
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

/// Per group, each distinct value (in Arrow's row format, whose bytes sort as the values do)
/// with its count. Groups of a golden record hold a handful of values, so a short list searched
/// in order beats a hash map; a group that outgrows it switches to one.
enum Counts {
    Few(Vec<(Box<[u8]>, i64)>),
    Many(HashMap<Box<[u8]>, i64>),
}

impl Default for Counts {
    fn default() -> Self {
        Counts::Few(Vec::new())
    }
}

impl Counts {
    const FEW: usize = 16;

    /// Counts `value` `n` more times; returns the bytes newly held (0 for a value seen before).
    fn add(&mut self, value: &[u8], n: i64) -> usize {
        match self {
            Counts::Few(list) => {
                if let Some(entry) = list.iter_mut().find(|(v, _)| v.as_ref() == value) {
                    entry.1 += n;
                    return 0;
                }
                if list.len() < Self::FEW {
                    list.push((value.into(), n));
                } else {
                    let mut map: HashMap<Box<[u8]>, i64> = list.drain(..).collect();
                    map.insert(value.into(), n);
                    *self = Counts::Many(map);
                }
                value.len() + 24
            }
            Counts::Many(map) => match map.get_mut(value) {
                Some(count) => {
                    *count += n;
                    0
                }
                None => {
                    map.insert(value.into(), n);
                    value.len() + 32
                }
            },
        }
    }

    fn entries(&self) -> Box<dyn Iterator<Item = (&[u8], i64)> + '_> {
        match self {
            Counts::Few(list) => Box::new(list.iter().map(|(v, n)| (v.as_ref(), *n))),
            Counts::Many(map) => Box::new(map.iter().map(|(v, n)| (v.as_ref(), *n))),
        }
    }

    /// The most frequent value; on equal counts the smallest.
    fn best(&self) -> Option<&[u8]> {
        self.entries()
            .reduce(|best, c| if c.1 > best.1 || (c.1 == best.1 && c.0 < best.0) { c } else { best })
            .map(|(v, _)| v)
    }

    fn size(&self) -> usize {
        match self {
            Counts::Few(list) => list.iter().map(|(v, _)| v.len() + 24).sum(),
            Counts::Many(map) => map.keys().map(|v| v.len() + 32).sum(),
        }
    }
}

struct MostFrequentGroups {
    value_type: DataType,
    rows: RowConverter,
    groups: Vec<Counts>,
    /// Bytes held by `groups`, kept up to date for `size`.
    held: usize,
}

impl MostFrequentGroups {
    fn try_new(value_type: &DataType) -> Result<Self> {
        Ok(Self {
            value_type: value_type.clone(),
            rows: RowConverter::new(vec![SortField::new(value_type.clone())])?,
            groups: Vec::new(),
            held: 0,
        })
    }

    /// Values back from row format, in the declared type.
    fn values<'a>(&self, rows: impl Iterator<Item = Option<&'a [u8]>>) -> Result<ArrayRef> {
        let null = self.rows.convert_columns(&[new_null_array(&self.value_type, 1)])?;
        let parser = self.rows.parser();
        let parsed: Vec<_> = rows.map(|r| r.map_or(null.row(0), |bytes| parser.parse(bytes))).collect();
        let array = self.rows.convert_rows(parsed)?.remove(0);
        // Dictionaries come back as their values; answer in the type asked for.
        Ok(if array.data_type() == &self.value_type { array } else { cast(&array, &self.value_type)? })
    }
}

impl GroupsAccumulator for MostFrequentGroups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        let [values] = values else {
            return exec_err!("{NAME} takes 1 argument, got {}", values.len());
        };
        self.groups.resize_with(total_num_groups, Counts::default);
        let rows = self.rows.convert_columns(std::slice::from_ref(values))?;
        let nulls = values.logical_nulls();
        for (row, &group) in group_indices.iter().enumerate() {
            let wanted = opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row));
            if wanted && nulls.as_ref().is_none_or(|n| n.is_valid(row)) {
                self.held += self.groups[group].add(rows.row(row).as_ref(), 1);
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef], group_indices: &[usize], total_num_groups: usize) -> Result<()> {
        let [values, counts] = states else {
            return exec_err!("{NAME}: expected 2 state columns, got {}", states.len());
        };
        self.groups.resize_with(total_num_groups, Counts::default);
        let (values, counts) = (values.as_list::<i32>(), counts.as_list::<i32>());
        let rows = self.rows.convert_columns(std::slice::from_ref(values.values()))?;
        let all_counts = counts.values().as_primitive::<Int64Type>();
        let (value_offsets, count_offsets) = (values.value_offsets(), counts.value_offsets());
        for (row, &group) in group_indices.iter().enumerate() {
            if values.is_null(row) {
                continue;
            }
            let (start, end) = (value_offsets[row] as usize, value_offsets[row + 1] as usize);
            let count_start = count_offsets[row] as usize;
            for (k, i) in (start..end).enumerate() {
                self.held += self.groups[group].add(rows.row(i).as_ref(), all_counts.value(count_start + k));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        self.held = self.groups.iter().map(Counts::size).sum();
        self.values(groups.iter().map(Counts::best))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.groups);
        self.held = self.groups.iter().map(Counts::size).sum();
        let mut offsets = vec![0i32];
        let mut counts = Vec::new();
        let mut bytes = Vec::new();
        for g in &groups {
            for (value, n) in g.entries() {
                bytes.push(Some(value));
                counts.push(n);
            }
            offsets.push(bytes.len() as i32);
        }
        let values = self.values(bytes.into_iter())?;
        let offsets = OffsetBuffer::new(offsets.into());
        let value_field = Arc::new(Field::new_list_field(self.value_type.clone(), true));
        let count_field = Arc::new(Field::new_list_field(DataType::Int64, true));
        Ok(vec![
            Arc::new(ListArray::try_new(value_field, offsets.clone(), values, None)?),
            Arc::new(ListArray::try_new(count_field, offsets, Arc::new(Int64Array::from(counts)), None)?),
        ])
    }

    /// Each row as a state of its own: its value counted once (none when NULL or filtered out).
    fn convert_to_state(&self, values: &[ArrayRef], opt_filter: Option<&BooleanArray>) -> Result<Vec<ArrayRef>> {
        let [values] = values else {
            return exec_err!("{NAME} takes 1 argument, got {}", values.len());
        };
        let nulls = values.logical_nulls();
        let keep: Vec<bool> = (0..values.len())
            .map(|row| opt_filter.is_none_or(|f| f.is_valid(row) && f.value(row)) && nulls.as_ref().is_none_or(|n| n.is_valid(row)))
            .collect();
        let kept = arrow::compute::filter(values, &BooleanArray::from(keep.clone()))?;
        let mut offsets = vec![0i32];
        for k in &keep {
            offsets.push(offsets[offsets.len() - 1] + i32::from(*k));
        }
        let offsets = OffsetBuffer::new(offsets.into());
        let ones = Int64Array::from(vec![1i64; kept.len()]);
        let value_field = Arc::new(Field::new_list_field(self.value_type.clone(), true));
        let count_field = Arc::new(Field::new_list_field(DataType::Int64, true));
        Ok(vec![
            Arc::new(ListArray::try_new(value_field, offsets.clone(), kept, None)?),
            Arc::new(ListArray::try_new(count_field, offsets, Arc::new(ones), None)?),
        ])
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.groups.capacity() * size_of::<Counts>() + self.held + self.rows.size()
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

    /// The mode of each group by brute force: most frequent, ties to the smallest.
    fn modes(rows: &[(usize, Option<&str>)], groups: usize) -> Vec<Option<String>> {
        (0..groups)
            .map(|g| {
                let mut counts: HashMap<&str, i64> = HashMap::new();
                for (_, v) in rows.iter().filter(|(k, v)| *k == g && v.is_some()) {
                    *counts.entry(v.unwrap()).or_default() += 1;
                }
                let mut all: Vec<_> = counts.into_iter().collect();
                all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                all.first().map(|(v, _)| v.to_string())
            })
            .collect()
    }

    #[test]
    fn groups_accumulator_matches_the_mode_of_each_group_across_states() {
        // 40 groups, values from a small pool so counts tie often; one group gets more distinct
        // values than the short list holds. Half the rows go straight in, the other half through
        // a partial state (state, convert_to_state) and merge_batch.
        let pool = ["ann", "bob", "cy", "dee", "é", ""];
        let mut rows: Vec<(usize, Option<&str>)> = (0..2000usize)
            .map(|i| (i * 7 % 40, if i % 11 == 0 { None } else { Some(pool[(i * i + 3 * i) % pool.len()]) }))
            .collect();
        let many: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
        rows.extend(many.iter().map(|v| (0usize, Some(v.as_str()))));
        let (direct, partial) = rows.split_at(rows.len() / 2);
        let (partial, converted) = partial.split_at(partial.len() / 2);
        let batch = |part: &[(usize, Option<&str>)]| {
            let values: ArrayRef = Arc::new(part.iter().map(|(_, v)| *v).collect::<StringArray>());
            (values, part.iter().map(|(g, _)| *g).collect::<Vec<_>>())
        };
        let mut acc = MostFrequentGroups::try_new(&DataType::Utf8).unwrap();
        let (values, groups) = batch(direct);
        acc.update_batch(&[values], &groups, None, 40).unwrap();
        let mut other = MostFrequentGroups::try_new(&DataType::Utf8).unwrap();
        let (values, groups) = batch(partial);
        other.update_batch(&[values], &groups, None, 40).unwrap();
        let state = other.state(EmitTo::All).unwrap();
        acc.merge_batch(&state, &(0..40).collect::<Vec<_>>(), 40).unwrap();
        let (values, groups) = batch(converted);
        let state = acc.convert_to_state(&[values], None).unwrap();
        acc.merge_batch(&state, &groups, 40).unwrap();
        let result = acc.evaluate(EmitTo::All).unwrap();
        let got: Vec<Option<String>> = result.as_string::<i32>().iter().map(|v| v.map(str::to_string)).collect();
        assert_eq!(got, modes(&rows, 40));
    }
}
