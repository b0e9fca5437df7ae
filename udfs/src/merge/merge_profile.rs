//! `merge_profile(profile, ts)`: a struct merged field by field, each from its latest value.

use std::sync::{Arc, LazyLock};

use arrow::array::{Array, ArrayRef, AsArray, StructArray};
use arrow::datatypes::{DataType, FieldRef, Fields};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::{DOC_SECTION, Survivor};

const NAME: &str = "merge_profile";

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct MergeProfile {
    signature: Signature,
}

impl MergeProfile {
    pub(crate) fn new() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// The fields of the merged struct: the input's, all nullable, because a field that no row
/// filled stays NULL even when the input declares it non-nullable.
fn struct_fields(profile: &DataType) -> Result<Fields> {
    match profile {
        DataType::Struct(fields) => Ok(fields
            .iter()
            .map(|field| Arc::new(field.as_ref().clone().with_nullable(true)))
            .collect()),
        other => plan_err!(
            "{NAME} expects a struct as its first argument (e.g. named_struct('email', email, \
             'phone', phone)), got {other}"
        ),
    }
}

impl AggregateUDFImpl for MergeProfile {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [profile, _] => Ok(DataType::Struct(struct_fields(profile)?)),
            _ => exec_err!(
                "{NAME} takes 2 arguments (profile, ts), got {}",
                arg_types.len()
            ),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let [profile, ts] = args.expr_fields else {
            return exec_err!("{NAME} takes 2 arguments (profile, ts)");
        };
        let fields = struct_fields(profile.data_type())?;
        let survivors = fields
            .iter()
            .map(|field| Survivor::new(field.data_type(), ts.data_type()))
            .collect::<Result<_>>()?;
        Ok(Box::new(MergeProfileAccumulator { fields, survivors }))
    }

    /// Each field keeps its own (value, ts) pair, flattened as `<field>.value`, `<field>.ts`.
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let [profile, ts] = args.input_fields else {
            return exec_err!("{NAME} takes 2 arguments (profile, ts)");
        };
        Ok(struct_fields(profile.data_type())?
            .iter()
            .flat_map(|field| {
                let suffix = |part: &str| format!("{}.{part}", field.name());
                Survivor::state_fields(
                    args.name,
                    (&suffix("value"), field.data_type()),
                    (&suffix("ts"), ts.data_type()),
                )
            })
            .collect())
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            Documentation::builder(
                DOC_SECTION,
                "Merges a struct field by field: each field of the result is that field's \
                 latest_value, i.e. its non-NULL value with the greatest ts, so a newer record \
                 with a missing phone keeps the older phone. Rows whose struct or ts is NULL are \
                 ignored; ties on ts go to the smallest value. NULL when no field has a value.",
                "merge_profile(profile, ts)",
            )
            .with_sql_example(
                "```sql\n> SELECT customer_id, merge_profile(named_struct('email', email, 'phone', phone), updated_at)\n  FROM profiles GROUP BY customer_id;\n```",
            )
            .with_argument("profile", "Struct expression, e.g. named_struct('email', email, ...).")
            .with_argument("ts", "Ordering key of any orderable type, usually a timestamp.")
            .build()
        });
        Some(&DOC)
    }
}

#[derive(Debug)]
struct MergeProfileAccumulator {
    fields: Fields,
    survivors: Vec<Survivor>,
}

impl Accumulator for MergeProfileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [profile, ts] = values else {
            return exec_err!("{NAME} takes 2 arguments, got {}", values.len());
        };
        let profile = profile.as_struct();
        for (survivor, column) in self.survivors.iter_mut().zip(profile.columns()) {
            survivor.update(column, ts, profile.nulls())?;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        if states.len() != 2 * self.survivors.len() {
            return exec_err!(
                "{NAME}: expected {} state columns, got {}",
                2 * self.survivors.len(),
                states.len()
            );
        }
        for (survivor, state) in self.survivors.iter_mut().zip(states.chunks(2)) {
            survivor.update(&state[0], &state[1], None)?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.survivors.iter().flat_map(Survivor::state).collect())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.survivors.iter().all(|s| s.value().is_null()) {
            return ScalarValue::try_from(DataType::Struct(self.fields.clone()));
        }
        let columns = self
            .survivors
            .iter()
            .map(|s| s.value().to_array())
            .collect::<Result<Vec<_>>>()?;
        let merged = StructArray::try_new(self.fields.clone(), columns, None)?;
        Ok(ScalarValue::Struct(Arc::new(merged)))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.survivors.iter().map(Survivor::size).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::tests::state_arrays;
    use arrow::array::{Int64Array, StringArray};
    use arrow::buffer::NullBuffer;
    use arrow::datatypes::Field;

    fn fields() -> Fields {
        Fields::from(vec![
            Field::new("email", DataType::Utf8, true),
            Field::new("phone", DataType::Utf8, true),
        ])
    }

    fn accumulator() -> MergeProfileAccumulator {
        let survivors = (0..2).map(|_| Survivor::new(&DataType::Utf8, &DataType::Int64).unwrap());
        MergeProfileAccumulator {
            fields: fields(),
            survivors: survivors.collect(),
        }
    }

    fn batch(
        rows: &[(Option<&str>, Option<&str>, Option<i64>)],
        valid: Option<Vec<bool>>,
    ) -> Vec<ArrayRef> {
        let email: StringArray = rows.iter().map(|r| r.0).collect();
        let phone: StringArray = rows.iter().map(|r| r.1).collect();
        let ts: Int64Array = rows.iter().map(|r| r.2).collect();
        let profile = StructArray::try_new(
            fields(),
            vec![Arc::new(email), Arc::new(phone)],
            valid.map(NullBuffer::from),
        )
        .unwrap();
        vec![Arc::new(profile), Arc::new(ts)]
    }

    fn merged(acc: &mut MergeProfileAccumulator) -> (ScalarValue, ScalarValue) {
        let ScalarValue::Struct(s) = acc.evaluate().unwrap() else {
            panic!("not a struct")
        };
        (
            ScalarValue::try_from_array(s.column(0), 0).unwrap(),
            ScalarValue::try_from_array(s.column(1), 0).unwrap(),
        )
    }

    #[test]
    fn each_field_takes_its_latest_value_across_partial_states() {
        let mut old = accumulator();
        old.update_batch(&batch(&[(Some("old@x.com"), Some("+441"), Some(1))], None))
            .unwrap();
        let mut new = accumulator();
        // the newest row has no phone; a masked (NULL struct) row must not count even though
        // its child arrays hold values
        new.update_batch(&batch(
            &[
                (Some("new@x.com"), None, Some(5)),
                (Some("ghost"), Some("ghost"), Some(9)),
            ],
            Some(vec![true, false]),
        ))
        .unwrap();
        let mut final_acc = accumulator();
        for partial in [&mut new, &mut old] {
            let state = state_arrays(partial);
            assert_eq!(state.len(), 4);
            final_acc.merge_batch(&state).unwrap();
        }
        assert_eq!(
            merged(&mut final_acc),
            (ScalarValue::from("new@x.com"), ScalarValue::from("+441"))
        );
    }

    #[test]
    fn nothing_seen_is_a_null_struct() {
        let mut acc = accumulator();
        acc.update_batch(&batch(
            &[(None, None, Some(1)), (Some("a"), None, None)],
            None,
        ))
        .unwrap();
        let result = acc.evaluate().unwrap();
        assert!(result.is_null(), "{result:?}");
        assert_eq!(result.data_type(), DataType::Struct(fields()));
    }
}
