//! What the command line prints about runs: readable tables, or JSON for scripts.

use serde_json::{Value, json};

use super::checks::{CheckResult, Status};
use super::pinned::Versions;
use super::segments::{Diff, Listed, Preview, Replay, RunOutcome};
use crate::ingest::progress::count;

/// Left-aligned columns, the header underlined.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec()), line(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(String::as_str).collect())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

fn versions(v: &Versions) -> String {
    if v.is_empty() {
        return "none".into();
    }
    v.iter().map(|(t, n)| format!("{t}@{n}")).collect::<Vec<_>>().join(", ")
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

pub fn checks_text(results: &[CheckResult]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.severity.map_or("-", |s| s.as_str()).to_string(),
                c.status.as_str().to_string(),
                opt(c.failing_rows),
                opt(c.value),
                c.message.clone(),
            ]
        })
        .collect();
    let with = |s: Status| results.iter().filter(|c| c.status == s).count();
    format!(
        "{}\n\n{}: {} pass, {} warn, {} fail, {} error",
        table(&["check", "severity", "status", "failing_rows", "value", "message"], &rows),
        count(results.len() as u64, "check"),
        with(Status::Pass),
        with(Status::Warn),
        with(Status::Fail),
        with(Status::Error)
    )
}

pub fn check_json(c: &CheckResult) -> Value {
    json!({
        "check": c.name, "version": c.version, "severity": c.severity.map(|s| s.as_str()), "kind": c.kind,
        "status": c.status.as_str(), "failing_rows": c.failing_rows, "value": c.value, "message": c.message,
        "sample": c.sample.iter().map(|r| serde_json::from_str::<Value>(r).unwrap_or(Value::Null)).collect::<Vec<_>>(),
        "seconds": c.seconds,
    })
}

pub fn checks_json(results: &[CheckResult]) -> String {
    serde_json::to_string_pretty(&results.iter().map(check_json).collect::<Vec<_>>()).expect("JSON values serialize")
}

fn keys(members: &[(String, String)], limit: usize) -> String {
    let shown: Vec<&str> = members.iter().take(limit).map(|(k, _)| k.as_str()).collect();
    let more = members.len().saturating_sub(limit);
    format!("{}{}", shown.join(", "), if more > 0 { format!(", ... ({more} more)") } else { String::new() })
}

pub fn run_text(o: &RunOutcome) -> String {
    let mut out = vec![format!(
        "segment {} v{} run {}: {} in {:.2}s",
        o.segment, o.version, o.run_number, o.status, o.seconds
    )];
    out.push(format!("  inputs: {}", versions(&o.input_versions)));
    if !o.checks.is_empty() {
        let checks: Vec<String> = o.checks.iter().map(|c| format!("{} {}", c.name, c.status.as_str())).collect();
        out.push(format!("  required checks: {}", checks.join(", ")));
    }
    if let Some(m) = &o.message {
        out.push(format!("  {m}"));
    }
    if let (Some(rows), Some(members)) = (o.rows, o.members) {
        out.push(format!(
            "  rows {rows}, removed by the audience rule {}, members {members}: {} entered, {} exited (segment_members version {})",
            opt(o.suppressed),
            o.entered.len(),
            o.exited.len(),
            opt(o.output_version)
        ));
        if !o.entered.is_empty() {
            out.push(format!("  entered: {}", keys(&o.entered, 10)));
        }
        if !o.exited.is_empty() {
            out.push(format!("  exited: {}", keys(&o.exited, 10)));
        }
    }
    out.join("\n")
}

pub fn run_json(o: &RunOutcome) -> Value {
    json!({
        "segment": o.segment, "version": o.version, "run_id": o.run_id, "run_number": o.run_number, "status": o.status,
        "message": o.message, "rows": o.rows, "suppressed": o.suppressed, "members": o.members,
        "entered": o.entered.iter().map(|(k, _)| k).collect::<Vec<_>>(), "exited": o.exited.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "output_version": o.output_version, "input_versions": o.input_versions,
        "checks": o.checks.iter().map(check_json).collect::<Vec<_>>(), "seconds": o.seconds,
    })
}

pub fn preview_text(p: &Preview, sample: usize) -> String {
    let mut out = vec![format!(
        "segment {} v{} (preview, nothing written): {}",
        p.segment,
        p.version,
        count(p.evaluated.members.len() as u64, "member")
    )];
    out.push(format!("  inputs: {}", versions(&p.input_versions)));
    for c in &p.checks {
        out.push(format!("  required check {}: {} {}", c.name, c.status.as_str(), c.message));
    }
    if let Some(all) = p.unfiltered {
        let rows: Vec<Vec<String>> = std::iter::once(vec!["(no conditions)".to_string(), all.to_string(), String::new()])
            .chain(p.steps.iter().map(|s| vec![s.condition.clone(), s.members.to_string(), s.removed.to_string()]))
            .collect();
        out.push(String::new());
        out.push(table(&["condition", "members", "removed"], &rows));
    }
    if !p.evaluated.members.is_empty() {
        out.push(String::new());
        out.push(format!("sample of {}:", sample.min(p.evaluated.members.len())));
        for (k, a) in p.evaluated.members.iter().take(sample) {
            out.push(format!("  {k}  {a}"));
        }
    }
    out.join("\n")
}

pub fn preview_json(p: &Preview, sample: usize) -> Value {
    json!({
        "segment": p.segment, "version": p.version, "members": p.evaluated.members.len(), "rows": p.evaluated.rows,
        "suppressed": p.evaluated.suppressed, "input_versions": p.input_versions, "unfiltered": p.unfiltered,
        "steps": p.steps.iter().map(|s| json!({"condition": s.condition, "members": s.members, "removed": s.removed})).collect::<Vec<_>>(),
        "sample": p.evaluated.members.iter().take(sample).map(|(k, a)| json!({"key": k, "attributes": serde_json::from_str::<Value>(a).unwrap_or(Value::Null)})).collect::<Vec<_>>(),
        "checks": p.checks.iter().map(check_json).collect::<Vec<_>>(),
    })
}

pub fn diff_text(d: &Diff) -> String {
    let mut out = vec![format!(
        "segment {}: run {} (v{}) -> run {} (v{}): {} entered, {} exited, {} stayed",
        d.to.segment,
        d.from.run_number,
        d.from.version,
        d.to.run_number,
        d.to.version,
        d.entered.len(),
        d.exited.len(),
        d.stayed
    )];
    for (k, a) in &d.entered {
        out.push(format!("+ {k}  {a}"));
    }
    for (k, a) in &d.exited {
        out.push(format!("- {k}  {a}"));
    }
    out.join("\n")
}

pub fn diff_json(d: &Diff) -> Value {
    json!({
        "segment": d.to.segment, "from_run": d.from.run_number, "to_run": d.to.run_number,
        "entered": d.entered.iter().map(|(k, _)| k).collect::<Vec<_>>(), "exited": d.exited.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        "stayed": d.stayed,
    })
}

pub fn replay_text(r: &Replay) -> String {
    let verdict = if r.same() {
        format!("the same {} as recorded", count(r.members.len() as u64, "member"))
    } else {
        format!("DIFFERENT: {} now, {} recorded", count(r.members.len() as u64, "member"), r.recorded.len())
    };
    format!(
        "segment {} v{} run {} replayed at {}: {verdict}",
        r.run.segment,
        r.run.version,
        r.run.run_number,
        versions(&r.run.input_versions)
    )
}

pub fn list_text(items: &[Listed]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|l| match &l.error {
            Some(e) => vec![l.name.clone(), String::new(), String::new(), format!("BROKEN: {e}")],
            None => vec![
                l.name.clone(),
                opt(l.version),
                l.last_run.as_ref().map_or_else(
                    || "never run".to_string(),
                    |r| format!("run {} v{} {} ({} members)", r.run_number, r.version, r.status, opt(r.members)),
                ),
                l.description.clone().unwrap_or_default(),
            ],
        })
        .collect();
    table(&["segment", "version", "last run", "description"], &rows)
}

pub fn list_json(items: &[Listed]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|l| {
                json!({
                    "segment": l.name, "version": l.version, "description": l.description, "requires": l.requires, "error": l.error,
                    "last_run": l.last_run.as_ref().map(|r| json!({"run_number": r.run_number, "version": r.version, "status": r.status, "members": r.members})),
                })
            })
            .collect(),
    )
}
