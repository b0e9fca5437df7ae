//! Bound parameter values: carried inside handles as an Arrow IPC stream, turned into one
//! `ScalarValue` per parameter for binding.

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::common::ScalarValue;

use crate::error::{PersonaError, Result};

/// Encodes the client's parameter batches; they must hold exactly one row in all.
pub fn encode(batches: &[RecordBatch]) -> Result<Bytes> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows > 1 {
        return Err(PersonaError::InvalidArgument(format!(
            "bind one row of parameters per execution; got {rows} rows"
        )));
    }
    encode_rows(batches)
}

/// Encodes every row of the client's parameter batches (prepared DML runs once per row).
pub fn encode_rows(batches: &[RecordBatch]) -> Result<Bytes> {
    let Some(first) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(Bytes::new());
    };
    let mut buf = Vec::new();
    let mut writer = StreamWriter::try_new(&mut buf, &first.schema())?;
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        writer.write(batch)?;
    }
    writer.finish()?;
    drop(writer);
    Ok(Bytes::from(buf))
}

/// Every bound row, decoded back into batches.
pub fn decode_batches(ipc: &Bytes) -> Result<Vec<RecordBatch>> {
    if ipc.is_empty() {
        return Ok(Vec::new());
    }
    let reader = StreamReader::try_new(std::io::Cursor::new(ipc.as_ref()), None)?;
    Ok(reader.collect::<std::result::Result<_, _>>()?)
}

/// The values of the one parameter row, in column order (`$1` first).
pub fn decode(ipc: &Bytes) -> Result<Vec<ScalarValue>> {
    if ipc.is_empty() {
        return Ok(Vec::new());
    }
    let reader = StreamReader::try_new(std::io::Cursor::new(ipc.as_ref()), None)?;
    for batch in reader {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        return batch
            .columns()
            .iter()
            .map(|col| Ok(ScalarValue::try_from_array(col, 0)?))
            .collect();
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn one_row_round_trips() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("0", DataType::Int64, true),
            Field::new("1", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![42])), Arc::new(StringArray::from(vec!["uk"]))],
        )
        .unwrap();
        let values = decode(&encode(&[batch.clone()]).unwrap()).unwrap();
        assert_eq!(values, vec![ScalarValue::Int64(Some(42)), ScalarValue::Utf8(Some("uk".into()))]);
        let two = datafusion::arrow::compute::concat_batches(&batch.schema(), [&batch, &batch]).unwrap();
        assert!(encode(&[two]).is_err());
    }
}
