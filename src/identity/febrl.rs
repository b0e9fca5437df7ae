//! Accuracy on FEBRL, the standard record-linkage benchmark with ground truth.
//!
//! The resolver never sees `rec_id`: it is kept aside and used only to score the result, as
//! pairwise precision, recall and F1 over the record pairs the clusters imply.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::profiles::{self, Profiles};
use super::{Settings, resolve};
use crate::error::{PersonaError, Result};

/// A FEBRL task: record files (one source each) and the true pairs.
#[derive(Debug, Clone, Copy)]
pub struct Task {
    pub name: &'static str,
    files: &'static [&'static str],
    truth: &'static str,
}

pub const TASKS: [Task; 3] = [
    Task { name: "febrl4", files: &["febrl4a.csv", "febrl4b.csv"], truth: "febrl4_true_links.csv" },
    Task { name: "febrl1", files: &["febrl1.csv"], truth: "febrl1_true_matches.csv" },
    Task { name: "febrl2", files: &["febrl2.csv"], truth: "febrl2_true_matches.csv" },
];

pub fn task(name: &str) -> Result<Task> {
    TASKS.into_iter().find(|t| t.name == name).ok_or_else(|| {
        PersonaError::InvalidArgument(format!("unknown FEBRL task `{name}`; use febrl4, febrl1 or febrl2"))
    })
}

#[derive(Debug, Clone)]
pub struct Report {
    pub task: &'static str,
    pub records: usize,
    pub candidate_pairs: usize,
    pub predicted_pairs: usize,
    pub true_pairs: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Evaluating the rules and resolving, without reading the files.
    pub elapsed: Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<7} records={:<6} candidates={:<7} predicted={:<5} true={:<5} precision={:.4} recall={:.4} f1={:.4} time={:.2}s",
            self.task, self.records, self.candidate_pairs, self.predicted_pairs, self.true_pairs,
            self.precision, self.recall, self.f1, self.elapsed.as_secs_f64()
        )
    }
}

/// Resolves a FEBRL task from `dir` with `settings` (`link_only` is set for linking tasks)
/// and scores it.
pub async fn evaluate(dir: &Path, task: Task, settings: &Settings) -> Result<Report> {
    let mut batches = Vec::new();
    for (source, file) in task.files.iter().enumerate() {
        for batch in read_csv(&dir.join(file))? {
            if batch.column_by_name("rec_id").is_none() {
                return Err(PersonaError::InvalidArgument(format!("{file}: no rec_id column")));
            }
            batches.push(with_source(&batch, &format!("file{source}"))?);
        }
    }
    let schema = batches.first().map(|b| b.schema()).ok_or_else(|| PersonaError::InvalidArgument(format!("{}: no records", task.name)))?;
    let ctx = SessionContext::new();
    persona_udfs::register_all(&ctx)?;
    ctx.register_table("febrl", Arc::new(MemTable::try_new(schema, vec![batches])?))?;
    let settings = Settings { link_only: task.files.len() > 1, ..settings.clone() };

    let started = Instant::now();
    // rec_id is only carried through for scoring: no rule reads it.
    let profiles = profiles::load(ctx.table("febrl").await?, &settings, Some("source"), &["rec_id"]).await?;
    let resolution = resolve(&profiles, &settings);
    let elapsed = started.elapsed();

    let predicted = implied_pairs(&profiles, &resolution.clusters, settings.link_only);
    let truth = read_truth(&dir.join(task.truth))?;
    let hits = predicted.intersection(&truth).count();
    let precision = ratio(hits, predicted.len());
    let recall = ratio(hits, truth.len());
    let f1 = if precision + recall > 0.0 { 2.0 * precision * recall / (precision + recall) } else { 0.0 };
    Ok(Report {
        task: task.name,
        records: profiles.len,
        candidate_pairs: resolution.candidate_pairs,
        predicted_pairs: predicted.len(),
        true_pairs: truth.len(),
        precision,
        recall,
        f1,
        elapsed,
    })
}

fn with_source(batch: &RecordBatch, source: &str) -> Result<RecordBatch> {
    let mut fields: Vec<Field> = vec![Field::new("source", DataType::Utf8, false)];
    fields.extend(batch.schema().fields().iter().map(|f| f.as_ref().clone()));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(vec![source; batch.num_rows()]))];
    columns.extend(batch.columns().iter().cloned());
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?)
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Every pair of records in one cluster, as sorted `rec_id` pairs.
fn implied_pairs(p: &Profiles, clusters: &[u32], link_only: bool) -> HashSet<(String, String)> {
    let ids = &p.carried[0];
    let mut members: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, c) in clusters.iter().enumerate() {
        members.entry(*c).or_default().push(i);
    }
    let mut pairs = HashSet::new();
    for group in members.values() {
        for (a, &i) in group.iter().enumerate() {
            for &j in &group[a + 1..] {
                if !link_only || p.source[i] != p.source[j] {
                    pairs.insert(sorted(ids.value(i), ids.value(j)));
                }
            }
        }
    }
    pairs
}

fn sorted(a: &str, b: &str) -> (String, String) {
    if a <= b { (a.to_string(), b.to_string()) } else { (b.to_string(), a.to_string()) }
}

fn read_truth(path: &Path) -> Result<HashSet<(String, String)>> {
    let mut pairs = HashSet::new();
    for batch in read_csv(path)? {
        let (a, b) = (batch.column(0).as_string::<i32>(), batch.column(1).as_string::<i32>());
        for i in 0..batch.num_rows() {
            pairs.insert(sorted(a.value(i), b.value(i)));
        }
    }
    Ok(pairs)
}

/// A FEBRL CSV with every column read as text, so leading zeros survive.
fn read_csv(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).map_err(|e| PersonaError::InvalidArgument(format!("{}: {e}", path.display())))?;
    let mut header = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(&file), &mut header)?;
    let fields: Vec<Field> = header.trim_end().split(',').map(|n| Field::new(n, DataType::Utf8, true)).collect();
    let file = std::fs::File::open(path)?;
    let reader = ReaderBuilder::new(Arc::new(Schema::new(fields))).with_header(true).build(file)?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}
