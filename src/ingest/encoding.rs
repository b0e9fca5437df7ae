//! How a micro-batch is encoded to Parquet: delta-rs's defaults (Snappy, statistics for data
//! skipping), except that columns whose values are mostly distinct are written plain instead of
//! dictionary-encoded.
//!
//! Why: the Parquet writer starts every column chunk with a dictionary and gives it up once the
//! dictionary page passes its size limit (1 MiB). For ids, timestamps and URLs of a large
//! micro-batch that happens after about a hundred thousand rows of every chunk, so each chunk
//! pays for hashing and interning those rows, then writes a dictionary nobody can use and
//! switches to plain pages anyway. A sample of the batch tells which columns will end that way:
//! nearly every sampled value new, and that many values more bytes than the dictionary may
//! hold. They skip the attempt; readers see ordinary PLAIN pages, as they already did for the
//! rest of such a chunk. A column that repeats (a customer id over a day of events) keeps its
//! dictionary, where it shrinks the file most.

use std::collections::HashSet;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::schema::types::ColumnPath;

use crate::error::Result;

/// Rows of a micro-batch looked at to judge each column.
const SAMPLE_ROWS: usize = 16_384;

/// Share of distinct values among the sampled (non-null) rows from which a column counts as
/// mostly distinct: its dictionary would hold about as many bytes as the values themselves.
const MOSTLY_DISTINCT: f64 = 0.9;

/// The Parquet writer's dictionary page limit (its default), past which it falls back to plain.
const DICTIONARY_PAGE_BYTES: f64 = 1024.0 * 1024.0;

/// The Parquet writer's largest row group (its default): one column chunk holds at most this
/// many rows, however large the micro-batch.
const ROW_GROUP_ROWS: usize = 1024 * 1024;

/// Writer properties for `batches`, which all have the same schema.
pub fn writer_properties(batches: &[RecordBatch]) -> Result<WriterProperties> {
    let mut builder = WriterProperties::builder()
        // "<app> version <semver> (build <id>)": the form parquet-mr parses; without it Spark
        // ignores the min/max statistics of string columns.
        .set_created_by(format!("persona version {} (build delta-rs)", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY);
    let Some(first) = batches.iter().find(|b| b.num_rows() > 0) else { return Ok(builder.build()) };
    let chunk_rows = batches.iter().map(|b| b.num_rows()).sum::<usize>().min(ROW_GROUP_ROWS) as f64;
    let sample = first.slice(0, first.num_rows().min(SAMPLE_ROWS));
    for (field, column) in sample.schema().fields().iter().zip(sample.columns()) {
        // Nested columns have several leaves; their paths are not judged here.
        if field.data_type().is_nested() {
            continue;
        }
        let values = column.len() - column.null_count();
        if values == 0 {
            continue;
        }
        let converter = RowConverter::new(vec![SortField::new(field.data_type().clone())])?;
        let rows = converter.convert_columns(std::slice::from_ref(column))?;
        let distinct: HashSet<&[u8]> = rows.iter().map(|r| r.data()).collect();
        // The null row counts as one value in `distinct`; take it out again.
        let distinct = distinct.len() - usize::from(column.null_count() > 0);
        let share = distinct as f64 / values as f64;
        let value_bytes = rows.iter().map(|r| r.data().len()).sum::<usize>() as f64 / rows.num_rows() as f64;
        if share > MOSTLY_DISTINCT && share * chunk_rows * value_bytes > DICTIONARY_PAGE_BYTES {
            builder = builder.set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn dictionary(props: &WriterProperties, column: &str) -> bool {
        props.dictionary_enabled(&ColumnPath::from(column))
    }

    #[test]
    fn unique_columns_are_plain_and_repeated_ones_keep_their_dictionary() {
        let n = 200_000i64;
        // A customer id drawn (pseudo-randomly) from 20,000: about 68% of a 16,384-row sample is
        // distinct (1 - e^-0.82 of the 20,000), yet the chunk's dictionary (20,000 ids of 6
        // bytes) fits the page.
        let customer = |i: i64| {
            let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            format!("C{:05}", (x ^ (x >> 31)) % 20_000)
        };
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("kind", DataType::Utf8, true),
            Field::new("email", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("customer", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                // 200,000 distinct ids of 8 bytes: 1.6 MB of dictionary, over the 1 MiB page.
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(StringArray::from_iter((0..n).map(|i| Some(["view", "click", "order"][(i % 3) as usize])))),
                // Every other e-mail missing, the rest all different.
                Arc::new(StringArray::from_iter((0..n).map(|i| (i % 2 == 0).then(|| format!("c{i}@example.com"))))),
                // 4,000 values: a quarter of the sample distinct.
                Arc::new(Float64Array::from_iter_values((0..n).map(|i| (i % 4_000) as f64))),
                Arc::new(StringArray::from_iter_values((0..n).map(customer))),
            ],
        )
        .unwrap();
        let props = writer_properties(std::slice::from_ref(&batch)).unwrap();
        assert!(!dictionary(&props, "id"));
        assert!(dictionary(&props, "kind"));
        assert!(!dictionary(&props, "email"));
        assert!(dictionary(&props, "amount"));
        assert!(dictionary(&props, "customer"));
        assert_eq!(props.compression(&ColumnPath::from("id")), Compression::SNAPPY);
        // A small micro-batch of distinct ids keeps its dictionary: 10,000 ids fit the page.
        let small = batch.slice(0, 10_000);
        assert!(dictionary(&writer_properties(&[small]).unwrap(), "id"));
    }

    #[test]
    fn all_null_and_empty_input_keep_the_defaults() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Utf8, true)]));
        let nulls = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec![None::<&str>; 10]))]).unwrap();
        assert!(dictionary(&writer_properties(&[nulls]).unwrap(), "x"));
        assert!(dictionary(&writer_properties(&[RecordBatch::new_empty(schema)]).unwrap(), "x"));
        assert!(dictionary(&writer_properties(&[]).unwrap(), "x"));
    }
}
