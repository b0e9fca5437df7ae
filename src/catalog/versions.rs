//! Reading a table as it was: `events VERSION AS OF 3` and `events TIMESTAMP AS OF '...'`.
//!
//! `query.rs` rewrites the clause into an internal table name (`events@v3`,
//! `events@2026-01-01T00:00:00Z`) before DataFusion plans the statement, because DataFusion's
//! planner ignores a parsed table version and its default dialect does not parse one. The schema
//! provider resolves such a name here: the followed table's log, loaded at that version.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::catalog::TableProvider;
use deltalake::DeltaTable;
use futures::TryStreamExt;

use crate::error::{PersonaError, Result};
use datafusion::sql::sqlparser::dialect::Dialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer, Word};

/// Separates a table name from its version in internal names.
pub const MARK: char = '@';

/// Which state of a table a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Version(u64),
    Timestamp(DateTime<Utc>),
}

impl At {
    /// The internal table name for `table` at this point.
    pub fn internal_name(&self, table: &str) -> String {
        match self {
            At::Version(v) => format!("{table}{MARK}v{v}"),
            At::Timestamp(t) => format!("{table}{MARK}{}", t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        }
    }
}

/// Splits an internal name into the table and the point in its history; `None` for a plain name.
pub fn split(name: &str) -> Option<(&str, Result<At>)> {
    let (table, spec) = name.split_once(MARK)?;
    let at = match spec.strip_prefix('v') {
        Some(v) => v
            .parse::<u64>()
            .map(At::Version)
            .map_err(|_| PersonaError::InvalidArgument(format!("`{spec}` is not a table version"))),
        None => parse_timestamp(spec).map(At::Timestamp),
    };
    Some((table, at))
}

/// Parses the operand of `TIMESTAMP AS OF`: RFC 3339 (`2026-01-01T00:00:00Z`,
/// `2026-01-01 00:00:00+01:00`), or a date and time without a zone, or a date alone, both read
/// as UTC like every zone-less timestamp in persona.
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(PersonaError::InvalidArgument(format!(
        "TIMESTAMP AS OF '{text}': expected a timestamp like '2026-01-01T00:00:00Z' or '2026-01-01 12:00:00' (UTC)"
    )))
}

/// Rewrites `t VERSION AS OF 3` and `t TIMESTAMP AS OF '2026-01-01T00:00:00Z'` into the
/// internal table names `"t@v3"` / `"t@2026-01-01T00:00:00Z"`; `None` when the SQL has no such
/// clause. Works on the SQL's tokens (strings and comments are left alone) so every dialect
/// accepts the result; `normalize` lower-cases an unquoted table name as DataFusion does.
pub fn rewrite_sql(sql: &str, dialect: &dyn Dialect, normalize: bool) -> Result<Option<String>> {
    let upper = sql.to_ascii_uppercase();
    if !upper.contains("OF") || !(upper.contains("VERSION") || upper.contains("TIMESTAMP")) {
        return Ok(None);
    }
    let mut tokens = Tokenizer::new(dialect, sql)
        .with_unescape(false)
        .tokenize()
        .map_err(|e| PersonaError::InvalidArgument(format!("SQL error: {e}")))?;
    let significant: Vec<usize> = (0..tokens.len()).filter(|&i| !matches!(tokens[i], Token::Whitespace(_))).collect();
    let keyword = |i: usize, k: Keyword| matches!(&tokens[i], Token::Word(w) if w.keyword == k && w.quote_style.is_none());
    let mut edits: Vec<(usize, usize, usize, At)> = Vec::new();
    for (n, &i) in significant.iter().enumerate() {
        let is_version = keyword(i, Keyword::VERSION);
        if !(is_version || keyword(i, Keyword::TIMESTAMP)) {
            continue;
        }
        let (Some(&as_), Some(&of)) = (significant.get(n + 1), significant.get(n + 2)) else { continue };
        if !keyword(as_, Keyword::AS) || !keyword(of, Keyword::OF) {
            continue;
        }
        let clause = if is_version { "VERSION AS OF" } else { "TIMESTAMP AS OF" };
        let operand = significant.get(n + 3).copied();
        let at = match (is_version, operand.map(|o| &tokens[o])) {
            (true, Some(Token::Number(v, _))) => At::Version(v.parse::<u64>().map_err(|_| {
                PersonaError::InvalidArgument(format!("VERSION AS OF {v}: a version is a whole number from 0"))
            })?),
            (false, Some(Token::SingleQuotedString(t))) => At::Timestamp(parse_timestamp(&t.replace("''", "'"))?),
            _ => {
                return Err(PersonaError::InvalidArgument(if is_version {
                    "VERSION AS OF takes a version number, e.g. SELECT * FROM events VERSION AS OF 3".into()
                } else {
                    "TIMESTAMP AS OF takes a quoted time, e.g. SELECT * FROM events TIMESTAMP AS OF '2026-01-01T00:00:00Z'".into()
                }));
            }
        };
        let table = match n.checked_sub(1).map(|p| significant[p]) {
            Some(p) if matches!(&tokens[p], Token::Word(_)) => p,
            _ => return Err(PersonaError::InvalidArgument(format!("{clause} must follow a table name"))),
        };
        edits.push((table, i, operand.expect("operand checked"), at));
    }
    if edits.is_empty() {
        return Ok(None);
    }
    let quote = if dialect.is_delimited_identifier_start('"') { '"' } else { '`' };
    let mut removed = vec![false; tokens.len()];
    for (table, from, to, at) in edits {
        let Token::Word(word) = &tokens[table] else { continue };
        let name = if word.quote_style.is_none() && normalize { word.value.to_lowercase() } else { word.value.clone() };
        tokens[table] = Token::Word(Word { value: at.internal_name(&name), quote_style: Some(quote), keyword: Keyword::NoKeyword });
        removed[table + 1..=to].iter_mut().for_each(|r| *r = true);
        debug_assert!(from > table);
    }
    Ok(Some(tokens.iter().zip(removed).filter(|(_, r)| !r).map(|(t, _)| t.to_string()).collect()))
}

/// A provider for `latest` (the followed table at its newest version) moved back to `at`.
pub async fn provider_at(name: &str, latest: &DeltaTable, at: At) -> Result<Arc<dyn TableProvider>> {
    let newest = latest.version().unwrap_or(0);
    let mut table = latest.clone();
    match at {
        At::Version(v) => {
            if v > newest {
                return Err(PersonaError::VersionNotFound(format!(
                    "table {name} has no version {v}: its versions are 0 to {newest}"
                )));
            }
            if Some(v) != latest.version() {
                table.load_version(v).await.map_err(|e| match e {
                    // Older commits can be gone after log clean-up: say which range is left.
                    deltalake::DeltaTableError::InvalidVersion(_) | deltalake::DeltaTableError::NotATable(_) => {
                        PersonaError::VersionNotFound(format!(
                            "table {name}: version {v} is no longer in the log (cleaned up); the newest version is {newest}"
                        ))
                    }
                    other => PersonaError::delta(name, other),
                })?;
            }
        }
        At::Timestamp(t) => {
            let first = first_commit_time(latest).await?;
            if first.is_some_and(|first| t < first) {
                return Err(PersonaError::VersionNotFound(format!(
                    "table {name} did not exist at {}: its first commit is at {} and its newest version is {newest}",
                    t.to_rfc3339(),
                    first.map(|f| f.to_rfc3339()).unwrap_or_default()
                )));
            }
            table.load_with_datetime(t).await.map_err(|e| PersonaError::delta(name, e))?;
        }
    }
    super::scan::provider(&table).await
}

/// The time of the oldest commit still in the log.
async fn first_commit_time(table: &DeltaTable) -> Result<Option<DateTime<Utc>>> {
    let infos: Vec<_> = table.history(None).try_collect().await.map_err(|e| PersonaError::delta("history", e))?;
    Ok(infos.iter().filter_map(|i| i.timestamp).min().and_then(DateTime::from_timestamp_millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_names_round_trip() {
        assert_eq!(At::Version(3).internal_name("events"), "events@v3");
        let (t, at) = split("events@v3").unwrap();
        assert_eq!((t, at.unwrap()), ("events", At::Version(3)));
        let ts = parse_timestamp("2026-01-01T00:00:00Z").unwrap();
        let name = At::Timestamp(ts).internal_name("events");
        assert_eq!(name, "events@2026-01-01T00:00:00Z");
        assert_eq!(split(&name).unwrap().1.unwrap(), At::Timestamp(ts));
        assert!(split("events").is_none());
    }

    #[test]
    fn clauses_become_internal_names() {
        let d = datafusion::sql::sqlparser::dialect::GenericDialect {};
        let out = rewrite_sql("SELECT count(*) FROM Events VERSION AS OF 3 e WHERE x = 'VERSION AS OF 9'", &d, true).unwrap().unwrap();
        assert_eq!(out, "SELECT count(*) FROM \"events@v3\" e WHERE x = 'VERSION AS OF 9'");
        let out = rewrite_sql("select * from public.t timestamp as of '2026-01-01 00:00:00'", &d, true).unwrap().unwrap();
        assert_eq!(out, "select * from public.\"t@2026-01-01T00:00:00Z\"");
        assert!(rewrite_sql("SELECT 'TIMESTAMP AS OF' AS version", &d, true).unwrap().is_none());
        let err = rewrite_sql("SELECT * FROM t VERSION AS OF 'x'", &d, true).unwrap_err().to_string();
        assert!(err.contains("version number"), "{err}");
    }

    #[test]
    fn timestamps_without_zone_are_utc() {
        let a = parse_timestamp("2026-01-01 12:30:00").unwrap();
        let b = parse_timestamp("2026-01-01T13:30:00+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_timestamp("2026-01-01").unwrap().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert!(parse_timestamp("yesterday").is_err());
    }
}
