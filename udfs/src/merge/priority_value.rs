//! `priority_value(value, source, priorities)`: the value from the most trusted source.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Coercion, ColumnarValue, Documentation, Signature,
    TypeSignatureClass, Volatility,
};
use datafusion::physical_expr::expressions::Literal;

use super::{DOC_SECTION, Survivor};
use crate::common::{StringArg, decode_dictionaries, string_coercion};

const NAME: &str = "priority_value";

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct PriorityValue {
    signature: Signature,
}

impl PriorityValue {
    pub(crate) fn new() -> Self {
        Self {
            signature: Signature::coercible(
                vec![
                    Coercion::new_exact(TypeSignatureClass::Any),
                    string_coercion(),
                    string_coercion(),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl AggregateUDFImpl for PriorityValue {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [value, _, _] => Ok(value.clone()),
            _ => exec_err!(
                "{NAME} takes 3 arguments (value, source, priorities), got {}",
                arg_types.len()
            ),
        }
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let ([value, _, _], [_, _, priorities]) = (args.expr_fields, args.exprs) else {
            return exec_err!("{NAME} takes 3 arguments (value, source, priorities)");
        };
        let Some(priorities) = priorities.downcast_ref::<Literal>() else {
            return plan_err!(
                "{NAME}: the priority list (third argument) must be a constant string such as \
                 'crm,webshop,pos', got {priorities}"
            );
        };
        let Some(Some(list)) = priorities.value().try_as_str() else {
            return plan_err!("{NAME}: the priority list must be a non-NULL string");
        };
        Ok(Box::new(PriorityValueAccumulator {
            ranks: ranks(list)?,
            best: Survivor::new(value.data_type(), &DataType::Int64)?,
        }))
    }

    /// The state keys each value by the negated rank of its source, so the value with the
    /// greatest key is the one from the most trusted source, as for `latest_value`.
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let [value, _, _] = args.input_fields else {
            return exec_err!("{NAME} takes 3 arguments (value, source, priorities)");
        };
        Ok(Survivor::state_fields(
            args.name,
            ("value", value.data_type()),
            ("priority", &DataType::Int64),
        )
        .to_vec())
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            Documentation::builder(
                DOC_SECTION,
                "The non-NULL value from the most trusted source. `priorities` is a constant, \
                 comma-separated list of source names, most trusted first; sources are matched \
                 ignoring case and surrounding spaces. Sources not in the list (and NULL \
                 sources) rank below every listed one, so their values are used only when no \
                 listed source has one. Among values of equally trusted sources the smallest \
                 wins. NULL when every value is NULL.",
                "priority_value(value, source, priorities)",
            )
            .with_sql_example(
                "```sql\n> SELECT customer_id, priority_value(phone, source, 'crm,webshop,pos') FROM profiles GROUP BY customer_id;\n```",
            )
            .with_argument("value", "Expression of any type.")
            .with_argument("source", "Name of the row's source system (any string type).")
            .with_argument("priorities", "Constant string: source names, most trusted first.")
            .build()
        });
        Some(&DOC)
    }
}

/// Rank of each listed source (0 = most trusted); a repeated name keeps its first rank.
fn ranks(list: &str) -> Result<HashMap<String, i64>> {
    let mut ranks = HashMap::new();
    for name in list.split(',').map(|name| name.trim().to_lowercase()) {
        if name.is_empty() {
            return plan_err!("{NAME}: empty source name in priority list '{list}'");
        }
        let rank = i64::try_from(ranks.len()).unwrap_or(i64::MAX);
        ranks.entry(name).or_insert(rank);
    }
    Ok(ranks)
}

#[derive(Debug)]
struct PriorityValueAccumulator {
    ranks: HashMap<String, i64>,
    best: Survivor,
}

impl PriorityValueAccumulator {
    /// Greater is more trusted: listed sources get -rank, everything else ranks below them.
    fn key(&self, source: Option<&str>) -> i64 {
        let unlisted = -i64::try_from(self.ranks.len()).unwrap_or(i64::MAX);
        source
            .and_then(|s| self.ranks.get(&s.trim().to_lowercase()))
            .map_or(unlisted, |rank| -rank)
    }
}

impl Accumulator for PriorityValueAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [value, source, _] = values else {
            return exec_err!("{NAME} takes 3 arguments, got {}", values.len());
        };
        let source = decode_dictionaries(vec![ColumnarValue::Array(Arc::clone(source))])?;
        let source = StringArg::try_new(&source[0], NAME)?;
        let keys: ArrayRef = Arc::new(
            (0..value.len())
                .map(|row| self.key(source.get(row)))
                .collect::<Int64Array>(),
        );
        self.best.update(value, &keys, None)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        match states {
            [value, key] => self.best.update(value, key, None),
            _ => exec_err!("{NAME}: expected 2 state columns, got {}", states.len()),
        }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(self.best.state().to_vec())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.best.value().clone())
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.best.size() - size_of_val(&self.best)
            + self
                .ranks
                .keys()
                .map(|k| k.capacity() + size_of::<(String, i64)>())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::tests::state_arrays;
    use arrow::array::StringArray;

    fn accumulator(list: &str) -> PriorityValueAccumulator {
        PriorityValueAccumulator {
            ranks: ranks(list).unwrap(),
            best: Survivor::new(&DataType::Utf8, &DataType::Int64).unwrap(),
        }
    }

    fn batch(values: &[Option<&str>], sources: &[Option<&str>]) -> Vec<ArrayRef> {
        vec![
            Arc::new(values.iter().copied().collect::<StringArray>()),
            Arc::new(sources.iter().copied().collect::<StringArray>()),
            Arc::new(StringArray::from(vec!["unused"; values.len()])),
        ]
    }

    #[test]
    fn most_trusted_source_wins_across_partial_states() {
        let list = "crm, Webshop ,pos";
        let mut pos = accumulator(list);
        pos.update_batch(&batch(
            &[Some("p1"), Some("u1")],
            &[Some("pos"), Some("legacy")],
        ))
        .unwrap();
        let mut web = accumulator(list);
        web.update_batch(&batch(&[Some("w1"), None], &[Some("WEBSHOP"), Some("crm")]))
            .unwrap();
        let mut merged = accumulator(list);
        for partial in [&mut pos, &mut web] {
            merged.merge_batch(&state_arrays(partial)).unwrap();
        }
        // crm only had a NULL value, so the webshop value survives
        assert_eq!(merged.evaluate().unwrap(), ScalarValue::from("w1"));
    }

    #[test]
    fn unlisted_sources_are_a_last_resort() {
        let mut acc = accumulator("crm");
        acc.update_batch(&batch(&[Some("z"), Some("y")], &[Some("legacy"), None]))
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::from("y"));
        acc.update_batch(&batch(&[Some("c")], &[Some("crm")]))
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::from("c"));
    }

    #[test]
    fn priority_lists() {
        assert_eq!(
            ranks("a, B,a").unwrap(),
            HashMap::from([("a".into(), 0), ("b".into(), 1)])
        );
        assert!(
            ranks("a,,b")
                .unwrap_err()
                .to_string()
                .contains("empty source name")
        );
    }
}
