//! Segments: preview, run (publish membership with who entered and exited), diff and replay.
//!
//! A run publishes in this order: its required checks' results, its members and changes (one
//! commit each), and last its `segment_runs` row. That last commit is what publishes the run:
//! readers take members by `run_id` of a recorded run, so an interrupted run leaves nothing a
//! reader would mistake for an audience. A blocked or failed run is recorded too, with why.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, SetExpr, Statement};
use futures::TryStreamExt;

use super::audience::Audience;
use super::checks::{self, CheckResult};
use super::definition::{self, Definition, Kind};
use super::pinned::{self, Pinned, Versions};
use super::record::{self, SegmentRecord, SegmentRun};
use super::{AudienceConfig, Runs, rows};
use crate::error::{PersonaError, Result};
use crate::query;

/// A segment's members: key and attributes (JSON), sorted by key.
pub type Members = Vec<(String, String)>;

/// What a segment's SQL gave before and after the audience rule.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub rows: u64,
    pub suppressed: u64,
    pub members: Members,
}

/// Runs a segment's SQL in a (pinned) session and applies the audience rule.
pub async fn evaluate(ctx: &SessionContext, def: &Definition, rule: &AudienceConfig) -> Result<Evaluated> {
    let at = |m: String| PersonaError::InvalidArgument(format!("{}:{}: {m}", def.path.display(), def.sql_line));
    let df = ctx.sql(&def.sql).await.map_err(|e| at(e.strip_backtrace()))?;
    let names: Vec<String> = df.schema().fields().iter().map(|f| f.name().clone()).collect();
    let Some(key_index) = names.iter().position(|n| *n == def.key) else {
        return Err(at(format!("the segment returns no `{}` column (it returns {}); declare `-- key:` if the key has another name", def.key, names.join(", "))));
    };
    let audience = Audience::evaluate(ctx, rule).await?;
    let mut stream = df.execute_stream().await.map_err(|e| at(e.strip_backtrace()))?;
    let (mut rows, mut suppressed) = (0u64, 0u64);
    let mut seen = HashSet::new();
    let mut members = Members::new();
    while let Some(batch) = stream.try_next().await.map_err(|e| at(e.strip_backtrace()))? {
        let keys = batch.column(key_index);
        for row in 0..batch.num_rows() {
            rows += 1;
            let key = rows::key_text(keys.as_ref(), row)?
                .ok_or_else(|| at(format!("row {rows} has a NULL {}; every member needs a key", def.key)))?;
            if !seen.insert(key.clone()) {
                return Err(at(format!("{} `{key}` appears twice: a segment returns one row per member", def.key)));
            }
            if audience.admits(&key) {
                members.push((key, rows::to_json(&batch, row, &[def.key.as_str()])?));
            } else {
                suppressed += 1;
            }
        }
    }
    members.sort();
    Ok(Evaluated { rows, suppressed, members })
}

/// What `segments run` did.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_id: String,
    pub run_number: i64,
    pub segment: String,
    pub version: i64,
    /// `published`, `blocked` or `failed`.
    pub status: &'static str,
    pub message: Option<String>,
    pub rows: Option<u64>,
    pub suppressed: Option<u64>,
    pub members: Option<u64>,
    pub entered: Vec<(String, String)>,
    pub exited: Vec<(String, String)>,
    pub output_version: Option<u64>,
    pub input_versions: Versions,
    pub checks: Vec<CheckResult>,
    pub seconds: f64,
}

/// Refuses a definition whose version was already recorded with another body.
fn check_immutable(def: &Definition, recorded: &[SegmentRun]) -> Result<()> {
    if let Some(r) = recorded.iter().find(|r| r.version == def.version && r.sha256 != def.sha256) {
        return Err(PersonaError::InvalidArgument(format!(
            "{}: segment `{}` version {} was already run (run {}) with a different definition (sha256 {} then, {} now); \
             versions are immutable: bump `-- version:` to {}",
            def.path.display(),
            def.name,
            def.version,
            r.run_number,
            &r.sha256[..12.min(r.sha256.len())],
            &def.sha256[..12],
            recorded.iter().map(|r| r.version).max().unwrap_or(def.version) + 1
        )));
    }
    Ok(())
}

/// Pins what a segment, its required checks and the audience rule read.
async fn pin_inputs(runs: &Runs, def: &Definition, required: &[&Definition], rule: &AudienceConfig) -> Result<Pinned> {
    let mut tables = runs.readable_tables(def).map_err(PersonaError::InvalidArgument)?;
    for c in required {
        // A check whose tables are unknown still runs (and errors) inside the gate.
        tables.extend(runs.readable_tables(c).unwrap_or_default());
    }
    tables.extend(pinned::tables_read(&runs.ctx, &rule.queries())?);
    pinned::pin(&runs.ctx, &tables, None).await
}

/// Runs a segment: gate on its required checks, evaluate, publish members and changes.
pub async fn run(runs: &Runs, name: &str) -> Result<RunOutcome> {
    let started = Instant::now();
    let started_at = record::now_micros();
    let project = runs.project()?;
    let def = project.segment(name)?;
    let required: Vec<&Definition> = def.requires.iter().map(|r| project.check(r)).collect::<Result<_>>()?;
    let recorded = record::segment_runs(runs, name).await?;
    check_immutable(def, &recorded)?;
    runs.audience.applies_to(name, &def.key)?;
    let pinned = pin_inputs(runs, def, &required, &runs.audience).await?;

    let run_id = record::new_run_id();
    let run_number = recorded.last().map_or(1, |r| r.run_number + 1);
    let checks = runs.evaluate_checks(&required, Some((&pinned, &run_id))).await?;
    let text = std::fs::read_to_string(&def.path)?;
    let audience_json = runs.audience.to_json();
    let mut outcome = RunOutcome {
        run_id: run_id.clone(),
        run_number,
        segment: def.name.clone(),
        version: def.version,
        status: "published",
        message: None,
        rows: None,
        suppressed: None,
        members: None,
        entered: Vec::new(),
        exited: Vec::new(),
        output_version: None,
        input_versions: pinned.versions.clone(),
        checks: checks.clone(),
        seconds: 0.0,
    };
    let blockers: Vec<String> = checks
        .iter()
        .filter(|c| c.status.blocks())
        .map(|c| format!("`{}` ({}: {})", c.name, c.status.as_str(), c.message))
        .collect();
    let evaluated = if blockers.is_empty() {
        match evaluate(&pinned.ctx, def, &runs.audience).await {
            Ok(e) => Some(e),
            Err(e) => {
                outcome.status = "failed";
                outcome.message = Some(e.to_string());
                None
            }
        }
    } else {
        outcome.status = "blocked";
        outcome.message = Some(format!("not published: required check {} failed on the inputs", blockers.join(", ")));
        None
    };

    if let Some(e) = evaluated {
        let previous = recorded.iter().rev().find(|r| r.status == "published");
        let before: BTreeMap<String, String> = match previous {
            Some(p) => record::members(runs, &p.run_id).await?.into_iter().collect(),
            None => BTreeMap::new(),
        };
        let now: BTreeMap<&str, &str> = e.members.iter().map(|(k, a)| (k.as_str(), a.as_str())).collect();
        outcome.entered = e.members.iter().filter(|(k, _)| !before.contains_key(k)).cloned().collect();
        outcome.exited = before.iter().filter(|(k, _)| !now.contains_key(k.as_str())).map(|(k, a)| (k.clone(), a.clone())).collect();
        let changes: Vec<(String, &'static str, String)> = outcome
            .entered
            .iter()
            .map(|(k, a)| (k.clone(), "entered", a.clone()))
            .chain(outcome.exited.iter().map(|(k, a)| (k.clone(), "exited", a.clone())))
            .collect();
        let output = record::membership(runs, (&run_id, run_number, &def.name, def.version), &e.members, &changes).await?;
        outcome.rows = Some(e.rows);
        outcome.suppressed = Some(e.suppressed);
        outcome.members = Some(e.members.len() as u64);
        outcome.output_version = Some(output);
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    record::segment_run(
        runs,
        &SegmentRecord {
            run_id: &run_id,
            run_number,
            segment: &def.name,
            version: def.version,
            sha256: &def.sha256,
            definition: &text,
            key_column: &def.key,
            input_versions: &pinned.versions,
            audience: &audience_json,
            status: outcome.status,
            message: outcome.message.as_deref(),
            rows: outcome.rows.map(|n| n as i64),
            suppressed: outcome.suppressed.map(|n| n as i64),
            members: outcome.members.map(|n| n as i64),
            entered: outcome.members.map(|_| outcome.entered.len() as i64),
            exited: outcome.members.map(|_| outcome.exited.len() as i64),
            output_version: outcome.output_version.map(|v| v as i64),
            started_at,
            seconds: outcome.seconds,
        },
    )
    .await?;
    Ok(outcome)
}

/// One condition of a preview and what it does to the member count.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub condition: String,
    /// Members once this condition (and every one before it) applies.
    pub members: u64,
    pub removed: u64,
}

#[derive(Debug, Clone)]
pub struct Preview {
    pub segment: String,
    pub version: i64,
    pub input_versions: Versions,
    /// Rows of the query without its WHERE and HAVING conditions, when it has any.
    pub unfiltered: Option<u64>,
    pub steps: Vec<Step>,
    pub evaluated: Evaluated,
    pub checks: Vec<CheckResult>,
}

/// What a run would publish now, and how many rows each condition removes; writes nothing.
pub async fn preview(runs: &Runs, name: &str) -> Result<Preview> {
    let project = runs.project()?;
    let def = project.segment(name)?;
    let required: Vec<&Definition> = def.requires.iter().map(|r| project.check(r)).collect::<Result<_>>()?;
    runs.audience.applies_to(name, &def.key)?;
    let pinned = pin_inputs(runs, def, &required, &runs.audience).await?;
    let mut check_results = Vec::new();
    for c in &required {
        check_results.push(checks::evaluate(&pinned.ctx, c, record::last_metric(runs, &c.name).await?, 0).await);
    }
    let evaluated = evaluate(&pinned.ctx, def, &runs.audience).await?;
    let (unfiltered, mut steps) = condition_steps(&pinned.ctx, def).await?;
    if !runs.audience.is_empty() {
        steps.push(Step {
            condition: "[audience] rule (consent, suppression)".into(),
            members: evaluated.members.len() as u64,
            removed: evaluated.suppressed,
        });
    }
    Ok(Preview {
        segment: def.name.clone(),
        version: def.version,
        input_versions: pinned.versions,
        unfiltered,
        steps,
        evaluated,
        checks: check_results,
    })
}

/// Counts the segment's rows with its top-level WHERE and HAVING conditions added one at a
/// time, in the order they are written.
async fn condition_steps(ctx: &SessionContext, def: &Definition) -> Result<(Option<u64>, Vec<Step>)> {
    let statement = query::parse_one(&ctx.state(), &def.sql)?;
    let datafusion::sql::parser::Statement::Statement(boxed) = statement else { return Ok((None, Vec::new())) };
    let Statement::Query(q) = *boxed else { return Ok((None, Vec::new())) };
    let SetExpr::Select(select) = q.body.as_ref() else { return Ok((None, Vec::new())) };
    let wheres = select.selection.as_ref().map(conjuncts).unwrap_or_default();
    let havings = select.having.as_ref().map(conjuncts).unwrap_or_default();
    if wheres.is_empty() && havings.is_empty() {
        return Ok((None, Vec::new()));
    }
    let variant = |w: usize, h: usize| {
        let mut q = q.clone();
        if let SetExpr::Select(s) = q.body.as_mut() {
            s.selection = and_all(&wheres[..w]);
            s.having = and_all(&havings[..h]);
        }
        format!("SELECT count(*) FROM ({q}) AS preview")
    };
    let count = |sql: String| async move {
        let batches = ctx.sql(&sql).await?.collect().await?;
        let n = batches.first().map(|b| datafusion::arrow::compute::cast(b.column(0), &datafusion::arrow::datatypes::DataType::UInt64)).transpose()?;
        Ok::<u64, PersonaError>(n.map_or(0, |a| datafusion::arrow::array::AsArray::as_primitive::<datafusion::arrow::datatypes::UInt64Type>(&a).value(0)))
    };
    let unfiltered = count(variant(0, 0)).await?;
    let mut before = unfiltered;
    let mut steps = Vec::new();
    let all = wheres.iter().enumerate().map(|(i, e)| (i + 1, 0, e)).chain(havings.iter().enumerate().map(|(i, e)| (wheres.len(), i + 1, e)));
    for (w, h, condition) in all {
        let members = count(variant(w, h)).await?;
        steps.push(Step { condition: condition.to_string(), members, removed: before.saturating_sub(members) });
        before = members;
    }
    Ok((Some(unfiltered), steps))
}

fn conjuncts(e: &Expr) -> Vec<Expr> {
    match e {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut out = conjuncts(left);
            out.extend(conjuncts(right));
            out
        }
        Expr::Nested(inner) if matches!(inner.as_ref(), Expr::BinaryOp { op: BinaryOperator::And, .. }) => conjuncts(inner),
        other => vec![other.clone()],
    }
}

fn and_all(parts: &[Expr]) -> Option<Expr> {
    parts.iter().cloned().reduce(|a, b| Expr::BinaryOp { left: Box::new(a), op: BinaryOperator::And, right: Box::new(b) })
}

/// The recorded runs of a segment. None at all is an error that says whether the segment
/// exists (no file declares it: NOT_FOUND with the known names) or has just never run. Runs of a
/// segment whose file was removed since stay readable.
async fn recorded_runs(runs: &Runs, name: &str) -> Result<Vec<SegmentRun>> {
    let recorded = record::segment_runs(runs, name).await?;
    if recorded.is_empty() {
        runs.project()?.segment(name)?;
        return Err(PersonaError::NotFound(format!(
            "segment `{name}` has no recorded runs yet; run it with `persona segments run {name}`"
        )));
    }
    Ok(recorded)
}

/// Finds a recorded run: a run number (`3`), `vN` (the latest published run of version N), or
/// `latest`.
pub fn find_run<'a>(recorded: &'a [SegmentRun], spec: &str) -> Result<&'a SegmentRun> {
    let published = || recorded.iter().filter(|r| r.status == "published");
    let found = if spec == "latest" {
        published().last()
    } else if let Some(v) = spec.strip_prefix('v').and_then(|v| v.parse::<i64>().ok()) {
        published().filter(|r| r.version == v).last()
    } else if let Ok(n) = spec.parse::<i64>() {
        recorded.iter().find(|r| r.run_number == n)
    } else {
        return Err(PersonaError::InvalidArgument(format!("`{spec}`: name a run by number (3), by version (v2) or `latest`")));
    };
    found.ok_or_else(|| {
        let numbers: Vec<String> = recorded.iter().map(|r| format!("{} (v{}, {})", r.run_number, r.version, r.status)).collect();
        PersonaError::NotFound(format!(
            "run `{spec}`; recorded runs: {}",
            if numbers.is_empty() { "none".to_string() } else { numbers.join(", ") }
        ))
    })
}

#[derive(Debug, Clone)]
pub struct Diff {
    pub from: SegmentRun,
    pub to: SegmentRun,
    pub entered: Members,
    pub exited: Members,
    pub stayed: usize,
}

/// Who entered and who exited between two published runs (default: the last two).
pub async fn diff(runs: &Runs, name: &str, from: Option<&str>, to: Option<&str>) -> Result<Diff> {
    let recorded = recorded_runs(runs, name).await?;
    let to_run = find_run(&recorded, to.unwrap_or("latest"))?;
    let from_run = match from {
        Some(spec) => find_run(&recorded, spec)?,
        None => recorded
            .iter()
            .filter(|r| r.status == "published" && r.run_number < to_run.run_number)
            .last()
            .ok_or_else(|| PersonaError::InvalidArgument(format!("segment `{name}` has only one published run up to run {}; nothing to compare with", to_run.run_number)))?,
    };
    for r in [from_run, to_run] {
        if r.status != "published" {
            return Err(PersonaError::InvalidArgument(format!("run {} was {}: it has no members to compare", r.run_number, r.status)));
        }
    }
    let before: BTreeMap<String, String> = record::members(runs, &from_run.run_id).await?.into_iter().collect();
    let after: BTreeMap<String, String> = record::members(runs, &to_run.run_id).await?.into_iter().collect();
    Ok(Diff {
        from: from_run.clone(),
        to: to_run.clone(),
        entered: after.iter().filter(|(k, _)| !before.contains_key(*k)).map(|(k, a)| (k.clone(), a.clone())).collect(),
        exited: before.iter().filter(|(k, _)| !after.contains_key(*k)).map(|(k, a)| (k.clone(), a.clone())).collect(),
        stayed: after.keys().filter(|k| before.contains_key(*k)).count(),
    })
}

#[derive(Debug, Clone)]
pub struct Replay {
    pub run: SegmentRun,
    pub members: Members,
    pub recorded: Members,
}

impl Replay {
    pub fn same(&self) -> bool {
        self.members == self.recorded
    }
}

/// Runs a recorded run's definition again against the input versions it recorded, with the
/// audience rule it applied, and compares the members; writes nothing.
pub async fn replay(runs: &Runs, name: &str, spec: &str) -> Result<Replay> {
    let recorded = recorded_runs(runs, name).await?;
    let run = find_run(&recorded, spec)?.clone();
    if run.status != "published" {
        return Err(PersonaError::InvalidArgument(format!("run {} was {}: it published no members to reproduce", run.run_number, run.status)));
    }
    let path = std::path::PathBuf::from(format!("{name}@run{}.sql", run.run_number));
    let def = definition::parse(&path, &run.definition, Kind::Segment).map_err(|e| PersonaError::InvalidArgument(e.to_string()))?;
    let rule = AudienceConfig::from_json(&run.audience)?;
    let mut tables = pinned::tables_read(&runs.ctx, &[def.sql.as_str()])?;
    tables.extend(pinned::tables_read(&runs.ctx, &rule.queries())?);
    let pinned = pinned::pin(&runs.ctx, &tables, Some(&run.input_versions)).await?;
    let evaluated = evaluate(&pinned.ctx, &def, &rule).await?;
    let members = record::members(runs, &run.run_id).await?;
    Ok(Replay { run, members: evaluated.members, recorded: members })
}

/// A segment file and its last run, for `segments list`.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub version: Option<i64>,
    pub description: Option<String>,
    pub requires: Vec<String>,
    pub last_run: Option<SegmentRun>,
    pub error: Option<String>,
}

pub async fn list(runs: &Runs) -> Result<Vec<Listed>> {
    let project = runs.project()?;
    let mut out = Vec::new();
    for d in &project.segments {
        out.push(Listed {
            name: d.name.clone(),
            version: Some(d.version),
            description: d.description.clone(),
            requires: d.requires.clone(),
            last_run: record::segment_runs(runs, &d.name).await?.pop(),
            error: None,
        });
    }
    for e in project.errors.iter().filter(|e| e.path.parent().is_some_and(|p| p.ends_with("segments"))) {
        let name = e.path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().to_string());
        out.push(Listed { name, version: None, description: None, requires: Vec::new(), last_run: None, error: Some(e.to_string()) });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
