//! Result rows as JSON objects: how a member's attributes and a failing row are recorded, so
//! one table holds rows of any shape and every client can read them back.

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::ScalarValue;
use serde_json::{Map, Number, Value};

use crate::error::Result;

/// Row `row` of `batch` as a JSON object, leaving out the columns named in `skip`.
pub fn to_json(batch: &RecordBatch, row: usize, skip: &[&str]) -> Result<String> {
    let mut object = Map::new();
    let options = FormatOptions::default();
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if skip.contains(&field.name().as_str()) {
            continue;
        }
        object.insert(field.name().clone(), value(column.as_ref(), row, &options)?);
    }
    Ok(Value::Object(object).to_string())
}

fn value(column: &dyn Array, row: usize, options: &FormatOptions) -> Result<Value> {
    if column.is_null(row) {
        return Ok(Value::Null);
    }
    let number = |f: f64| Number::from_f64(f).map_or(Value::Null, Value::Number);
    Ok(match ScalarValue::try_from_array(column, row)? {
        ScalarValue::Boolean(Some(b)) => Value::Bool(b),
        ScalarValue::Int8(Some(v)) => Value::from(v),
        ScalarValue::Int16(Some(v)) => Value::from(v),
        ScalarValue::Int32(Some(v)) => Value::from(v),
        ScalarValue::Int64(Some(v)) => Value::from(v),
        ScalarValue::UInt8(Some(v)) => Value::from(v),
        ScalarValue::UInt16(Some(v)) => Value::from(v),
        ScalarValue::UInt32(Some(v)) => Value::from(v),
        ScalarValue::UInt64(Some(v)) => Value::from(v),
        ScalarValue::Float32(Some(v)) => number(f64::from(v)),
        ScalarValue::Float64(Some(v)) => number(v),
        // Everything else as the text Arrow prints for it (ISO-8601 times, decimals as written).
        _ => Value::String(ArrayFormatter::try_new(column, options)?.value(row).to_string()),
    })
}

/// The text of a key value, whatever its type.
pub fn key_text(column: &dyn Array, row: usize) -> Result<Option<String>> {
    if column.is_null(row) {
        return Ok(None);
    }
    Ok(Some(ArrayFormatter::try_new(column, &FormatOptions::default())?.value(row).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    #[test]
    fn rows_become_objects() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("customer_id", DataType::Utf8, true),
            Field::new("spend", DataType::Float64, true),
            Field::new("n", DataType::Int64, true),
            Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("17850"), None])),
                Arc::new(Float64Array::from(vec![Some(12.5), Some(f64::NAN)])),
                Arc::new(Int64Array::from(vec![Some(3), None])),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1_291_191_960_000_000), None]).with_timezone("UTC")),
            ],
        )
        .unwrap();
        assert_eq!(to_json(&batch, 0, &["customer_id"]).unwrap(), r#"{"at":"2010-12-01T08:26:00Z","n":3,"spend":12.5}"#);
        // NaN has no JSON form: it is recorded as null.
        assert_eq!(to_json(&batch, 1, &[]).unwrap(), r#"{"at":null,"customer_id":null,"n":null,"spend":null}"#);
        assert_eq!(key_text(batch.column(2).as_ref(), 0).unwrap().as_deref(), Some("3"));
    }
}
