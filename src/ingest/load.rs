//! `persona load TABLE FILES...`: files into a Delta table, incrementally and idempotently.
//!
//! 1. The files are listed (folders and patterns expanded) and compared with the table's
//!    watermarks: a file of the same size and modification time as when it was last loaded is
//!    skipped without being read. The others are hashed.
//! 2. Each file's content hash is its Delta application transaction id
//!    (`persona-load-<sha256>`): a file whose id the table's log already holds is skipped
//!    ("already loaded in version N"), whatever its name and whether or not the watermarks
//!    survive. A CSV or JSON file that grew since its last load (its old bytes are a prefix of
//!    the new ones) contributes only its new records.
//! 3. The files' columns are checked against the table's before a row is read: a column the
//!    table lacks is an error naming it (or, with `--allow-new-columns`, added); a Parquet
//!    column whose type does not fit is an error naming both types. A new table takes the
//!    columns of its files, with types inferred from the text of CSV and JSON files.
//! 4. Every file is read into one stream written as one Delta commit (with the transaction ids).
//!    Records that do not parse go to the rejects file; more than `--max-rejects` of them fail
//!    the load before it commits. Nothing is ever half-loaded.
//! 5. The watermarks are updated for the files loaded.
//!
//! `--mode overwrite` replaces the table's rows with all the files named (watermarks do not
//! narrow it down); it is skipped only when the table's current version is that same overwrite.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::DeltaTable;

use super::formats::{self, Format};
use super::progress::{Progress, count, thousands};
use super::rejects::RejectsFile;
use super::sources::{self, Source};
use super::watermark::{self, Mark};
use super::writer::{self, Mode, WriteRequest};
use super::columns;
use crate::config::Config;
use crate::error::{PersonaError, Result};

/// Rows per batch handed to the writer.
const BATCH_ROWS: usize = 8192;

#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub table: String,
    pub inputs: Vec<String>,
    pub format: Option<Format>,
    pub mode: Mode,
    pub partition_by: Vec<String>,
    pub allow_new_columns: bool,
    /// Fail the load when more records than this are rejected; `None`: no limit.
    pub max_rejects: Option<u64>,
    /// Where rejected records go [default: `<data_dir>/rejects/<table>-<time>.csv`].
    pub rejects_path: Option<PathBuf>,
    /// No progress line.
    pub quiet: bool,
}

/// One file of a load and what became of it.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub source: String,
    pub rows: u64,
    pub rejected: u64,
    /// Records skipped because an earlier load took them (the file grew since).
    pub already_had: u64,
    /// Why it was not loaded, if it was not.
    pub skipped: Option<String>,
    /// A note on how it was loaded (changed since its last load).
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub table: String,
    pub location: String,
    /// The version the load committed; `None` when there was nothing new.
    pub version: Option<u64>,
    /// The table's version before the load (`None`: it did not exist).
    pub previous_version: Option<u64>,
    pub created: bool,
    pub rows: u64,
    pub rows_updated: u64,
    pub rejected: u64,
    pub rejects_file: Option<PathBuf>,
    pub files: Vec<FileReport>,
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn loaded_files(&self) -> usize {
        self.files.iter().filter(|f| f.skipped.is_none()).count()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.version {
            Some(v) => {
                let how = if self.created { " (new table)".to_string() } else { String::new() };
                write!(
                    f,
                    "loaded {} from {} into {} at {}: version {v}{how}",
                    count(self.rows, "row"),
                    count(self.loaded_files() as u64, "file"),
                    self.table,
                    self.location
                )?;
                if self.rows_updated > 0 {
                    write!(f, ", {} updated", count(self.rows_updated, "existing row"))?;
                }
                write!(f, ", {} rejected, {:.1}s", thousands(self.rejected), self.elapsed.as_secs_f64())?;
            }
            None => write!(
                f,
                "nothing new to load into {} (version {}): every file is already loaded",
                self.table,
                self.previous_version.map_or_else(|| "none".to_string(), |v| v.to_string())
            )?,
        }
        for file in &self.files {
            match (&file.skipped, &file.note) {
                (Some(why), _) => write!(f, "\n  skipped {}: {why}", file.source)?,
                (None, Some(note)) => write!(f, "\n  {}: {note}", file.source)?,
                (None, None) if file.already_had > 0 => write!(
                    f,
                    "\n  {}: {} ({} loaded before)",
                    file.source,
                    count(file.rows, "new row"),
                    count(file.already_had, "record")
                )?,
                (None, None) => {}
            }
        }
        if let Some(path) = &self.rejects_file {
            write!(
                f,
                "\nrejected records: {} (CSV: source, line, reason, record)",
                path.display()
            )?;
        }
        Ok(())
    }
}

/// The Delta application transaction id of a file's content.
pub fn app_id(sha256: &str) -> String {
    format!("persona-load-{sha256}")
}

/// A file to load.
struct Planned {
    source: Source,
    sha256: String,
    app_id: String,
    /// Records to skip (a grown file's old part).
    skip: u64,
    note: Option<String>,
}

pub async fn load(config: &Config, request: &LoadRequest) -> Result<LoadReport> {
    let started = Instant::now();
    let entry = crate::lakehouse::resolve(config, &request.table)?;
    let target = entry.table.clone();
    if let Mode::Merge { key } = &request.mode
        && key.is_empty()
    {
        return Err(PersonaError::InvalidArgument("--mode merge needs --key COLUMNS".into()));
    }
    let sources = sources::expand(&request.inputs, request.format)?;
    let table = writer::open(&target).await?;
    let previous_version = table.version();
    let overwrite = request.mode == Mode::Overwrite;
    let marks = if overwrite { HashMap::new() } else { watermark::read(&config.data_dir, &target.name).await? };

    let mut files: Vec<FileReport> = Vec::new();
    let mut planned: Vec<Planned> = Vec::new();
    let mut touched: Vec<Mark> = Vec::new();
    let skipped = |source: &Source, why: String| FileReport {
        source: source.display(),
        rows: 0,
        rejected: 0,
        already_had: 0,
        skipped: Some(why),
        note: None,
    };
    for source in sources {
        let mark = marks.get(&source.display());
        if let Some(m) = mark
            && m.size == source.size
            && m.modified.timestamp_micros() == source.modified.timestamp_micros()
        {
            files.push(skipped(&source, format!("unchanged since it was loaded in version {}", m.version)));
            continue;
        }
        let grown_from = mark.filter(|m| source.size > m.size && source.format != Format::Parquet).map(|m| m.size);
        let (sha256, prefix) = sources::hash(&source.path, grown_from)?;
        if let Some(m) = mark
            && m.sha256 == sha256
        {
            // Touched but not changed: remember the new modification time so the next load
            // need not hash it again.
            touched.push(Mark { modified: source.modified, ..m.clone() });
            files.push(skipped(&source, format!("content unchanged since it was loaded in version {}", m.version)));
            continue;
        }
        if let Some(first) = planned.iter().find(|p| p.sha256 == sha256) {
            let why = format!("same content as {}", first.source.display());
            files.push(skipped(&source, why));
            continue;
        }
        let app_id = app_id(&sha256);
        let (skip, note) = match (mark, prefix) {
            (Some(m), Some(p)) if p == m.sha256 => (m.records, None),
            (Some(m), _) => (0, Some(format!("changed since it was loaded in version {}: loaded again in full", m.version))),
            (None, _) => (0, None),
        };
        planned.push(Planned { source, sha256, app_id, skip, note });
    }

    // The transaction ids in the table's log: the guarantee that holds without watermarks.
    let mut committed: HashMap<String, u64> = HashMap::new();
    for p in &planned {
        if let Some(v) = writer::transaction_version(&table, &p.app_id).await? {
            committed.insert(p.app_id.clone(), v);
        }
    }
    if overwrite {
        let current = previous_version.unwrap_or(0);
        if !planned.is_empty() && planned.iter().all(|p| committed.get(&p.app_id) == Some(&current)) {
            for p in planned.drain(..) {
                files.push(skipped(&p.source, format!("already loaded by the overwrite that made version {current}")));
            }
        }
    } else {
        planned.retain(|p| match committed.get(&p.app_id) {
            Some(v) => {
                files.push(skipped(&p.source, format!("already loaded in version {v}")));
                false
            }
            None => true,
        });
    }
    if planned.is_empty() {
        watermark::record(&config.data_dir, &touched).await?;
        return Ok(LoadReport {
            table: entry.display_name(),
            location: target.url.to_string(),
            version: None,
            previous_version,
            created: false,
            rows: 0,
            rows_updated: 0,
            rejected: 0,
            rejects_file: None,
            files,
            elapsed: started.elapsed(),
        });
    }

    let schema = target_schema(&table, &planned, request)?;
    let rejects_path = request
        .rejects_path
        .clone()
        .unwrap_or_else(|| RejectsFile::default_path(&config.data_dir, &target.name));
    // Absolute, so the path the report prints works from any directory.
    let mut rejects = RejectsFile::new(std::path::absolute(&rejects_path)?);
    let total_bytes: u64 = planned.iter().map(|p| p.source.size).sum();
    let progress = Progress::new(format!("loading {}", entry.display_name()), request.quiet);

    // Files are parsed on a blocking thread and handed to the writer through a small channel,
    // so memory holds a few batches whatever the input's size.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::result::Result<RecordBatch, DataFusionError>>(4);
    let jobs: Vec<(Source, u64)> = planned.iter().map(|p| (p.source.clone(), p.skip)).collect();
    let producer_schema = schema.clone();
    let max_rejects = request.max_rejects;
    let producer = tokio::task::spawn_blocking(move || {
        let bytes = Arc::new(AtomicU64::new(0));
        let mut counts: Vec<(u64, u64)> = Vec::with_capacity(jobs.len());
        let mut total_rows = 0u64;
        let files = jobs.len();
        let outcome = (|| -> Result<()> {
            for (i, (source, skip)) in jobs.iter().enumerate() {
                let (mut rows, mut rejected) = (0u64, 0u64);
                let name = source.display();
                formats::read(source, &producer_schema, *skip, BATCH_ROWS, bytes.clone(), &mut |chunk| {
                    rejects.add(&name, &chunk.rejects)?;
                    rows += chunk.batch.num_rows() as u64;
                    rejected += chunk.rejects.len() as u64;
                    total_rows += chunk.batch.num_rows() as u64;
                    if let Some(max) = max_rejects
                        && rejects.count() > max
                    {
                        return Err(PersonaError::TooManyRejects(format!(
                            "more than {max} records rejected (the last in {name} line {}); nothing was loaded; see {}",
                            chunk.rejects.last().map_or(0, |r| r.line),
                            rejects.path().display()
                        )));
                    }
                    progress.update(i, files, total_rows, bytes.load(Ordering::Relaxed), total_bytes);
                    if chunk.batch.num_rows() > 0 && tx.blocking_send(Ok(chunk.batch)).is_err() {
                        return Err(PersonaError::Cancelled);
                    }
                    Ok(())
                })?;
                counts.push((rows, rejected));
            }
            Ok(())
        })();
        progress.finish();
        let closed = rejects.close();
        if let Err(e) = &outcome {
            // Fail the stream too, so the write never commits.
            let _ = tx.blocking_send(Err(DataFusionError::Execution(e.to_string())));
        }
        (outcome.and(closed), counts)
    });
    let stream = Box::pin(RecordBatchStreamAdapter::new(schema.clone(), tokio_stream::wrappers::ReceiverStream::new(rx)));
    let files_meta: Vec<serde_json::Value> = planned
        .iter()
        .map(|p| serde_json::json!({ "source": p.source.display(), "sha256": p.sha256, "skippedRecords": p.skip }))
        .collect();
    let write_request = WriteRequest {
        table: target.clone(),
        mode: request.mode.clone(),
        partition_by: request.partition_by.clone(),
        allow_new_columns: request.allow_new_columns,
        app_ids: planned.iter().map(|p| p.app_id.clone()).collect(),
        metadata: serde_json::json!({ "operation": "load", "files": files_meta }),
        retries: 0,
    };
    let written = writer::write(table, schema, stream, &write_request).await;
    let (produced, counts) = producer.await.map_err(|e| PersonaError::Io(std::io::Error::other(e)))?;
    let rejects_file = match (produced, written) {
        (Err(PersonaError::Cancelled), Err(e)) | (Ok(_), Err(e)) => return Err(e),
        (Err(e), _) => return Err(e),
        (Ok(path), Ok(w)) => (path, w),
    };
    let (rejects_file, written) = rejects_file;

    let now = Utc::now();
    let mut marks_out = touched;
    let (mut rows, mut rejected) = (0, 0);
    for (p, (r, j)) in planned.into_iter().zip(counts) {
        rows += r;
        rejected += j;
        marks_out.push(Mark {
            table: target.name.clone(),
            source: p.source.display(),
            size: p.source.size,
            modified: p.source.modified,
            sha256: p.sha256.clone(),
            records: p.skip + r + j,
            rows: r,
            rejected: j,
            version: written.version,
            loaded_at: now,
        });
        files.push(FileReport { source: p.source.display(), rows: r, rejected: j, already_had: p.skip, skipped: None, note: p.note });
    }
    watermark::record(&config.data_dir, &marks_out).await?;
    Ok(LoadReport {
        table: entry.display_name(),
        location: target.url.to_string(),
        version: Some(written.version),
        previous_version,
        created: written.created,
        rows: if matches!(request.mode, Mode::Merge { .. }) { written.rows_inserted } else { rows },
        rows_updated: written.rows_updated,
        rejected,
        rejects_file,
        files,
        elapsed: started.elapsed(),
    })
}

/// The schema the load writes: the table's (plus new columns when allowed), or for a new
/// table the columns of its files, each typed by the first file that has it.
fn target_schema(table: &DeltaTable, planned: &[Planned], request: &LoadRequest) -> Result<SchemaRef> {
    let existing = writer::schema_of(table);
    let mut fields: Vec<Field> = existing.as_ref().map(|s| s.fields().iter().map(|f| f.as_ref().clone()).collect()).unwrap_or_default();
    for p in planned {
        let what = p.source.display();
        let columns = formats::describe(&p.source, false)?;
        let new: Vec<&str> = columns
            .fields()
            .iter()
            .filter(|f| !fields.iter().any(|t| t.name() == f.name()))
            .map(|f| f.name().as_str())
            .collect();
        if existing.is_some() && !new.is_empty() && !request.allow_new_columns {
            let current = Schema::new(fields.clone());
            columns::check(&current, &formats::stored_schema(&p.source, true)?, false, &what)?;
        }
        if p.source.format == Format::Parquet {
            columns::check(&Schema::new(fields.clone()), &columns, true, &what)?;
        }
        if !new.is_empty() {
            let typed = if p.source.format == Format::Parquet { formats::stored_schema(&p.source, false)? } else { formats::stored_schema(&p.source, true)? };
            for name in new {
                let field = typed.field_with_name(name).map_err(|e| PersonaError::InvalidArgument(e.to_string()))?;
                fields.push(Field::new(name, field.data_type().clone(), true));
            }
        }
    }
    let schema = Schema::new(fields);
    if existing.is_none() {
        for p in &request.partition_by {
            if schema.field_with_name(p).is_err() {
                return Err(PersonaError::InvalidArgument(format!("--partition-by `{p}` is not a column of the files")));
            }
        }
    }
    if let Mode::Merge { key } = &request.mode {
        for k in key {
            if schema.field_with_name(k).is_err() {
                return Err(PersonaError::InvalidArgument(format!("--key `{k}` is not a column of the table")));
            }
        }
    }
    Ok(Arc::new(schema))
}
