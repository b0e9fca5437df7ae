//! One segment or check file: its declaring comment block and its SQL.
//!
//! ```sql
//! -- segment: lapsed_high_value
//! -- version: 3
//! -- description: spent over 500 in the last year, nothing in the last 90 days
//! -- requires: events_amount_consistent
//! SELECT customer_id, ... FROM events ...
//! ```
//!
//! The leading `--` lines are the header; `key: value` lines in it declare the definition and an
//! unknown key is an error (a typo such as `verison` must not silently drop the version), other
//! comment lines are free text. A check either has a SQL body returning its failing rows (or, with
//! `fail_if`, one metric value) or declares a built-in `kind` with its arguments and no body (see
//! `builtin.rs`). The definition hash is the SHA-256 of the whole file, as DESIGN.md fixes it.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::builtin::Builtin;
use super::threshold::Threshold;

/// A segment or a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Segment,
    Check,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Segment => "segment",
            Kind::Check => "check",
        }
    }
}

/// How bad a failing check is: `error` (the default when a check declares none) blocks the
/// segments that require it, `warn` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// What a check's SQL gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// The failing rows; none is a pass.
    FailingRows,
    /// One number, failing when a threshold trips.
    Metric { fail_if: Option<Threshold>, fail_if_change: Option<Threshold> },
}

/// A parsed definition file.
#[derive(Debug, Clone)]
pub struct Definition {
    pub kind: Kind,
    pub name: String,
    /// Line of the `segment:` / `check:` header.
    pub name_line: usize,
    pub version: i64,
    pub description: Option<String>,
    /// Checks a segment needs to pass before it is published.
    pub requires: Vec<String>,
    /// Line of the `requires` header, for errors about the checks it names.
    pub requires_line: usize,
    pub severity: Severity,
    /// The member key column of a segment.
    pub key: String,
    /// The SQL the definition runs (a built-in check's generated SQL).
    pub sql: String,
    /// Line of the file where the SQL starts (1 for a built-in check's header).
    pub sql_line: usize,
    pub test: Test,
    /// The built-in kind a check was declared with, if any.
    pub builtin: Option<Builtin>,
    /// SHA-256 of the whole file, lower-case hex.
    pub sha256: String,
    pub path: PathBuf,
}

/// A definition file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
    }
}

impl std::error::Error for DefinitionError {}

const KEYS: [&str; 16] = [
    "segment", "check", "version", "description", "requires", "severity", "key", "kind", "table", "column", "columns",
    "values", "to", "where", "fail_if", "fail_if_change",
];

/// A header value and the line it was on.
#[derive(Debug, Clone)]
pub struct Field {
    pub value: String,
    pub line: usize,
}

/// The declared header keys of a file.
#[derive(Debug, Default)]
pub struct Header {
    fields: Vec<(String, Field)>,
}

impl Header {
    pub fn get(&self, key: &str) -> Option<&Field> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, f)| f)
    }
}

/// Parses the text of a definition file found at `path` (`expected` is the kind its folder holds).
pub fn parse(path: &Path, text: &str, expected: Kind) -> Result<Definition, DefinitionError> {
    let err = |line: usize, message: String| DefinitionError { path: path.to_path_buf(), line, message };
    let (header, body_line) = header(text).map_err(|(line, m)| err(line, m))?;
    let kind_field = match (header.get("segment"), header.get("check")) {
        (Some(_), Some(c)) => return Err(err(c.line, "a file declares either `segment:` or `check:`, not both".into())),
        (Some(s), None) => (Kind::Segment, s),
        (None, Some(c)) => (Kind::Check, c),
        (None, None) => {
            return Err(err(1, format!(
                "no `-- {}: NAME` line in the leading comment block",
                expected.as_str()
            )));
        }
    };
    let (kind, name) = kind_field;
    if kind != expected {
        return Err(err(name.line, format!(
            "this file declares a {} but lies among the {}s; move it or fix the header",
            kind.as_str(),
            expected.as_str()
        )));
    }
    if name.value.is_empty() || !name.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(err(name.line, format!(
            "`{}` is not a usable name: lower-case letters, digits and `_`",
            name.value
        )));
    }
    let version = header.get("version").ok_or_else(|| err(1, "no `-- version: N` line; every definition is versioned".into()))?;
    let version_number = version
        .value
        .parse::<i64>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| err(version.line, format!("version `{}` is not a whole number of at least 1", version.value)))?;
    let only_for = |key: &str, allowed: Kind| -> Result<(), DefinitionError> {
        match header.get(key) {
            Some(f) if kind != allowed => Err(err(f.line, format!("`{key}:` applies to {}s only", allowed.as_str()))),
            _ => Ok(()),
        }
    };
    for key in ["requires", "key"] {
        only_for(key, Kind::Segment)?;
    }
    for key in ["severity", "kind", "table", "column", "columns", "values", "to", "where", "fail_if", "fail_if_change"] {
        only_for(key, Kind::Check)?;
    }
    let severity = match (kind, header.get("severity")) {
        (Kind::Segment, _) => Severity::Error,
        // A failing check blocks what requires it unless it says it only warns (as in dbt).
        (Kind::Check, None) => Severity::Error,
        (Kind::Check, Some(f)) => match f.value.as_str() {
            "warn" => Severity::Warn,
            "error" => Severity::Error,
            other => return Err(err(f.line, format!("severity `{other}`: use warn or error"))),
        },
    };
    let requires_field = header.get("requires");
    let requires = requires_field.map(|f| list(&f.value)).unwrap_or_default();
    let key = header.get("key").map_or_else(|| "customer_id".to_string(), |f| f.value.clone());
    let body = text.lines().skip(body_line - 1).collect::<Vec<_>>().join("\n");
    let body = body.trim();

    let threshold = |key: &str, relative: bool| -> Result<Option<Threshold>, DefinitionError> {
        header
            .get(key)
            .map(|f| Threshold::parse(&f.value, relative).map_err(|m| err(f.line, format!("{key}: {m}"))))
            .transpose()
    };
    let fail_if = threshold("fail_if", false)?;
    let fail_if_change = threshold("fail_if_change", true)?;
    let metric = fail_if.is_some() || fail_if_change.is_some();

    let (sql, sql_line, test, builtin) = match (kind, header.get("kind")) {
        (Kind::Segment, _) => {
            if body.is_empty() {
                return Err(err(body_line, "the segment has no SQL after its header".into()));
            }
            (body.to_string(), body_line, Test::FailingRows, None)
        }
        (Kind::Check, Some(k)) => {
            if !body.is_empty() {
                return Err(err(body_line, format!(
                    "a `kind: {}` check is generated from its header; remove the SQL or the kind",
                    k.value
                )));
            }
            let b = Builtin::from_header(&k.value, &header).map_err(|(line, m)| err(line.unwrap_or(k.line), m))?;
            let test = if b.is_metric() {
                if !metric {
                    return Err(err(k.line, format!("a `{}` check needs `fail_if:` (for example `fail_if: < 1000`)", k.value)));
                }
                Test::Metric { fail_if, fail_if_change }
            } else {
                if metric {
                    return Err(err(k.line, format!("a `{}` check reports failing rows; it takes no `fail_if`", k.value)));
                }
                Test::FailingRows
            };
            (b.sql(), k.line, test, Some(b))
        }
        (Kind::Check, None) => {
            if body.is_empty() {
                return Err(err(body_line, "the check has no SQL and no built-in `kind:`".into()));
            }
            let test = if metric { Test::Metric { fail_if, fail_if_change } } else { Test::FailingRows };
            (body.to_string(), body_line, test, None)
        }
    };
    if kind == Kind::Check && header.get("kind").is_none() {
        for key in ["table", "column", "columns", "values", "to", "where"] {
            if let Some(f) = header.get(key) {
                return Err(err(f.line, format!("`{key}:` is an argument of a built-in `kind:`; this check has none")));
            }
        }
    }
    Ok(Definition {
        kind,
        name: name.value.clone(),
        name_line: name.line,
        version: version_number,
        description: header.get("description").map(|f| f.value.clone()),
        requires,
        requires_line: requires_field.map_or(1, |f| f.line),
        severity,
        key,
        sql,
        sql_line,
        test,
        builtin,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        path: path.to_path_buf(),
    })
}

/// The header fields and the line the body starts on.
fn header(text: &str) -> Result<(Header, usize), (usize, String)> {
    let mut header = Header::default();
    let mut body_line = 1;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        body_line = i + 1;
        let Some(comment) = line.strip_prefix("--") else {
            if line.is_empty() {
                continue;
            }
            return Ok((header, body_line));
        };
        let Some((key, value)) = comment.split_once(':') else { continue };
        let key = key.trim();
        // Only `word: value` lines are declarations; prose with a colon further in is not.
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let key = key.to_ascii_lowercase();
        if !KEYS.contains(&key.as_str()) {
            return Err((i + 1, format!("unknown header key `{key}`; known keys: {}", KEYS.join(", "))));
        }
        if header.get(&key).is_some() {
            return Err((i + 1, format!("`{key}:` is declared twice")));
        }
        header.fields.push((key, Field { value: value.trim().to_string(), line: i + 1 }));
        body_line = i + 2;
    }
    Ok((header, body_line.max(text.lines().count() + 1)))
}

/// A comma-separated header value.
pub fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str) -> Result<Definition, DefinitionError> {
        parse(Path::new("sql/segments/x.sql"), text, Kind::Segment)
    }

    #[test]
    fn a_segment_with_its_header() {
        let d = seg("-- segment: vip\n-- version: 2\n-- description: big: spenders\n-- requires: a, b\n\nSELECT customer_id FROM events\n").unwrap();
        assert_eq!((d.name.as_str(), d.version, d.key.as_str()), ("vip", 2, "customer_id"));
        assert_eq!(d.description.as_deref(), Some("big: spenders"));
        assert_eq!(d.requires, vec!["a", "b"]);
        assert_eq!((d.sql.as_str(), d.sql_line), ("SELECT customer_id FROM events", 6));
        // The SHA-256 of the whole file (checked with `sha256sum`).
        assert_eq!(
            parse(Path::new("x.sql"), "-- segment: a\n-- version: 1\nSELECT 1", Kind::Segment).unwrap().sha256,
            "3cf884f96fdd61ba1c83ab064fb9613a6976904f111c3b32e49a34e6447fbf8d"
        );
    }

    #[test]
    fn mistakes_are_reported_with_their_line() {
        let e = seg("-- segment: vip\n-- verison: 2\nSELECT 1").unwrap_err();
        assert_eq!((e.line, e.to_string().contains("unknown header key `verison`")), (2, true), "{e}");
        let e = seg("-- segment: vip\nSELECT 1").unwrap_err();
        assert!(e.message.contains("no `-- version: N`"), "{e}");
        let e = seg("-- segment: vip\n-- version: two\nSELECT 1").unwrap_err();
        assert_eq!(e.line, 2);
        let e = seg("-- segment: Vip Customers\n-- version: 1\nSELECT 1").unwrap_err();
        assert!(e.message.contains("not a usable name"), "{e}");
        let e = seg("-- check: c\n-- version: 1\n-- severity: warn\nSELECT 1").unwrap_err();
        assert!(e.message.contains("lies among the segments"), "{e}");
        let e = seg("-- segment: vip\n-- version: 1\n-- severity: warn\nSELECT 1").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (3, "`severity:` applies to checks only"));
        let e = seg("-- segment: vip\n-- version: 1\n").unwrap_err();
        assert!(e.message.contains("no SQL"), "{e}");
        // Free-text comments in the header are fine.
        seg("-- segment: vip\n-- version: 1\n-- Owner is the CRM team (ask Ann, ext. 12).\nSELECT 1").unwrap();
    }

    #[test]
    fn checks_failing_rows_metrics_and_builtins() {
        let check = |t: &str| parse(Path::new("c.sql"), t, Kind::Check);
        let c = check("-- check: c\n-- version: 1\n-- severity: warn\nSELECT * FROM t WHERE x < 0").unwrap();
        assert_eq!((c.severity, &c.test), (Severity::Warn, &Test::FailingRows));
        let c = check("-- check: c\n-- version: 1\n-- severity: error\n-- fail_if: < 1000\nSELECT count(*) FROM t").unwrap();
        assert!(matches!(c.test, Test::Metric { fail_if: Some(_), fail_if_change: None }));
        let c = check("-- check: c\n-- version: 1\n-- severity: error\n-- kind: not_null\n-- table: events\n-- column: customer_id\n").unwrap();
        assert_eq!(c.builtin.as_ref().map(Builtin::kind), Some("not_null"));
        assert!(c.sql.contains("\"customer_id\" IS NULL"), "{}", c.sql);
        // Without `severity:` a check is an error-severity check.
        let c = check("-- check: c\n-- version: 1\n-- kind: not_null\n-- table: t\n-- column: x\n").unwrap();
        assert_eq!(c.severity, Severity::Error);
        let e = check("-- check: c\n-- version: 1\n-- severity: fatal\nSELECT 1").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (3, "severity `fatal`: use warn or error"));
        let e = check("-- check: c\n-- version: 1\n-- severity: error\n-- kind: row_count\n-- table: t\n").unwrap_err();
        assert!(e.message.contains("needs `fail_if:`"), "{e}");
        let e = check("-- check: c\n-- version: 1\n-- severity: error\n-- table: t\nSELECT 1").unwrap_err();
        assert_eq!(e.line, 4);
    }
}
