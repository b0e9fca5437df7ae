//! Reading source files into Arrow batches in the table's types.
//!
//! CSV (RFC 4180, header required) and JSON lines (one object per line) are read as text and
//! each value converted to its column's type; a record that cannot be (wrong number of fields,
//! invalid UTF-8 or JSON, a value that does not parse as its column's type) is set aside as a
//! reject with its line number instead of failing the load. Empty CSV fields and JSON `null`
//! load as NULL. JSON arrays and objects load as their JSON text. Parquet files carry their own
//! types, checked against the table's before anything is read (`columns::check`). Files ending
//! in `.gz` are decompressed on the fly.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, StringBuilder, new_null_array};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::columns::{Inferred, delta_schema};
use super::sources::Source;
use crate::error::{PersonaError, Result};

/// Rows a CSV or JSON file is read from to infer the types of columns a table does not have yet.
pub const INFER_RECORDS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Json,
    Parquet,
}

impl Format {
    /// From the file name: `.csv`, `.json` / `.jsonl` / `.ndjson`, `.parquet`, each optionally `.gz`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        let ext = name.rsplit_once('.')?.1;
        match ext {
            "csv" => Some(Format::Csv),
            "json" | "jsonl" | "ndjson" => Some(Format::Json),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Parquet => "parquet",
        }
    }
}

/// A record set aside: where it was, why, and its values as CSV.
#[derive(Debug, Clone)]
pub struct Reject {
    pub line: u64,
    pub reason: String,
    pub record: String,
}

/// Rows read from a file, in the table's schema, and the records set aside on the way.
#[derive(Debug)]
pub struct Chunk {
    pub batch: RecordBatch,
    pub rejects: Vec<Reject>,
    /// Records of the file this chunk covers, loaded or rejected.
    pub records: u64,
}

/// Counts the (compressed) bytes read, for the progress line.
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn open(path: &Path, bytes: Arc<AtomicU64>) -> Result<Box<dyn Read + Send>> {
    let file = File::open(path).map_err(|e| PersonaError::InvalidArgument(format!("cannot read {}: {e}", path.display())))?;
    let counted = Counting { inner: file, bytes };
    let gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    // MultiGzDecoder: a gzip file appended to (several members) reads as one stream.
    Ok(if gz { Box::new(flate2::read::MultiGzDecoder::new(counted)) } else { Box::new(counted) })
}

/// The columns of a file in file order. CSV and JSON columns get inferred types when `infer`
/// (from the first [`INFER_RECORDS`] records), else text; Parquet columns their own types.
pub fn describe(source: &Source, infer: bool) -> Result<Schema> {
    let what = source.display();
    let in_file = |e: String| PersonaError::InvalidArgument(format!("{what}: {e}"));
    match source.format {
        Format::Parquet => {
            let file = File::open(&source.path)?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| in_file(e.to_string()))?;
            Ok(builder.schema().as_ref().clone())
        }
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(open(&source.path, Arc::default())?);
            let header: Vec<String> = reader
                .headers()
                .map_err(|e| in_file(format!("cannot read the CSV header: {e}")))?
                .iter()
                .map(|h| h.trim().to_string())
                .collect();
            if let Some(dup) = header.iter().enumerate().find(|(i, h)| header[..*i].contains(h)) {
                return Err(in_file(format!("the CSV header names column `{}` twice", dup.1)));
            }
            let mut types = vec![Inferred::default(); header.len()];
            if infer {
                let mut record = csv::StringRecord::new();
                for _ in 0..INFER_RECORDS {
                    match reader.read_record(&mut record) {
                        Ok(true) => record.iter().zip(types.iter_mut()).for_each(|(v, t)| t.add(v)),
                        Ok(false) => break,
                        // Bad records are the rejects' business, not inference's.
                        Err(_) => continue,
                    }
                }
            }
            Ok(Schema::new(
                header.iter().zip(&types).map(|(h, t)| Field::new(h, t.data_type(), true)).collect::<Vec<_>>(),
            ))
        }
        Format::Json => {
            // JSON objects may differ in keys, so the columns are every key of the file.
            let mut keys: Vec<String> = Vec::new();
            let mut types: Vec<Inferred> = Vec::new();
            let reader = BufReader::new(open(&source.path, Arc::default())?);
            for (i, line) in reader.lines().enumerate() {
                let line = line.map_err(|e| in_file(e.to_string()))?;
                let Ok(serde_json::Value::Object(object)) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                for (k, v) in &object {
                    let at = match keys.iter().position(|x| x == k) {
                        Some(at) => at,
                        None => {
                            keys.push(k.clone());
                            types.push(Inferred::default());
                            keys.len() - 1
                        }
                    };
                    if infer && i < INFER_RECORDS
                        && let Some(text) = json_text(v)
                    {
                        types[at].add(&text);
                    }
                }
            }
            Ok(Schema::new(keys.iter().zip(&types).map(|(k, t)| Field::new(k, t.data_type(), true)).collect::<Vec<_>>()))
        }
    }
}

/// A file's Parquet schema as persona would store it (for new tables).
pub fn stored_schema(source: &Source, infer: bool) -> Result<Schema> {
    Ok(delta_schema(&describe(source, infer)?))
}

fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

/// Reads a file into `schema`, skipping its first `skip` records (already loaded from a shorter
/// version of the file), handing chunks of up to `batch_rows` rows to `sink`.
pub fn read(
    source: &Source,
    schema: &SchemaRef,
    skip: u64,
    batch_rows: usize,
    bytes: Arc<AtomicU64>,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    match source.format {
        Format::Csv => read_csv(source, schema, skip, batch_rows, bytes, sink),
        Format::Json => read_json(source, schema, skip, batch_rows, bytes, sink),
        Format::Parquet => read_parquet(source, schema, batch_rows, bytes, sink),
    }
}

fn read_csv(
    source: &Source,
    schema: &SchemaRef,
    skip: u64,
    batch_rows: usize,
    bytes: Arc<AtomicU64>,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let what = source.display();
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(open(&source.path, bytes)?);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| PersonaError::InvalidArgument(format!("{what}: cannot read the CSV header: {e}")))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    // For each column of the table, where it is in this file's records.
    let positions: Vec<Option<usize>> = schema.fields().iter().map(|f| header.iter().position(|h| h == f.name())).collect();
    let mut chunk = ChunkBuilder::new(schema.clone(), batch_rows);
    let mut record = csv::ByteRecord::new();
    let mut seen = 0u64;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(PersonaError::InvalidArgument(format!("{what}: {e}"))),
        }
        seen += 1;
        if seen <= skip {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() != header.len() {
            let text = csv_text(record.iter().map(|f| String::from_utf8_lossy(f).into_owned()));
            chunk.reject(line, format!("expected {} fields, found {}", header.len(), record.len()), text);
        } else {
            let fields: std::result::Result<Vec<&str>, _> = record.iter().map(std::str::from_utf8).collect();
            match fields {
                Ok(fields) => chunk.push(line, positions.iter().map(|p| p.map(|i| fields[i]))),
                Err(_) => {
                    let text = csv_text(record.iter().map(|f| String::from_utf8_lossy(f).into_owned()));
                    chunk.reject(line, "not valid UTF-8".into(), text);
                }
            }
        }
        if chunk.records >= batch_rows as u64 {
            sink(chunk.finish()?)?;
        }
    }
    sink(chunk.finish()?)
}

fn read_json(
    source: &Source,
    schema: &SchemaRef,
    skip: u64,
    batch_rows: usize,
    bytes: Arc<AtomicU64>,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let what = source.display();
    let reader = BufReader::new(open(&source.path, bytes)?);
    let mut chunk = ChunkBuilder::new(schema.clone(), batch_rows);
    let mut seen = 0u64;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| PersonaError::InvalidArgument(format!("{what}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        seen += 1;
        if seen <= skip {
            continue;
        }
        let number = i as u64 + 1;
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(serde_json::Value::Object(object)) => {
                if let Some(unknown) = object.keys().find(|k| schema.field_with_name(k).is_err()) {
                    return Err(PersonaError::SchemaMismatch(format!(
                        "{what} line {number}: column `{unknown}` is not in the table"
                    )));
                }
                let values: Vec<Option<String>> =
                    schema.fields().iter().map(|f| object.get(f.name()).and_then(json_text)).collect();
                chunk.push(number, values.iter().map(|v| v.as_deref()));
            }
            Ok(_) => chunk.reject(number, "not a JSON object".into(), line),
            Err(e) => chunk.reject(number, format!("invalid JSON: {e}"), line),
        }
        if chunk.records >= batch_rows as u64 {
            sink(chunk.finish()?)?;
        }
    }
    sink(chunk.finish()?)
}

fn read_parquet(
    source: &Source,
    schema: &SchemaRef,
    batch_rows: usize,
    bytes: Arc<AtomicU64>,
    sink: &mut dyn FnMut(Chunk) -> Result<()>,
) -> Result<()> {
    let what = source.display();
    let in_file = |e: String| PersonaError::InvalidArgument(format!("{what}: {e}"));
    let file = File::open(&source.path)?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| in_file(e.to_string()))?
        .with_batch_size(batch_rows)
        .build()
        .map_err(|e| in_file(e.to_string()))?;
    let size = source.size;
    let mut rows_done = 0u64;
    let mut total_rows = None;
    for batch in reader {
        let batch = batch.map_err(|e| in_file(e.to_string()))?;
        let columns = schema
            .fields()
            .iter()
            .map(|f| match batch.schema().index_of(f.name()) {
                Ok(i) if batch.column(i).data_type() == f.data_type() => Ok(batch.column(i).clone()),
                Ok(i) => cast(batch.column(i), f.data_type()).map_err(|e| in_file(format!("column `{}`: {e}", f.name()))),
                Err(_) => Ok(new_null_array(f.data_type(), batch.num_rows())),
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        rows_done += batch.num_rows() as u64;
        let total = *total_rows.get_or_insert_with(|| parquet_rows(&source.path).unwrap_or(rows_done).max(1));
        // Parquet is read by row group, not byte by byte: report progress in proportion.
        bytes.fetch_add((size * batch.num_rows() as u64 / total).min(size), Ordering::Relaxed);
        sink(Chunk { batch: RecordBatch::try_new(schema.clone(), columns)?, rejects: Vec::new(), records: batch.num_rows() as u64 })?;
    }
    Ok(())
}

fn parquet_rows(path: &Path) -> Option<u64> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).ok()?).ok()?;
    Some(builder.metadata().file_metadata().num_rows() as u64)
}

fn csv_text(fields: impl Iterator<Item = String>) -> String {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    let fields: Vec<String> = fields.collect();
    let _ = writer.write_record(&fields);
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end_matches(['\r', '\n']).to_string()
}

/// Collects text values for the table's columns and converts them to their types.
struct ChunkBuilder {
    schema: SchemaRef,
    columns: Vec<StringBuilder>,
    lines: Vec<u64>,
    rejects: Vec<Reject>,
    records: u64,
}

impl ChunkBuilder {
    fn new(schema: SchemaRef, capacity: usize) -> Self {
        let columns = schema.fields().iter().map(|_| StringBuilder::with_capacity(capacity, capacity * 16)).collect();
        Self { schema, columns, lines: Vec::with_capacity(capacity), rejects: Vec::new(), records: 0 }
    }

    fn push<'a>(&mut self, line: u64, values: impl Iterator<Item = Option<&'a str>>) {
        for (builder, value) in self.columns.iter_mut().zip(values) {
            match value {
                Some(v) if !v.is_empty() => builder.append_value(v),
                _ => builder.append_null(),
            }
        }
        self.lines.push(line);
        self.records += 1;
    }

    fn reject(&mut self, line: u64, reason: String, record: String) {
        self.rejects.push(Reject { line, reason, record });
        self.records += 1;
    }

    /// Converts the text to the columns' types; rows with a value that does not convert join the
    /// rejects, naming the first such column.
    fn finish(&mut self) -> Result<Chunk> {
        let text: Vec<ArrayRef> = self.columns.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        let rows = self.lines.len();
        let options = CastOptions { safe: true, format_options: FormatOptions::default() };
        let mut typed = Vec::with_capacity(text.len());
        let mut bad: Vec<Option<String>> = vec![None; rows];
        for (field, column) in self.schema.fields().iter().zip(&text) {
            if field.data_type() == &DataType::Utf8 {
                typed.push(column.clone());
                continue;
            }
            let converted = cast_with_options(column, field.data_type(), &options)?;
            if converted.null_count() != column.null_count() {
                let strings = column.as_any().downcast_ref::<datafusion::arrow::array::StringArray>().expect("text column");
                for (row, slot) in bad.iter_mut().enumerate() {
                    if slot.is_none() && strings.is_valid(row) && converted.is_null(row) {
                        *slot = Some(format!(
                            "column `{}`: `{}` is not a valid {}",
                            field.name(),
                            strings.value(row),
                            field.data_type()
                        ));
                    }
                }
            }
            typed.push(converted);
        }
        let mut batch = RecordBatch::try_new(self.schema.clone(), typed)?;
        let mut rejects = std::mem::take(&mut self.rejects);
        if bad.iter().any(Option::is_some) {
            let strings: Vec<&datafusion::arrow::array::StringArray> = text
                .iter()
                .map(|c| c.as_any().downcast_ref().expect("text column"))
                .collect();
            for (row, reason) in bad.iter().enumerate() {
                if let Some(reason) = reason {
                    let record = csv_text(strings.iter().map(|s| if s.is_valid(row) { s.value(row).to_string() } else { String::new() }));
                    rejects.push(Reject { line: self.lines[row], reason: reason.clone(), record });
                }
            }
            rejects.sort_by_key(|r| r.line);
            let keep = BooleanArray::from(bad.iter().map(|b| b.is_none()).collect::<Vec<_>>());
            batch = filter_record_batch(&batch, &keep)?;
        }
        let chunk = Chunk { batch, rejects, records: self.records };
        self.lines.clear();
        self.records = 0;
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_from_names() {
        assert_eq!(Format::from_path(Path::new("a/online_retail_2010-12.csv.gz")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("x.NDJSON")), Some(Format::Json));
        assert_eq!(Format::from_path(Path::new("x.parquet")), Some(Format::Parquet));
        assert_eq!(Format::from_path(Path::new("x.txt")), None);
    }
}
