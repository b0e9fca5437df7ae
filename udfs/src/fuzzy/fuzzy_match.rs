//! `fuzzy_match(str1, str2, threshold [, method])`: is a similarity at least a threshold?

use std::sync::{Arc, LazyLock};

use arrow::array::BooleanArray;
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::types::{NativeType, logical_float64};
use datafusion::common::{exec_datafusion_err, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl,
    Signature, TypeSignature, TypeSignatureClass, Volatility,
};

use super::jaro::Jaro;
use super::jaro_winkler::JaroWinkler;
use super::normalized_damerau_levenshtein::NormalizedDamerauLevenshtein;
use super::normalized_levenshtein::NormalizedLevenshtein;
use super::sorensen_dice::SorensenDice;
use super::{DOC_SECTION, NfcArg, PairMetric};
use crate::common::{Float64Arg, Shape, StringArg, decode_dictionaries, string_coercion};

const NAME: &str = "fuzzy_match";

fn unknown_method(name: &str) -> String {
    format!(
        "{NAME}: unknown method '{name}'; expected one of 'jaro_winkler', 'jaro', \
         'levenshtein', 'damerau', 'sorensen_dice'"
    )
}

/// The similarity `fuzzy_match` thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Method {
    JaroWinkler,
    Jaro,
    Levenshtein,
    Damerau,
    SorensenDice,
}

impl Method {
    /// Names are matched ignoring case and surrounding spaces; the similarity functions' own
    /// names are accepted as aliases so a query can name the function it was tuned with.
    fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jaro_winkler" => Some(Self::JaroWinkler),
            "jaro" => Some(Self::Jaro),
            "levenshtein" | "normalized_levenshtein" => Some(Self::Levenshtein),
            "damerau" | "damerau_levenshtein" | "normalized_damerau_levenshtein" => {
                Some(Self::Damerau)
            }
            "sorensen_dice" => Some(Self::SorensenDice),
            _ => None,
        }
    }

    /// Parses a method met while executing (a constant was already checked at planning).
    fn parse_at_execution(name: &str) -> Result<Self> {
        Self::parse(name).ok_or_else(|| exec_datafusion_err!("{}", unknown_method(name)))
    }

    fn similarity(self, a: &str, b: &str) -> Option<f64> {
        match self {
            Self::JaroWinkler => JaroWinkler::compute(a, b),
            Self::Jaro => Jaro::compute(a, b),
            Self::Levenshtein => NormalizedLevenshtein::compute(a, b),
            Self::Damerau => NormalizedDamerauLevenshtein::compute(a, b),
            Self::SorensenDice => SorensenDice::compute(a, b),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct FuzzyMatch {
    signature: Signature,
}

impl FuzzyMatch {
    pub(crate) fn new() -> Self {
        let threshold = Coercion::new_implicit(
            TypeSignatureClass::Native(logical_float64()),
            vec![TypeSignatureClass::Numeric],
            NativeType::Float64,
        );
        let three = vec![string_coercion(), string_coercion(), threshold.clone()];
        let four = vec![
            string_coercion(),
            string_coercion(),
            threshold,
            string_coercion(),
        ];
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(three),
                    TypeSignature::Coercible(four),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for FuzzyMatch {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    /// A constant method name is checked here so a typo fails at planning, before any data is
    /// read; a method taken from a column can only be checked row by row.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if let Some(Some(method)) = args.scalar_arguments.get(3)
            && let Some(Some(name)) = method.try_as_str()
            && Method::parse(name).is_none()
        {
            return plan_err!("{}", unknown_method(name));
        }
        Ok(Arc::new(Field::new(NAME, DataType::Boolean, true)))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let shape = Shape::of(&args.args, args.number_rows);
        let args = decode_dictionaries(args.args)?;
        let (a, b, threshold) = match args.as_slice() {
            [a, b, t] | [a, b, t, _] => (
                NfcArg::try_new(a, NAME)?,
                NfcArg::try_new(b, NAME)?,
                Float64Arg::try_new(t, NAME)?,
            ),
            _ => return exec_err!("{NAME} takes 3 or 4 arguments, got {}", args.len()),
        };
        let method = match args.get(3) {
            None => MethodArg::Fixed(Some(Method::JaroWinkler)),
            Some(arg) => match StringArg::try_new(arg, NAME)? {
                StringArg::Scalar(name) => {
                    MethodArg::Fixed(name.map(Method::parse_at_execution).transpose()?)
                }
                column => MethodArg::PerRow(column),
            },
        };
        let values = (0..shape.rows)
            .map(|row| {
                let (Some(a), Some(b), Some(threshold)) =
                    (a.get(row), b.get(row), threshold.get(row))
                else {
                    return Ok(None);
                };
                // NaN compares false with everything, so it would silently reject every pair;
                // an unknown threshold gives an unknown answer instead.
                if threshold.is_nan() {
                    return Ok(None);
                }
                let Some(method) = method.get(row)? else {
                    return Ok(None);
                };
                Ok(method.similarity(&a, &b).map(|s| s >= threshold))
            })
            .collect::<Result<BooleanArray>>()?;
        shape.finish(Arc::new(values))
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            Documentation::builder(
                DOC_SECTION,
                "True when the similarity of two strings is at least `threshold`. `method` \
                 picks the similarity: 'jaro_winkler' (default), 'jaro', 'levenshtein' \
                 (normalized_levenshtein), 'damerau' (normalized_damerau_levenshtein) or \
                 'sorensen_dice'; an unknown method is an error. NULL if any argument is NULL \
                 or the threshold is NaN. Similarities lie in [0, 1], so a threshold above 1 \
                 never matches and one at or below 0 always does.",
                "fuzzy_match(str1, str2, threshold[, method])",
            )
            .with_sql_example(
                "```sql\n> SELECT fuzzy_match('jonathan', 'jonathon', 0.9, 'levenshtein');\ntrue\n```",
            )
            .with_argument("str1", "First string expression (any string type).")
            .with_argument("str2", "Second string expression (any string type).")
            .with_argument("threshold", "Minimum similarity, a number (usually 0.0 to 1.0).")
            .with_argument("method", "Optional similarity name, 'jaro_winkler' by default.")
            .build()
        });
        Some(&DOC)
    }
}

/// The method argument: one for the whole call, or named per row by a column.
enum MethodArg<'a> {
    Fixed(Option<Method>),
    PerRow(StringArg<'a>),
}

impl MethodArg<'_> {
    fn get(&self, row: usize) -> Result<Option<Method>> {
        match self {
            Self::Fixed(method) => Ok(*method),
            Self::PerRow(names) => names.get(row).map(Method::parse_at_execution).transpose(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzy::test_util::{array_of, invoke, scalar, string_columns};
    use arrow::array::{Array, Float64Array};
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::ScalarUDF;

    fn threshold(value: f64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Float64(Some(value)))
    }

    #[test]
    fn thresholds_each_method() {
        let udf = ScalarUDF::from(FuzzyMatch::new());
        // jonathan/jonathon: one substitution in 8 -> levenshtein similarity 0.875
        let run = |t: f64, method: &str| {
            let out = invoke(
                &udf,
                vec![
                    scalar(Some("jonathan")),
                    scalar(Some("jonathon")),
                    threshold(t),
                    scalar(Some(method)),
                ],
                1,
            );
            match out {
                ColumnarValue::Scalar(ScalarValue::Boolean(v)) => v,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(run(0.875, "levenshtein"), Some(true));
        assert_eq!(run(0.876, "levenshtein"), Some(false));
        assert_eq!(run(0.875, " Damerau "), Some(true));
        assert_eq!(run(f64::NAN, "jaro"), None);
    }

    #[test]
    fn method_from_a_column_and_unknown_methods() {
        let udf = ScalarUDF::from(FuzzyMatch::new());
        let methods = string_columns(&[Some("jaro"), None, Some("sorensen_dice")]).remove(2);
        let out = array_of(invoke(
            &udf,
            vec![
                scalar(Some("abc")),
                scalar(Some("abd")),
                ColumnarValue::Array(Arc::new(Float64Array::from(vec![0.7, 0.7, 0.7]))),
                ColumnarValue::Array(methods),
            ],
            3,
        ));
        let out = out.as_any().downcast_ref::<BooleanArray>().unwrap();
        // jaro(abc, abd) = 7/9 >= 0.7; dice: ab shared of 2 + 2 -> 0.5 < 0.7
        assert_eq!(
            out,
            &BooleanArray::from(vec![Some(true), None, Some(false)])
        );

        let err = Method::parse_at_execution("soundex")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown method 'soundex'"), "{err}");
    }
}
