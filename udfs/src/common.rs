//! Shared plumbing for the scalar UDFs: reading string arguments of any physical string type,
//! as arrays or scalars, and turning a computed column back into the right `ColumnarValue`.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, LargeStringArray, StringArray, StringViewArray,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::common::types::logical_string;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{Coercion, ColumnarValue, TypeSignatureClass};

/// A string parameter: any string layout (Utf8, LargeUtf8, Utf8View, or a dictionary of
/// strings, which the planner decodes) is accepted as is, and NULL literals too.
pub(crate) fn string_coercion() -> Coercion {
    Coercion::new_exact(TypeSignatureClass::Native(logical_string()))
}

/// Replaces dictionary-encoded arguments by their decoded values.
///
/// The planner's coercion normally decodes dictionaries before a UDF runs, but a UDF can also be
/// invoked on raw arrays (Delta partition columns arrive dictionary-encoded), so decoding here
/// keeps every kernel oblivious to the encoding.
pub(crate) fn decode_dictionaries(args: Vec<ColumnarValue>) -> Result<Vec<ColumnarValue>> {
    args.into_iter()
        .map(|arg| match arg {
            ColumnarValue::Array(array) => match array.data_type() {
                DataType::Dictionary(_, value_type) => {
                    Ok(ColumnarValue::Array(cast(&array, value_type)?))
                }
                _ => Ok(ColumnarValue::Array(array)),
            },
            ColumnarValue::Scalar(ScalarValue::Dictionary(_, inner)) => {
                Ok(ColumnarValue::Scalar(*inner))
            }
            scalar => Ok(scalar),
        })
        .collect()
}

/// How many rows a call computes, and whether its answer is a single scalar.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub rows: usize,
    pub scalar: bool,
}

impl Shape {
    /// When every argument is a scalar the function runs once and answers with a scalar, so
    /// constant expressions stay constant instead of being expanded to `number_rows` copies.
    pub(crate) fn of(args: &[ColumnarValue], number_rows: usize) -> Self {
        let scalar = args
            .iter()
            .all(|arg| matches!(arg, ColumnarValue::Scalar(_)));
        Self {
            rows: if scalar { 1 } else { number_rows },
            scalar,
        }
    }

    /// Wraps a computed column (of length `rows`) as the call's result.
    pub(crate) fn finish(self, array: ArrayRef) -> Result<ColumnarValue> {
        if self.scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    }
}

/// A string column of any of Arrow's three string layouts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Strings<'a> {
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
}

impl<'a> Strings<'a> {
    /// Views `array` as strings; `function` names the caller in the error for other types.
    pub(crate) fn try_new(array: &'a dyn Array, function: &str) -> Result<Self> {
        match array.data_type() {
            DataType::Utf8 => Ok(Self::Utf8(array.as_string::<i32>())),
            DataType::LargeUtf8 => Ok(Self::LargeUtf8(array.as_string::<i64>())),
            DataType::Utf8View => Ok(Self::Utf8View(array.as_string_view())),
            other => exec_err!("{function} expects a string argument, got {other}"),
        }
    }

    pub(crate) fn get(&self, row: usize) -> Option<&'a str> {
        match *self {
            Self::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            Self::LargeUtf8(a) => a.is_valid(row).then(|| a.value(row)),
            Self::Utf8View(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }
}

/// A string argument: one value for every row, or one value per row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StringArg<'a> {
    Scalar(Option<&'a str>),
    Array(Strings<'a>),
}

impl<'a> StringArg<'a> {
    /// Reads a (dictionary-decoded) argument; `function` names the caller in errors.
    pub(crate) fn try_new(arg: &'a ColumnarValue, function: &str) -> Result<Self> {
        match arg {
            ColumnarValue::Array(array) => Ok(Self::Array(Strings::try_new(array, function)?)),
            ColumnarValue::Scalar(scalar) => match scalar.try_as_str() {
                Some(value) => Ok(Self::Scalar(value)),
                None if scalar.is_null() => Ok(Self::Scalar(None)),
                None => exec_err!(
                    "{function} expects a string argument, got {}",
                    scalar.data_type()
                ),
            },
        }
    }

    pub(crate) fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Self::Scalar(value) => *value,
            Self::Array(strings) => strings.get(row),
        }
    }
}

/// A Float64 argument (the planner coerces every numeric type to Float64 first).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Float64Arg<'a> {
    Scalar(Option<f64>),
    Array(&'a Float64Array),
}

impl<'a> Float64Arg<'a> {
    pub(crate) fn try_new(arg: &'a ColumnarValue, function: &str) -> Result<Self> {
        match arg {
            ColumnarValue::Array(array) => match array.data_type() {
                DataType::Float64 => Ok(Self::Array(array.as_primitive())),
                other => exec_err!("{function} expects a Float64 argument, got {other}"),
            },
            ColumnarValue::Scalar(ScalarValue::Float64(value)) => Ok(Self::Scalar(*value)),
            ColumnarValue::Scalar(scalar) if scalar.is_null() => Ok(Self::Scalar(None)),
            ColumnarValue::Scalar(scalar) => exec_err!(
                "{function} expects a Float64 argument, got {}",
                scalar.data_type()
            ),
        }
    }

    pub(crate) fn get(&self, row: usize) -> Option<f64> {
        match self {
            Self::Scalar(value) => *value,
            Self::Array(array) => array.is_valid(row).then(|| array.value(row)),
        }
    }
}

/// The string type a string function returns for an input of type `input`: the same layout, so
/// a Utf8View column stays a view and a LargeUtf8 column keeps 64-bit offsets.
pub(crate) fn string_return_type(input: &DataType) -> DataType {
    match input {
        DataType::LargeUtf8 => DataType::LargeUtf8,
        DataType::Utf8View => DataType::Utf8View,
        DataType::Dictionary(_, value) => string_return_type(value),
        _ => DataType::Utf8,
    }
}

/// Builds a string column of type `data_type` (as chosen by [`string_return_type`]).
pub(crate) fn string_array<I, S>(data_type: &DataType, values: I) -> ArrayRef
where
    I: IntoIterator<Item = Option<S>>,
    S: AsRef<str>,
{
    match data_type {
        DataType::LargeUtf8 => Arc::new(values.into_iter().collect::<LargeStringArray>()),
        DataType::Utf8View => Arc::new(values.into_iter().collect::<StringViewArray>()),
        _ => Arc::new(values.into_iter().collect::<StringArray>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::DictionaryArray;
    use arrow::datatypes::Int32Type;

    #[test]
    fn dictionary_arrays_and_scalars_are_decoded() {
        let dict: DictionaryArray<Int32Type> =
            vec![Some("b"), None, Some("b")].into_iter().collect();
        let scalar = ScalarValue::Dictionary(
            Box::new(DataType::Int8),
            Box::new(ScalarValue::Utf8(Some("x".into()))),
        );
        let decoded = decode_dictionaries(vec![
            ColumnarValue::Array(Arc::new(dict)),
            ColumnarValue::Scalar(scalar),
        ])
        .unwrap();
        let column = StringArg::try_new(&decoded[0], "t").unwrap();
        assert_eq!(
            (0..3).map(|i| column.get(i)).collect::<Vec<_>>(),
            vec![Some("b"), None, Some("b")]
        );
        assert_eq!(
            StringArg::try_new(&decoded[1], "t").unwrap().get(7),
            Some("x")
        );
    }

    #[test]
    fn non_string_argument_is_an_error_naming_the_function() {
        let arg = ColumnarValue::Scalar(ScalarValue::Int64(Some(1)));
        let err = StringArg::try_new(&arg, "jaro").unwrap_err().to_string();
        assert!(err.contains("jaro expects a string argument"), "{err}");
    }
}
