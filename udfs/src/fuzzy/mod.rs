//! Similarity and distance between two strings.
//!
//! Every function here compares text, not bytes: both inputs are brought to Unicode NFC first
//! (so a composed `é` and `e` + combining acute are the same character) and lengths, edits and
//! bigrams count `char`s. Each two-argument metric is a [`PairMetric`] served by the shared
//! [`PairUdf`]; `fuzzy_match` thresholds one of the similarities.

use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array};
use arrow::datatypes::DataType;
use datafusion::common::utils::take_function_args;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, DocSection, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::common::{Shape, StringArg, Strings, decode_dictionaries, string_coercion};

pub(crate) mod damerau_levenshtein;
pub(crate) mod fuzzy_match;
pub(crate) mod hamming;
pub(crate) mod jaro;
pub(crate) mod jaro_winkler;
pub(crate) mod normalized_damerau_levenshtein;
pub(crate) mod normalized_levenshtein;
pub(crate) mod osa_distance;
pub(crate) mod sorensen_dice;

pub(crate) const DOC_SECTION: DocSection = DocSection {
    include: true,
    label: "Fuzzy Matching Functions",
    description: Some("String similarity and edit distance over Unicode characters (NFC)."),
};

/// The scalar UDFs of this module.
pub(crate) fn udfs() -> Vec<ScalarUDF> {
    vec![
        PairUdf::<jaro::Jaro>::udf(),
        PairUdf::<jaro_winkler::JaroWinkler>::udf(),
        PairUdf::<damerau_levenshtein::DamerauLevenshtein>::udf(),
        PairUdf::<osa_distance::OsaDistance>::udf(),
        PairUdf::<hamming::Hamming>::udf(),
        PairUdf::<normalized_levenshtein::NormalizedLevenshtein>::udf(),
        PairUdf::<normalized_damerau_levenshtein::NormalizedDamerauLevenshtein>::udf(),
        PairUdf::<sorensen_dice::SorensenDice>::udf(),
        ScalarUDF::from(fuzzy_match::FuzzyMatch::new()),
    ]
}

/// A measure of two strings, given already NFC-normalized.
pub(crate) trait PairMetric: Debug + PartialEq + Eq + Hash + Send + Sync + 'static {
    const NAME: &'static str;
    type Output: PairOutput;

    /// `None` when the measure is undefined for this pair (the SQL result is then NULL).
    fn compute(a: &str, b: &str) -> Option<Self::Output>;

    fn documentation() -> &'static Documentation;
}

/// The Arrow side of a metric's result type.
pub(crate) trait PairOutput: Copy {
    fn data_type() -> DataType;
    fn collect(values: impl Iterator<Item = Option<Self>>) -> ArrayRef;
}

impl PairOutput for f64 {
    fn data_type() -> DataType {
        DataType::Float64
    }
    fn collect(values: impl Iterator<Item = Option<Self>>) -> ArrayRef {
        Arc::new(values.collect::<Float64Array>())
    }
}

impl PairOutput for i64 {
    fn data_type() -> DataType {
        DataType::Int64
    }
    fn collect(values: impl Iterator<Item = Option<Self>>) -> ArrayRef {
        Arc::new(values.collect::<Int64Array>())
    }
}

/// The scalar UDF for any [`PairMetric`]: `name(str1, str2)`, NULL if either side is NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct PairUdf<M> {
    signature: Signature,
    metric: PhantomData<M>,
}

impl<M: PairMetric> PairUdf<M> {
    fn udf() -> ScalarUDF {
        ScalarUDF::from(Self {
            signature: Signature::coercible(
                vec![string_coercion(), string_coercion()],
                Volatility::Immutable,
            ),
            metric: PhantomData,
        })
    }
}

impl<M: PairMetric> ScalarUDFImpl for PairUdf<M> {
    fn name(&self) -> &str {
        M::NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(M::Output::data_type())
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let shape = Shape::of(&args.args, args.number_rows);
        let args = decode_dictionaries(args.args)?;
        let [a, b] = take_function_args(M::NAME, &args)?;
        let (a, b) = (NfcArg::try_new(a, M::NAME)?, NfcArg::try_new(b, M::NAME)?);
        let values = (0..shape.rows).map(|row| match (a.get(row), b.get(row)) {
            (Some(a), Some(b)) => M::compute(&a, &b),
            _ => None,
        });
        shape.finish(M::Output::collect(values))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(M::documentation())
    }
}

/// A string argument in NFC. A constant is normalized once, not once per row.
pub(crate) enum NfcArg<'a> {
    Scalar(Option<Cow<'a, str>>),
    Array(Strings<'a>),
}

impl<'a> NfcArg<'a> {
    pub(crate) fn try_new(arg: &'a ColumnarValue, function: &str) -> Result<Self> {
        Ok(match StringArg::try_new(arg, function)? {
            StringArg::Scalar(value) => Self::Scalar(value.map(nfc)),
            StringArg::Array(strings) => Self::Array(strings),
        })
    }

    pub(crate) fn get(&self, row: usize) -> Option<Cow<'_, str>> {
        match self {
            Self::Scalar(value) => value.as_deref().map(Cow::Borrowed),
            Self::Array(strings) => strings.get(row).map(nfc),
        }
    }
}

/// `s` in Unicode Normalization Form C, borrowed when it already is (all ASCII text is).
pub(crate) fn nfc(s: &str) -> Cow<'_, str> {
    match is_nfc_quick(s.chars()) {
        IsNormalized::Yes => Cow::Borrowed(s),
        IsNormalized::No | IsNormalized::Maybe => Cow::Owned(s.nfc().collect()),
    }
}

/// Documentation of a two-string function; `example` is a SQL call and `result` its answer.
pub(crate) fn pair_doc(
    description: &str,
    syntax: &str,
    example: &str,
    result: &str,
) -> Documentation {
    Documentation::builder(DOC_SECTION, description, syntax)
        .with_sql_example(format!("```sql\n> SELECT {example};\n{result}\n```"))
        .with_argument("str1", "First string expression (any string type).")
        .with_argument("str2", "Second string expression (any string type).")
        .build()
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    use arrow::array::{Array, LargeStringArray, StringArray, StringViewArray};
    use arrow::datatypes::Field;
    use datafusion::common::ScalarValue;
    use datafusion::config::ConfigOptions;

    /// Invokes `udf` directly on the given arguments, as the physical plan does.
    pub(crate) fn invoke(udf: &ScalarUDF, args: Vec<ColumnarValue>, rows: usize) -> ColumnarValue {
        let arg_fields = args
            .iter()
            .enumerate()
            .map(|(i, arg)| Arc::new(Field::new(format!("a{i}"), arg.data_type(), true)))
            .collect::<Vec<_>>();
        let types = arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect::<Vec<_>>();
        let return_type = udf.return_type(&types).unwrap();
        udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows: rows,
            return_field: Arc::new(Field::new("r", return_type, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
        .unwrap()
    }

    /// The same strings as each of Arrow's string layouts.
    pub(crate) fn string_columns(values: &[Option<&str>]) -> Vec<ArrayRef> {
        vec![
            Arc::new(values.iter().copied().collect::<StringArray>()),
            Arc::new(values.iter().copied().collect::<LargeStringArray>()),
            Arc::new(values.iter().copied().collect::<StringViewArray>()),
            Arc::new(
                values
                    .iter()
                    .copied()
                    .collect::<arrow::array::DictionaryArray<arrow::datatypes::Int32Type>>(),
            ),
        ]
    }

    pub(crate) fn scalar(value: Option<&str>) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(value.map(str::to_string)))
    }

    pub(crate) fn array_of(value: ColumnarValue) -> ArrayRef {
        match value {
            ColumnarValue::Array(array) => array,
            ColumnarValue::Scalar(scalar) => scalar.to_array().unwrap(),
        }
    }

    #[test]
    fn every_string_layout_and_scalar_mix_gives_the_same_answer() {
        let udf = PairUdf::<jaro_winkler::JaroWinkler>::udf();
        let left = [Some("martha"), None, Some("café")];
        let right = [Some("marhta"), Some("x"), Some("cafe\u{301}")];
        let expected = Float64Array::from(vec![Some(0.9611111111111111), None, Some(1.0)]);
        for l in string_columns(&left) {
            for r in string_columns(&right) {
                let out = invoke(
                    &udf,
                    vec![ColumnarValue::Array(l.clone()), ColumnarValue::Array(r)],
                    3,
                );
                let out = array_of(out);
                let out = out.as_any().downcast_ref::<Float64Array>().unwrap();
                for i in 0..3 {
                    assert_eq!(out.is_null(i), expected.is_null(i));
                    if expected.is_valid(i) {
                        assert!((out.value(i) - expected.value(i)).abs() < 1e-12);
                    }
                }
            }
        }
        // column against constant: the constant is reused for every row
        let column = ColumnarValue::Array(string_columns(&left)[2].clone());
        let out = array_of(invoke(&udf, vec![column, scalar(Some("cafe\u{301}"))], 3));
        let out = out.as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(out.len(), 3);
        assert!(out.is_null(1));
        assert_eq!(out.value(2), 1.0);
        // constant against constant stays a scalar
        match invoke(&udf, vec![scalar(Some("a")), scalar(None)], 5) {
            ColumnarValue::Scalar(ScalarValue::Float64(None)) => {}
            other => panic!("expected a NULL Float64 scalar, got {other:?}"),
        }
    }
}
