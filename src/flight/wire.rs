//! The types results leave the server in.
//!
//! DataFusion reads strings as `Utf8View` and Delta partition values may arrive
//! dictionary-encoded; JDBC, ODBC and most BI drivers read neither. Every result is cast to
//! plain `Utf8` / `Binary` with dictionaries decoded, recursively inside lists, structs and maps.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;

/// The type a value of `dt` is sent as.
pub fn wire_type(dt: &DataType) -> DataType {
    match dt {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, value) => wire_type(value),
        DataType::List(f) | DataType::ListView(f) => DataType::List(wire_field(f)),
        DataType::LargeList(f) | DataType::LargeListView(f) => DataType::LargeList(wire_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(wire_field(f), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(wire_field).collect::<Fields>()),
        DataType::Map(f, sorted) => DataType::Map(wire_field(f), *sorted),
        other => other.clone(),
    }
}

fn wire_field(f: &FieldRef) -> FieldRef {
    Arc::new(Field::new(f.name(), wire_type(f.data_type()), f.is_nullable()).with_metadata(f.metadata().clone()))
}

/// The schema a result with `schema` is sent with.
pub fn wire_schema(schema: &Schema) -> SchemaRef {
    let fields: Vec<FieldRef> = schema.fields().iter().map(wire_field).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Casts a batch to `target` (a schema made by [`wire_schema`]); columns already right are
/// passed through without a copy.
pub fn to_wire(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    if batch.num_columns() != target.fields().len() {
        return Err(ArrowError::SchemaError(format!(
            "result has {} columns but its schema announced {}",
            batch.num_columns(),
            target.fields().len()
        )));
    }
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(col, field)| -> Result<ArrayRef, ArrowError> {
            if col.data_type() == field.data_type() {
                Ok(col.clone())
            } else {
                cast(col, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(target.clone(), columns, &options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, DictionaryArray, StringViewArray};
    use datafusion::arrow::datatypes::Int32Type;

    #[test]
    fn views_and_dictionaries_become_utf8() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Utf8View, true),
            Field::new("d", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true),
        ]));
        let dict: DictionaryArray<Int32Type> = vec![Some("uk"), None, Some("uk")].into_iter().collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringViewArray::from(vec![Some("a"), Some("b"), None])), Arc::new(dict)],
        )
        .unwrap();
        let target = wire_schema(&schema);
        let out = to_wire(&batch, &target).unwrap();
        assert_eq!(out.schema().field(0).data_type(), &DataType::Utf8);
        assert_eq!(out.schema().field(1).data_type(), &DataType::Utf8);
        let d = out.column(1).as_any().downcast_ref::<datafusion::arrow::array::StringArray>().unwrap();
        assert_eq!(d.value(2), "uk");
        assert!(d.is_null(1));
    }
}
