//! The run tables: what each row of `persona.segment_runs`, `segment_members`,
//! `segment_changes`, `check_runs` and `check_failures` holds, and reading them back.
//!
//! | table | one row per | columns |
//! |---|---|---|
//! | segment_runs | segment run | run_id, run_number, segment, version, sha256, definition, key_column, input_versions (JSON), audience (JSON), status, message, rows, suppressed, members, entered, exited, output_version, trigger, started_at, seconds |
//! | segment_members | member of a published run | run_id, run_number, segment, version, customer_id, attributes (JSON) |
//! | segment_changes | member who entered or exited | run_id, run_number, segment, version, customer_id, change, attributes (JSON) |
//! | check_runs | check evaluated | run_id, check, version, sha256, severity, kind, status, failing_rows, value, message, input_versions (JSON), segment_run_id, trigger, started_at, seconds |
//! | check_failures | sampled failing row | run_id, check, version, row_number, row (JSON) |

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};

use super::checks::CheckResult;
use super::pinned::{self, Versions};
use super::Runs;
use crate::error::Result;
use crate::store::{self, CHECK_FAILURES, CHECK_RUNS, Mode, SEGMENT_CHANGES, SEGMENT_MEMBERS, SEGMENT_RUNS};

fn text<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn int(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(Int64Array::from_iter(values))
}

fn float(values: impl IntoIterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(values))
}

fn time(values: impl IntoIterator<Item = i64>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter_values(values).with_timezone("UTC"))
}

/// A batch whose columns are all nullable: the table's schema must not depend on whether the
/// first run happened to fill every column.
fn nullable_batch(columns: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    Ok(RecordBatch::try_from_iter_with_nullable(columns.into_iter().map(|(n, a)| (n, a, true)))?)
}

pub fn now_micros() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Records one check run: a `check_runs` row per result (one commit), then the sampled failing
/// rows (one more commit).
pub async fn checks(runs: &Runs, results: &[(CheckResult, Versions)], segment_run: Option<&str>) -> Result<()> {
    if results.is_empty() {
        return Ok(());
    }
    let run_id = new_run_id();
    let now = now_micros();
    let trigger = runs.trigger.describe();
    let n = results.len();
    let r = |f: &dyn Fn(&CheckResult) -> Option<String>| results.iter().map(|(c, _)| f(c)).collect::<Vec<_>>();
    let versions: Vec<String> = results.iter().map(|(_, v)| pinned::to_json(v)).collect();
    let names = r(&|c| Some(c.name.clone()));
    let sha = r(&|c| c.sha256.clone());
    let severity = r(&|c| c.severity.map(|s| s.as_str().to_string()));
    let kind = r(&|c| Some(c.kind.clone()));
    let status = r(&|c| Some(c.status.as_str().to_string()));
    let message = r(&|c| Some(c.message.clone()));
    let batch = nullable_batch(vec![
        ("run_id", text(std::iter::repeat_n(Some(run_id.as_str()), n))),
        ("check", text(names.iter().map(Option::as_deref))),
        ("version", int(results.iter().map(|(c, _)| c.version))),
        ("sha256", text(sha.iter().map(Option::as_deref))),
        ("severity", text(severity.iter().map(Option::as_deref))),
        ("kind", text(kind.iter().map(Option::as_deref))),
        ("status", text(status.iter().map(Option::as_deref))),
        ("failing_rows", int(results.iter().map(|(c, _)| c.failing_rows.map(|n| n as i64)))),
        ("value", float(results.iter().map(|(c, _)| c.value))),
        ("message", text(message.iter().map(Option::as_deref))),
        ("input_versions", text(versions.iter().map(|v| Some(v.as_str())))),
        ("segment_run_id", text(std::iter::repeat_n(segment_run, n))),
        ("trigger", text(std::iter::repeat_n(Some(trigger.as_str()), n))),
        ("started_at", time(std::iter::repeat_n(now, n))),
        ("seconds", float(results.iter().map(|(c, _)| Some(c.seconds)))),
    ])?;
    store::write(&runs.data_dir, CHECK_RUNS, vec![batch], Mode::Append, &[]).await?;

    let sampled: Vec<(&CheckResult, usize, &String)> =
        results.iter().flat_map(|(c, _)| c.sample.iter().enumerate().map(move |(i, row)| (c, i, row))).collect();
    if !sampled.is_empty() {
        let m = sampled.len();
        let batch = nullable_batch(vec![
            ("run_id", text(std::iter::repeat_n(Some(run_id.as_str()), m))),
            ("check", text(sampled.iter().map(|(c, _, _)| Some(c.name.as_str())))),
            ("version", int(sampled.iter().map(|(c, _, _)| c.version))),
            ("row_number", int(sampled.iter().map(|(_, i, _)| Some(*i as i64 + 1)))),
            ("row", text(sampled.iter().map(|(_, _, r)| Some(r.as_str())))),
        ])?;
        store::write(&runs.data_dir, CHECK_FAILURES, vec![batch], Mode::Append, &[]).await?;
    }
    Ok(())
}

/// The last recorded metric value of a check, the baseline of `fail_if_change`.
pub async fn last_metric(runs: &Runs, check: &str) -> Result<Option<f64>> {
    let sql = format!(
        "SELECT value FROM persona.{CHECK_RUNS} WHERE \"check\" = {} AND value IS NOT NULL ORDER BY started_at DESC LIMIT 1",
        literal(check)
    );
    let Some(batches) = query_if_exists(runs, CHECK_RUNS, &sql).await? else { return Ok(None) };
    Ok(batches.iter().find(|b| b.num_rows() > 0).map(|b| cast(b.column(0), &DataType::Float64)).transpose()?.map(|c| c.as_primitive::<Float64Type>().value(0)))
}

/// The input versions of a check's last recorded run.
pub async fn last_check_inputs(runs: &Runs, check: &str) -> Result<Option<Versions>> {
    let sql = format!(
        "SELECT input_versions FROM persona.{CHECK_RUNS} WHERE \"check\" = {} ORDER BY started_at DESC LIMIT 1",
        literal(check)
    );
    let Some(batches) = query_if_exists(runs, CHECK_RUNS, &sql).await? else { return Ok(None) };
    let Some(b) = batches.iter().find(|b| b.num_rows() > 0) else { return Ok(None) };
    let text = cast(b.column(0), &DataType::Utf8)?;
    Ok(Some(pinned::from_json(text.as_string::<i32>().value(0))?))
}

/// A recorded segment run, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRun {
    pub run_id: String,
    pub run_number: i64,
    pub segment: String,
    pub version: i64,
    pub sha256: String,
    pub definition: String,
    pub key_column: String,
    pub input_versions: Versions,
    pub audience: String,
    pub status: String,
    pub message: Option<String>,
    pub members: Option<i64>,
    pub entered: Option<i64>,
    pub exited: Option<i64>,
    pub suppressed: Option<i64>,
    pub output_version: Option<i64>,
    pub trigger: String,
    pub started_at: i64,
}

/// Every recorded run of a segment, oldest first.
pub async fn segment_runs(runs: &Runs, segment: &str) -> Result<Vec<SegmentRun>> {
    let sql = format!(
        "SELECT run_id, run_number, segment, version, sha256, definition, key_column, input_versions, audience, status, \
                message, members, entered, exited, suppressed, output_version, \"trigger\", \
                CAST(started_at AS BIGINT) AS started_at \
         FROM persona.{SEGMENT_RUNS} WHERE segment = {} ORDER BY run_number",
        literal(segment)
    );
    let Some(batches) = query_if_exists(runs, SEGMENT_RUNS, &sql).await? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for b in &batches {
        let s = |i: usize| -> Result<ArrayRef> { Ok(cast(b.column(i), &DataType::Utf8)?) };
        let i = |c: usize| -> Result<ArrayRef> { Ok(cast(b.column(c), &DataType::Int64)?) };
        let (run_id, segment, sha, definition, key, inputs, audience, status, message, trigger) =
            (s(0)?, s(2)?, s(4)?, s(5)?, s(6)?, s(7)?, s(8)?, s(9)?, s(10)?, s(16)?);
        let (number, version, members, entered, exited, suppressed, output, started) = (i(1)?, i(3)?, i(11)?, i(12)?, i(13)?, i(14)?, i(15)?, i(17)?);
        let txt = |a: &ArrayRef, r: usize| -> Option<String> { (!a.is_null(r)).then(|| a.as_string::<i32>().value(r).to_string()) };
        let num = |a: &ArrayRef, r: usize| -> Option<i64> { (!a.is_null(r)).then(|| a.as_primitive::<Int64Type>().value(r)) };
        for r in 0..b.num_rows() {
            out.push(SegmentRun {
                run_id: txt(&run_id, r).unwrap_or_default(),
                run_number: num(&number, r).unwrap_or_default(),
                segment: txt(&segment, r).unwrap_or_default(),
                version: num(&version, r).unwrap_or_default(),
                sha256: txt(&sha, r).unwrap_or_default(),
                definition: txt(&definition, r).unwrap_or_default(),
                key_column: txt(&key, r).unwrap_or_default(),
                input_versions: pinned::from_json(&txt(&inputs, r).unwrap_or_else(|| "{}".into()))?,
                audience: txt(&audience, r).unwrap_or_default(),
                status: txt(&status, r).unwrap_or_default(),
                message: txt(&message, r),
                members: num(&members, r),
                entered: num(&entered, r),
                exited: num(&exited, r),
                suppressed: num(&suppressed, r),
                output_version: num(&output, r),
                trigger: txt(&trigger, r).unwrap_or_default(),
                started_at: num(&started, r).unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

/// The members of a recorded run: key and attributes JSON, sorted by key.
pub async fn members(runs: &Runs, run_id: &str) -> Result<Vec<(String, String)>> {
    let sql = format!(
        "SELECT customer_id, attributes FROM persona.{SEGMENT_MEMBERS} WHERE run_id = {} ORDER BY customer_id",
        literal(run_id)
    );
    let Some(batches) = query_if_exists(runs, SEGMENT_MEMBERS, &sql).await? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for b in &batches {
        let keys = cast(b.column(0), &DataType::Utf8)?;
        let attrs = cast(b.column(1), &DataType::Utf8)?;
        for r in 0..b.num_rows() {
            out.push((keys.as_string::<i32>().value(r).to_string(), attrs.as_string::<i32>().value(r).to_string()));
        }
    }
    Ok(out)
}

/// What one segment run records.
pub struct SegmentRecord<'a> {
    pub run_id: &'a str,
    pub run_number: i64,
    pub segment: &'a str,
    pub version: i64,
    pub sha256: &'a str,
    pub definition: &'a str,
    pub key_column: &'a str,
    pub input_versions: &'a Versions,
    pub audience: &'a str,
    pub status: &'a str,
    pub message: Option<&'a str>,
    pub rows: Option<i64>,
    pub suppressed: Option<i64>,
    pub members: Option<i64>,
    pub entered: Option<i64>,
    pub exited: Option<i64>,
    pub output_version: Option<i64>,
    pub started_at: i64,
    pub seconds: f64,
}

/// Appends the run's row to `segment_runs`: the commit that publishes the run.
pub async fn segment_run(runs: &Runs, r: &SegmentRecord<'_>) -> Result<u64> {
    let inputs = pinned::to_json(r.input_versions);
    let trigger = runs.trigger.describe();
    let batch = nullable_batch(vec![
        ("run_id", text([Some(r.run_id)])),
        ("run_number", int([Some(r.run_number)])),
        ("segment", text([Some(r.segment)])),
        ("version", int([Some(r.version)])),
        ("sha256", text([Some(r.sha256)])),
        ("definition", text([Some(r.definition)])),
        ("key_column", text([Some(r.key_column)])),
        ("input_versions", text([Some(inputs.as_str())])),
        ("audience", text([Some(r.audience)])),
        ("status", text([Some(r.status)])),
        ("message", text([r.message])),
        ("rows", int([r.rows])),
        ("suppressed", int([r.suppressed])),
        ("members", int([r.members])),
        ("entered", int([r.entered])),
        ("exited", int([r.exited])),
        ("output_version", int([r.output_version])),
        ("trigger", text([Some(trigger.as_str())])),
        ("started_at", time([r.started_at])),
        ("seconds", float([Some(r.seconds)])),
    ])?;
    store::write(&runs.data_dir, SEGMENT_RUNS, vec![batch], Mode::Append, &[]).await
}

/// Appends a run's members and its entered/exited rows (one commit each); returns the
/// members table's new version.
pub async fn membership(
    runs: &Runs,
    head: (&str, i64, &str, i64),
    members: &[(String, String)],
    changes: &[(String, &'static str, String)],
) -> Result<u64> {
    let (run_id, run_number, segment, version) = head;
    let n = members.len();
    let batch = nullable_batch(vec![
        ("run_id", text(std::iter::repeat_n(Some(run_id), n))),
        ("run_number", int(std::iter::repeat_n(Some(run_number), n))),
        ("segment", text(std::iter::repeat_n(Some(segment), n))),
        ("version", int(std::iter::repeat_n(Some(version), n))),
        ("customer_id", text(members.iter().map(|(k, _)| Some(k.as_str())))),
        ("attributes", text(members.iter().map(|(_, a)| Some(a.as_str())))),
    ])?;
    let output = store::write(&runs.data_dir, SEGMENT_MEMBERS, vec![batch], Mode::Append, &["segment"]).await?;
    let m = changes.len();
    let batch = nullable_batch(vec![
        ("run_id", text(std::iter::repeat_n(Some(run_id), m))),
        ("run_number", int(std::iter::repeat_n(Some(run_number), m))),
        ("segment", text(std::iter::repeat_n(Some(segment), m))),
        ("version", int(std::iter::repeat_n(Some(version), m))),
        ("customer_id", text(changes.iter().map(|(k, _, _)| Some(k.as_str())))),
        ("change", text(changes.iter().map(|(_, c, _)| Some(*c)))),
        ("attributes", text(changes.iter().map(|(_, _, a)| Some(a.as_str())))),
    ])?;
    store::write(&runs.data_dir, SEGMENT_CHANGES, vec![batch], Mode::Append, &["segment"]).await?;
    Ok(output)
}

/// Runs `sql` over the live catalog once `table` has been written; `None` before that.
async fn query_if_exists(runs: &Runs, table: &str, sql: &str) -> Result<Option<Vec<RecordBatch>>> {
    if !store::exists(&runs.data_dir, table) {
        return Ok(None);
    }
    Ok(Some(runs.ctx.sql(sql).await?.collect().await?))
}

/// A SQL string literal.
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
