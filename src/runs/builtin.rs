//! Built-in check kinds, declared in a check's header instead of written as SQL:
//!
//! | kind | arguments | fails on |
//! |---|---|---|
//! | `not_null` | `table`, `column` or `columns` | rows where one of them is NULL |
//! | `unique` | `table`, `column` or `columns` | key values held by more than one row |
//! | `accepted_values` | `table`, `column`, `values` | values outside the list |
//! | `relationships` | `table`, `column`, `to: other_table.column` | values with no row in `to` |
//! | `schema` | `table`, `columns: name type, ...` | columns missing or of another type |
//! | `row_count` | `table`, `fail_if` | the row count (metric) |
//! | `freshness` | `table`, `column`, `fail_if` | hours since the newest `column` value (metric) |
//! | `missing_percent` | `table`, `column`, `fail_if` | percent of rows where `column` is NULL (metric) |
//! | `duplicate_count` | `table`, `column` or `columns`, `fail_if` | rows beyond the first per key (metric) |
//!
//! Every kind takes an optional `where:` SQL filter. Each becomes ordinary SQL, so it runs,
//! pins its inputs and records its result exactly like a hand-written check.

use super::definition::{Header, list};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Builtin {
    NotNull { table: String, columns: Vec<String>, filter: Option<String> },
    Unique { table: String, columns: Vec<String>, filter: Option<String> },
    AcceptedValues { table: String, column: String, values: Vec<String>, filter: Option<String> },
    Relationships { table: String, column: String, to_table: String, to_column: String, filter: Option<String> },
    Schema { table: String, columns: Vec<(String, String)> },
    RowCount { table: String, filter: Option<String> },
    Freshness { table: String, column: String, filter: Option<String> },
    MissingPercent { table: String, column: String, filter: Option<String> },
    DuplicateCount { table: String, columns: Vec<String>, filter: Option<String> },
}

pub const KINDS: [&str; 9] = [
    "not_null", "unique", "accepted_values", "relationships", "schema", "row_count", "freshness", "missing_percent",
    "duplicate_count",
];

/// The type families a `schema` check compares, with the spellings accepted for each.
const FAMILIES: [(&str, &[&str]); 8] = [
    ("string", &["string", "text", "varchar", "utf8"]),
    ("integer", &["integer", "int", "bigint", "smallint", "tinyint", "int8", "int16", "int32", "int64", "long"]),
    ("float", &["float", "double", "real", "float32", "float64"]),
    ("decimal", &["decimal", "numeric"]),
    ("boolean", &["boolean", "bool"]),
    ("timestamp", &["timestamp", "datetime"]),
    ("date", &["date"]),
    ("binary", &["binary", "bytea", "blob"]),
];

type Failure = (Option<usize>, String);

impl Builtin {
    pub fn from_header(kind: &str, h: &Header) -> Result<Self, Failure> {
        let need = |key: &str| -> Result<(String, usize), Failure> {
            h.get(key).map(|f| (f.value.clone(), f.line)).ok_or_else(|| (None, format!("a `{kind}` check needs `-- {key}:`")))
        };
        let table = || -> Result<String, Failure> {
            let (t, line) = need("table")?;
            identifier(&t, 2).map_err(|m| (Some(line), format!("table: {m}")))?;
            Ok(t)
        };
        let column = || -> Result<String, Failure> {
            let (c, line) = need("column")?;
            identifier(&c, 1).map_err(|m| (Some(line), format!("column: {m}")))?;
            Ok(c)
        };
        let columns = || -> Result<Vec<String>, Failure> {
            let (text, line) = match (h.get("columns"), h.get("column")) {
                (Some(f), None) | (None, Some(f)) => (f.value.clone(), f.line),
                (Some(f), Some(_)) => return Err((Some(f.line), "give `column:` or `columns:`, not both".into())),
                (None, None) => return Err((None, format!("a `{kind}` check needs `-- column:` or `-- columns:`"))),
            };
            let cols = list(&text);
            if cols.is_empty() {
                return Err((Some(line), "no columns listed".into()));
            }
            for c in &cols {
                identifier(c, 1).map_err(|m| (Some(line), format!("columns: {m}")))?;
            }
            Ok(cols)
        };
        let filter = h.get("where").map(|f| f.value.clone());
        let check_unused = |allowed: &[&str]| -> Result<(), Failure> {
            for key in ["column", "columns", "values", "to", "where"] {
                if let Some(f) = h.get(key)
                    && !allowed.contains(&key)
                {
                    return Err((Some(f.line), format!("a `{kind}` check takes no `{key}:`")));
                }
            }
            Ok(())
        };
        Ok(match kind {
            "not_null" => {
                check_unused(&["column", "columns", "where"])?;
                Builtin::NotNull { table: table()?, columns: columns()?, filter }
            }
            "unique" => {
                check_unused(&["column", "columns", "where"])?;
                Builtin::Unique { table: table()?, columns: columns()?, filter }
            }
            "accepted_values" => {
                check_unused(&["column", "values", "where"])?;
                let (text, line) = need("values")?;
                let values: Vec<String> = list(&text).into_iter().map(|v| unquote(&v)).collect();
                if values.is_empty() {
                    return Err((Some(line), "values: list at least one accepted value".into()));
                }
                Builtin::AcceptedValues { table: table()?, column: column()?, values, filter }
            }
            "relationships" => {
                check_unused(&["column", "to", "where"])?;
                let (to, line) = need("to")?;
                let (to_table, to_column) = to
                    .rsplit_once('.')
                    .ok_or_else(|| (Some(line), format!("to: `{to}` should be `table.column`")))?;
                identifier(to_table, 2).map_err(|m| (Some(line), format!("to: {m}")))?;
                identifier(to_column, 1).map_err(|m| (Some(line), format!("to: {m}")))?;
                Builtin::Relationships { table: table()?, column: column()?, to_table: to_table.into(), to_column: to_column.into(), filter }
            }
            "schema" => {
                check_unused(&["columns"])?;
                let (text, line) = need("columns")?;
                let mut cols = Vec::new();
                for entry in list(&text) {
                    let (name, ty) = entry
                        .split_once(char::is_whitespace)
                        .ok_or_else(|| (Some(line), format!("columns: `{entry}` should be `name type`")))?;
                    identifier(name, 1).map_err(|m| (Some(line), format!("columns: {m}")))?;
                    let family = family(ty.trim()).ok_or_else(|| {
                        (Some(line), format!("columns: unknown type `{}`; use one of {}", ty.trim(), FAMILIES.map(|f| f.0).join(", ")))
                    })?;
                    cols.push((name.to_string(), family.to_string()));
                }
                Builtin::Schema { table: table()?, columns: cols }
            }
            "row_count" => {
                check_unused(&["where"])?;
                Builtin::RowCount { table: table()?, filter }
            }
            "freshness" => {
                check_unused(&["column", "where"])?;
                Builtin::Freshness { table: table()?, column: column()?, filter }
            }
            "missing_percent" => {
                check_unused(&["column", "where"])?;
                Builtin::MissingPercent { table: table()?, column: column()?, filter }
            }
            "duplicate_count" => {
                check_unused(&["column", "columns", "where"])?;
                Builtin::DuplicateCount { table: table()?, columns: columns()?, filter }
            }
            other => return Err((None, format!("unknown check kind `{other}`; known kinds: {}", KINDS.join(", ")))),
        })
    }

    /// The kind's name, as declared.
    pub fn kind(&self) -> &'static str {
        match self {
            Builtin::NotNull { .. } => "not_null",
            Builtin::Unique { .. } => "unique",
            Builtin::AcceptedValues { .. } => "accepted_values",
            Builtin::Relationships { .. } => "relationships",
            Builtin::Schema { .. } => "schema",
            Builtin::RowCount { .. } => "row_count",
            Builtin::Freshness { .. } => "freshness",
            Builtin::MissingPercent { .. } => "missing_percent",
            Builtin::DuplicateCount { .. } => "duplicate_count",
        }
    }

    /// The table a `schema` check inspects: it reads information_schema, so the table it is
    /// about has to be pinned by name.
    pub fn schema_table(&self) -> Option<&str> {
        match self {
            Builtin::Schema { table, .. } => Some(table),
            _ => None,
        }
    }

    /// True for the kinds that give one number compared with `fail_if`.
    pub fn is_metric(&self) -> bool {
        matches!(self, Builtin::RowCount { .. } | Builtin::Freshness { .. } | Builtin::MissingPercent { .. } | Builtin::DuplicateCount { .. })
    }

    /// The SQL this check runs.
    pub fn sql(&self) -> String {
        let and = |filter: &Option<String>| filter.as_ref().map_or(String::new(), |f| format!(" AND ({f})"));
        let whr = |filter: &Option<String>| filter.as_ref().map_or(String::new(), |f| format!(" WHERE ({f})"));
        let cols = |c: &[String]| c.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");
        match self {
            Builtin::NotNull { table, columns, filter } => {
                let any_null = columns.iter().map(|c| format!("{} IS NULL", quote(c))).collect::<Vec<_>>().join(" OR ");
                format!("SELECT * FROM {} WHERE ({any_null}){}", quote_table(table), and(filter))
            }
            Builtin::Unique { table, columns, filter } => {
                let not_null = columns.iter().map(|c| format!("{} IS NOT NULL", quote(c))).collect::<Vec<_>>().join(" AND ");
                format!(
                    "SELECT {k}, count(*) AS occurrences FROM {t} WHERE {not_null}{f} GROUP BY {k} HAVING count(*) > 1",
                    k = cols(columns),
                    t = quote_table(table),
                    f = and(filter)
                )
            }
            Builtin::AcceptedValues { table, column, values, filter } => {
                let list = values.iter().map(|v| format!("'{}'", v.replace('\'', "''"))).collect::<Vec<_>>().join(", ");
                format!(
                    "SELECT {c} AS value, count(*) AS occurrences FROM {t} WHERE {c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({list}){f} GROUP BY {c}",
                    c = quote(column),
                    t = quote_table(table),
                    f = and(filter)
                )
            }
            Builtin::Relationships { table, column, to_table, to_column, filter } => format!(
                "SELECT c.{c} AS value, count(*) AS occurrences FROM {t} c WHERE c.{c} IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM {tt} p WHERE p.{tc} = c.{c}){f} GROUP BY c.{c}",
                c = quote(column),
                t = quote_table(table),
                tt = quote_table(to_table),
                tc = quote(to_column),
                f = and(filter)
            ),
            Builtin::Schema { table, columns } => {
                let (schema, name) = table.rsplit_once('.').unwrap_or(("public", table));
                let expected = columns
                    .iter()
                    .map(|(n, f)| format!("('{}', '{}')", n.replace('\'', "''"), f))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "WITH expected(column_name, expected_type) AS (VALUES {expected}), \
                     actual AS (SELECT column_name, {family} AS actual_type, data_type FROM information_schema.columns \
                       WHERE table_schema = '{schema}' AND table_name = '{name}') \
                     SELECT e.column_name, e.expected_type, a.actual_type, a.data_type FROM expected e \
                     LEFT JOIN actual a ON a.column_name = e.column_name \
                     WHERE a.actual_type IS NULL OR a.actual_type <> e.expected_type ORDER BY e.column_name",
                    family = FAMILY_SQL
                )
            }
            Builtin::RowCount { table, filter } => format!("SELECT count(*) AS value FROM {}{}", quote_table(table), whr(filter)),
            Builtin::Freshness { table, column, filter } => format!(
                "SELECT (date_part('epoch', now()) - date_part('epoch', max({c}))) / 3600.0 AS value FROM {t}{f}",
                c = quote(column),
                t = quote_table(table),
                f = whr(filter)
            ),
            Builtin::MissingPercent { table, column, filter } => format!(
                "SELECT CASE WHEN count(*) = 0 THEN 0.0 ELSE 100.0 * sum(CASE WHEN {c} IS NULL THEN 1 ELSE 0 END) / count(*) END AS value FROM {t}{f}",
                c = quote(column),
                t = quote_table(table),
                f = whr(filter)
            ),
            Builtin::DuplicateCount { table, columns, filter } => format!(
                "SELECT coalesce(sum(n - 1), 0) AS value FROM (SELECT count(*) AS n FROM {t}{f} GROUP BY {k})",
                t = quote_table(table),
                f = whr(filter),
                k = cols(columns)
            ),
        }
    }
}

/// information_schema's `data_type` text (Arrow's type names) to a family name.
const FAMILY_SQL: &str = "CASE \
    WHEN data_type LIKE '%Utf8%' THEN 'string' \
    WHEN data_type LIKE 'Int%' OR data_type LIKE 'UInt%' THEN 'integer' \
    WHEN data_type LIKE 'Float%' THEN 'float' \
    WHEN data_type LIKE 'Decimal%' THEN 'decimal' \
    WHEN data_type = 'Boolean' THEN 'boolean' \
    WHEN data_type LIKE 'Timestamp%' THEN 'timestamp' \
    WHEN data_type LIKE 'Date%' THEN 'date' \
    WHEN data_type LIKE '%Binary%' THEN 'binary' \
    ELSE data_type END";

fn family(spelling: &str) -> Option<&'static str> {
    let s = spelling.to_ascii_lowercase();
    FAMILIES.iter().find(|(_, names)| names.contains(&s.as_str())).map(|(f, _)| *f)
}

/// Checks a plain or (with `parts` 2) schema-qualified identifier.
fn identifier(name: &str, parts: usize) -> Result<(), String> {
    let pieces: Vec<&str> = name.split('.').collect();
    let plain = |p: &str| {
        p.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if pieces.len() > parts || !pieces.iter().all(|p| plain(p)) {
        return Err(format!("`{name}` is not a {}name", if parts > 1 { "table " } else { "column " }));
    }
    Ok(())
}

fn quote(name: &str) -> String {
    format!("\"{name}\"")
}

fn quote_table(name: &str) -> String {
    name.split('.').map(quote).collect::<Vec<_>>().join(".")
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use crate::runs::definition::{Kind, parse};
    use std::path::Path;

    fn builtin(lines: &str) -> Result<String, String> {
        let text = format!("-- check: c\n-- version: 1\n-- severity: error\n{lines}");
        parse(Path::new("c.sql"), &text, Kind::Check).map(|d| d.sql).map_err(|e| e.to_string())
    }

    #[test]
    fn kinds_become_sql() {
        assert_eq!(
            builtin("-- kind: unique\n-- table: profiles\n-- columns: source, source_customer_id\n").unwrap(),
            "SELECT \"source\", \"source_customer_id\", count(*) AS occurrences FROM \"profiles\" WHERE \"source\" IS NOT NULL AND \"source_customer_id\" IS NOT NULL GROUP BY \"source\", \"source_customer_id\" HAVING count(*) > 1"
        );
        assert_eq!(
            builtin("-- kind: accepted_values\n-- table: events\n-- column: event_type\n-- values: purchase, 'refund', adjustment\n").unwrap(),
            "SELECT \"event_type\" AS value, count(*) AS occurrences FROM \"events\" WHERE \"event_type\" IS NOT NULL AND CAST(\"event_type\" AS VARCHAR) NOT IN ('purchase', 'refund', 'adjustment') GROUP BY \"event_type\""
        );
        assert!(builtin("-- kind: relationships\n-- table: persona.identity_links\n-- column: master_customer_id\n-- to: persona.customers.master_customer_id\n-- fail_if: > 0\n")
            .unwrap_err()
            .contains("takes no `fail_if`"));
        let rel = builtin("-- kind: relationships\n-- table: persona.identity_links\n-- column: master_customer_id\n-- to: persona.customers.master_customer_id\n").unwrap();
        assert!(rel.contains("FROM \"persona\".\"identity_links\" c") && rel.contains("FROM \"persona\".\"customers\" p"), "{rel}");
        assert!(builtin("-- kind: row_count\n-- table: events\n-- fail_if: < 1\n").unwrap().starts_with("SELECT count(*) AS value FROM \"events\""));
    }

    #[test]
    fn bad_arguments_are_named() {
        assert!(builtin("-- kind: nullness\n-- table: t\n").unwrap_err().contains("unknown check kind `nullness`"));
        assert!(builtin("-- kind: not_null\n-- table: t\n").unwrap_err().contains("needs `-- column:` or `-- columns:`"));
        let e = builtin("-- kind: not_null\n-- table: t; DROP TABLE x\n-- column: a\n").unwrap_err();
        assert!(e.starts_with("c.sql:5:") && e.contains("not a table name"), "{e}");
        let e = builtin("-- kind: schema\n-- table: t\n-- columns: a string, b money\n").unwrap_err();
        assert!(e.contains("unknown type `money`"), "{e}");
        let e = builtin("-- kind: row_count\n-- table: t\n-- column: a\n-- fail_if: < 1\n").unwrap_err();
        assert!(e.contains("takes no `column:`"), "{e}");
    }
}
