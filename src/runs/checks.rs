//! Running checks: a failing-rows query passes with no rows; a metric passes while no threshold
//! trips. Each result is recorded in `persona.check_runs`, a capped sample of failing rows in
//! `persona.check_failures`.

use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

use super::definition::{Definition, Severity, Test};
use super::{Runs, rows};
use crate::error::{PersonaError, Result};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Pass,
    /// Failed, severity warn.
    Warn,
    /// Failed, severity error.
    Fail,
    /// Could not run: broken file, SQL error, unreadable table.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }

    /// True when it stops a segment that requires the check.
    pub fn blocks(self) -> bool {
        matches!(self, Status::Fail | Status::Error)
    }
}

#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub version: Option<i64>,
    pub sha256: Option<String>,
    pub severity: Option<Severity>,
    /// `sql`, `metric` or the built-in kind.
    pub kind: String,
    pub status: Status,
    pub failing_rows: Option<u64>,
    pub value: Option<f64>,
    pub message: String,
    /// Up to the configured number of failing rows, as JSON objects.
    pub sample: Vec<String>,
    pub seconds: f64,
}

impl CheckResult {
    /// The result for a file that could not be used or a check that could not run.
    pub fn error(name: &str, def: Option<&Definition>, message: String) -> Self {
        Self {
            name: name.to_string(),
            version: def.map(|d| d.version),
            sha256: def.map(|d| d.sha256.clone()),
            severity: def.map(|d| d.severity),
            kind: def.map_or_else(|| "sql".to_string(), kind_of),
            status: Status::Error,
            failing_rows: None,
            value: None,
            message,
            sample: Vec::new(),
            seconds: 0.0,
        }
    }
}

fn kind_of(d: &Definition) -> String {
    match (&d.builtin, &d.test) {
        (Some(b), _) => b.kind().to_string(),
        (None, Test::Metric { .. }) => "metric".into(),
        (None, Test::FailingRows) => "sql".into(),
    }
}

/// Runs one check in a (pinned) session; `previous` is its last recorded metric value.
pub async fn evaluate(ctx: &SessionContext, def: &Definition, previous: Option<f64>, sample_cap: usize) -> CheckResult {
    let started = Instant::now();
    let mut result = CheckResult {
        name: def.name.clone(),
        version: Some(def.version),
        sha256: Some(def.sha256.clone()),
        severity: Some(def.severity),
        kind: kind_of(def),
        status: Status::Pass,
        failing_rows: None,
        value: None,
        message: String::new(),
        sample: Vec::new(),
        seconds: 0.0,
    };
    let failed = match def.severity {
        Severity::Warn => Status::Warn,
        Severity::Error => Status::Fail,
    };
    let outcome = match &def.test {
        Test::FailingRows => failing_rows(ctx, &def.sql, sample_cap).await.map(|(n, sample)| {
            result.failing_rows = Some(n);
            result.sample = sample;
            if n > 0 {
                result.status = failed;
                result.message = format!("{n} failing row{}", if n == 1 { "" } else { "s" });
            }
        }),
        Test::Metric { fail_if, fail_if_change } => metric(ctx, &def.sql).await.map(|value| {
            result.value = Some(value);
            let tripped = fail_if
                .and_then(|t| t.tripped(value, previous))
                .or_else(|| fail_if_change.and_then(|t| t.tripped(value, previous)));
            match tripped {
                Some(why) => {
                    result.status = failed;
                    result.message = why;
                }
                None => {
                    result.message = match (fail_if_change, previous) {
                        (Some(_), None) => format!("value {value}; no earlier run to compare the change with"),
                        _ => format!("value {value}"),
                    };
                }
            }
        }),
    };
    if let Err(e) = outcome {
        result.status = Status::Error;
        result.message = format!("{}:{}: {}", def.path.display(), def.sql_line, first_line(&e));
    }
    result.seconds = started.elapsed().as_secs_f64();
    result
}

/// Counts the rows a query returns, keeping the first `cap` as JSON; streams, so a check with
/// millions of failing rows never holds them.
async fn failing_rows(ctx: &SessionContext, sql: &str, cap: usize) -> Result<(u64, Vec<String>)> {
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    let (mut n, mut sample) = (0u64, Vec::new());
    while let Some(batch) = stream.try_next().await? {
        for row in 0..batch.num_rows() {
            if sample.len() < cap {
                sample.push(rows::to_json(&batch, row, &[])?);
            }
        }
        n += batch.num_rows() as u64;
    }
    Ok((n, sample))
}

/// The single number a metric check's query returns.
async fn metric(ctx: &SessionContext, sql: &str) -> Result<f64> {
    let batches = ctx.sql(sql).await?.collect().await?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let batch = batches.iter().find(|b| b.num_rows() > 0);
    let (Some(batch), 1) = (batch, rows) else {
        return Err(PersonaError::InvalidArgument(format!("a metric check returns one row with one number; this returned {rows} rows")));
    };
    let column = cast(batch.column(0), &DataType::Float64).map_err(|e| {
        PersonaError::InvalidArgument(format!("a metric check returns a number; `{}` is not one: {e}", batch.schema().field(0).name()))
    })?;
    let values = column.as_primitive::<Float64Type>();
    if values.is_null(0) || values.value(0).is_nan() {
        return Err(PersonaError::InvalidArgument("the metric is NULL (no rows to measure?)".into()));
    }
    Ok(values.value(0))
}

fn first_line(e: &PersonaError) -> String {
    let text = match e {
        PersonaError::DataFusion(df) => df.strip_backtrace(),
        other => other.to_string(),
    };
    text.lines().next().unwrap_or_default().to_string()
}

/// Runs checks by name (all when `names` is empty) over one pinned snapshot of their inputs.
pub async fn run(runs: &Runs, names: &[String]) -> Result<Vec<CheckResult>> {
    let project = runs.project()?;
    let mut results = Vec::new();
    let mut selected: Vec<&Definition> = Vec::new();
    if names.is_empty() {
        // Every check, and every broken check file, so nothing fails quietly.
        selected.extend(project.checks.iter());
        for e in project.errors.iter().filter(|e| e.path.parent().is_some_and(|p| p.ends_with("checks"))) {
            let name = e.path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().to_string());
            results.push(CheckResult::error(&name, None, e.to_string()));
        }
    } else {
        for n in names {
            match project.check(n) {
                Ok(d) => selected.push(d),
                Err(e) => results.push(CheckResult::error(n, None, e.to_string())),
            }
        }
    }
    results.extend(runs.evaluate_checks(&selected, None).await?);
    results.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(results)
}
