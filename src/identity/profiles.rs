//! Profiles as the resolver sees them: one column per comparison and per blocking rule, each
//! computed once by DataFusion from the rule's SQL, held as plain string columns.
//!
//! Columnar on purpose: a million profiles with a dozen fields stay a few hundred MB of string
//! data instead of twelve million small heap strings.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, StringArray};
use datafusion::arrow::compute::{cast, concat, nullif};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Column;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, cast as cast_expr};
use tracing::info;

use super::Settings;
use super::rules::{BlockingRule, Comparison};
use crate::error::{PersonaError, Result};

#[derive(Debug, Clone)]
pub struct Profiles {
    pub len: usize,
    /// Source system of each profile, numbered in order of first appearance (all 0 without a
    /// source column).
    pub source: Vec<u32>,
    /// Values of the comparisons that could be computed, one column each.
    pub fields: Vec<StringArray>,
    pub comparisons: Vec<Comparison>,
    /// Blocking key columns, one per usable rule.
    pub keys: Vec<StringArray>,
    pub rules: Vec<BlockingRule>,
    /// `overlaps[k][f]`: rule `k`'s key is computed from a column comparison `f` reads, so the
    /// pairs that rule finds say nothing about how often that field agrees among matches.
    pub overlaps: Vec<Vec<bool>>,
    /// Columns carried through untouched (as text), in the order asked for.
    pub carried: Vec<StringArray>,
    /// Default rules left out because the profiles lack their columns, with the reason.
    pub skipped: Vec<String>,
}

impl Profiles {
    pub fn field(&self, f: usize, row: u32) -> Option<&str> {
        let c = &self.fields[f];
        c.is_valid(row as usize).then(|| c.value(row as usize))
    }

    pub fn key(&self, k: usize, row: u32) -> Option<&str> {
        let c = &self.keys[k];
        c.is_valid(row as usize).then(|| c.value(row as usize))
    }
}

/// Computes the comparison and blocking columns of every row of `df`. `source` names the
/// column telling the source system; `carried` columns come back as text, row-aligned, and
/// the rows come back sorted by them (in the order given), so a table read in any file order
/// gives the same profiles in the same order.
pub async fn load(df: DataFrame, settings: &Settings, source: Option<&str>, carried: &[&str]) -> Result<Profiles> {
    let df = as_text(df)?;
    let mut skipped = Vec::new();
    let mut select = Vec::new();
    let mut comparisons = Vec::new();
    let mut read = Vec::new();
    for c in &settings.comparisons {
        if let Some(e) = planned(&df, &c.name, &c.sql(), settings.strict_comparisons, &mut skipped)? {
            read.push(columns_of(&e));
            select.push(e.alias(format!("c{}", comparisons.len())));
            comparisons.push(c.clone());
        }
    }
    let mut rules = Vec::new();
    let mut overlaps = Vec::new();
    for r in &settings.blocking {
        if let Some(e) = planned(&df, &r.name, &r.sql, settings.strict_blocking, &mut skipped)? {
            let keyed = columns_of(&e);
            overlaps.push(read.iter().map(|fields| !fields.is_disjoint(&keyed)).collect());
            select.push(e.alias(format!("k{}", rules.len())));
            rules.push(r.clone());
        }
    }
    if comparisons.is_empty() || rules.is_empty() {
        return Err(PersonaError::InvalidArgument(format!(
            "the profiles have none of the columns the identity rules use ({})",
            skipped.join("; ")
        )));
    }
    // The source column may also be carried: select each name once.
    let mut passed: Vec<&str> = Vec::new();
    for name in source.iter().chain(carried) {
        if !passed.contains(name) {
            passed.push(name);
            select.push(column(name).alias(format!("x_{name}")));
        }
    }
    // Sorted last, after the rules are computed: DataFusion may spread a projection over
    // several partitions, which loses the order of a sort beneath it, and the resolver needs
    // one fixed row order (its random pairs and cluster-size guard depend on positions).
    let order: Vec<_> = passed.iter().filter(|n| carried.contains(n)).map(|n| column(&format!("x_{n}")).sort(true, true)).collect();
    let selected = df.select(select)?;
    let selected = if order.is_empty() { selected } else { selected.sort(order)? };
    let batches = selected.collect().await?;
    let blocked: HashSet<String> = settings.blocked_values.iter().map(|v| v.trim().to_lowercase()).collect();
    let text_column = |name: &str, clean: bool| -> Result<StringArray> {
        let parts: Vec<ArrayRef> = batches.iter().map(|b| cast(b.column_by_name(name).expect("selected"), &DataType::Utf8)).collect::<std::result::Result<_, _>>()?;
        let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        let joined = if refs.is_empty() { Arc::new(StringArray::from(Vec::<Option<&str>>::new())) as ArrayRef } else { concat(&refs)? };
        let strings = joined.as_string::<i32>().clone();
        Ok(if clean { without_blocked(&strings, &blocked)? } else { strings })
    };
    let fields = (0..comparisons.len()).map(|i| text_column(&format!("c{i}"), true)).collect::<Result<Vec<_>>>()?;
    let keys = (0..rules.len()).map(|i| text_column(&format!("k{i}"), true)).collect::<Result<Vec<_>>>()?;
    let carried = carried.iter().map(|n| text_column(&format!("x_{n}"), false)).collect::<Result<Vec<_>>>()?;
    let len = fields[0].len();
    let source = match source {
        Some(name) => number_sources(&text_column(&format!("x_{name}"), false)?),
        None => vec![0; len],
    };
    for s in &skipped {
        info!("identity rule skipped: {s}");
    }
    Ok(Profiles { len, source, fields, comparisons, keys, rules, overlaps, carried, skipped })
}

/// Plans one rule's SQL against the profiles. A user's rule that does not plan is an error; a
/// default rule is skipped (the profiles simply lack that column).
fn planned(df: &DataFrame, name: &str, sql: &str, strict: bool, skipped: &mut Vec<String>) -> Result<Option<Expr>> {
    let attempt = df.parse_sql_expr(sql).and_then(|e| df.clone().select(vec![e.clone().alias("probe")]).map(|_| e));
    match attempt {
        Ok(e) => Ok(Some(e)),
        Err(e) if strict => Err(PersonaError::InvalidArgument(format!(
            "identity rule `{name}` (`{sql}`) does not apply to the profiles: {}",
            e.strip_backtrace()
        ))),
        Err(e) => {
            skipped.push(format!("`{name}`: {}", first_line(&e.strip_backtrace())));
            Ok(None)
        }
    }
}

/// The profile columns an expression reads.
fn columns_of(e: &Expr) -> HashSet<String> {
    e.column_refs().into_iter().map(|c| c.name.clone()).collect()
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

fn column(name: &str) -> Expr {
    // `Column::from_name` keeps the name as written: `col("Email")` would fold it to lower case.
    Expr::Column(Column::from_name(name))
}

/// Every scalar column as text, so rules compare `19750214` whether it was stored as a string,
/// a number or a date; nested columns stay as they are.
fn as_text(df: DataFrame) -> Result<DataFrame> {
    let exprs: Vec<Expr> = df
        .schema()
        .fields()
        .iter()
        .map(|f| {
            let c = column(f.name());
            if f.data_type().is_nested() || *f.data_type() == DataType::Utf8 {
                c
            } else {
                cast_expr(c, DataType::Utf8).alias(f.name())
            }
        })
        .collect();
    Ok(df.select(exprs)?)
}

/// NULL for empty values, values made only of zeros, and the configured placeholders.
fn without_blocked(values: &StringArray, blocked: &HashSet<String>) -> Result<StringArray> {
    let longest = blocked.iter().map(String::len).max().unwrap_or(0);
    let mask: BooleanArray = values
        .iter()
        .map(|v| {
            v.map(|v| {
                let t = v.trim();
                t.is_empty() || t.chars().all(|c| c == '0') || (t.len() <= longest && blocked.contains(&t.to_lowercase()))
            })
        })
        .collect();
    Ok(nullif(values, &mask)?.as_string::<i32>().clone())
}

fn number_sources(names: &StringArray) -> Vec<u32> {
    let mut seen: HashMap<&str, u32> = HashMap::new();
    names
        .iter()
        .map(|n| {
            let next = seen.len() as u32;
            *seen.entry(n.unwrap_or_default()).or_insert(next)
        })
        .collect()
}
