//! Prepared DML: `INSERT INTO t VALUES (?, ?)` prepared once and executed with bound rows
//! (JDBC's `PreparedStatement.executeUpdate` / `executeBatch`, ADBC's `execute(sql, params)`).
//!
//! delta-rs evaluates a write's expressions itself and knows no parameters, so each bound row
//! becomes the statement with its placeholders replaced by the row's values as SQL literals
//! (DataFusion's unparser writes them, a timestamp as a typed literal), which then runs as plain
//! DML: checked while planning, one commit. `?` placeholders are numbered in order of
//! appearance, `$n` by their number; a row must bind every one.

use std::ops::ControlFlow;

use datafusion::arrow::array::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::execution::SessionState;
use datafusion::logical_expr::Expr;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, Value, VisitMut, VisitorMut};
use datafusion::sql::unparser::Unparser;

use crate::error::{PersonaError, Result};
use crate::query;

/// The highest `$n` accepted: a statement naming `$99999999` has no business binding it.
const MAX_PARAMETERS: usize = 65_535;

/// How many distinct parameters the statement has (`?` each count, `$n` the highest `n`).
pub fn parameter_count(state: &SessionState, sql: &str) -> Result<usize> {
    let mut statement = query::parse_one(state, sql)?;
    let mut numbering = Numbering::default();
    visit(&mut statement, &mut numbering);
    if let Some(bad) = numbering.unusable {
        return Err(PersonaError::InvalidArgument(format!(
            "parameter `{bad}`: use `?` or `$1` to `${MAX_PARAMETERS}`"
        )));
    }
    Ok(numbering.count)
}

/// The statement with every placeholder replaced by its value in `row`.
pub fn substitute(state: &SessionState, sql: &str, row: &[ScalarValue]) -> Result<String> {
    let mut statement = query::parse_one(state, sql)?;
    let expected = parameter_count(state, sql)?;
    if row.len() != expected {
        return Err(PersonaError::InvalidArgument(format!(
            "the statement has {expected} parameter(s) but {} value(s) were bound",
            row.len()
        )));
    }
    let unparser = Unparser::default();
    // The text is parsed again in the session's dialect; where that dialect reads `\'` as an
    // escaped quote (MySQL, BigQuery, ...), a backslash in a value must be doubled too, or a
    // bound value could end its string early.
    let backslashes = query::dialect(state)?.supports_string_literal_backslash_escape();
    let literals = row
        .iter()
        .map(|v| {
            let mut literal = unparser.expr_to_sql(&Expr::Literal(v.clone(), None))?;
            if backslashes {
                let _ = literal.visit(&mut DoubleBackslashes);
            }
            Ok(literal)
        })
        .collect::<Result<Vec<SqlExpr>>>()?;
    let mut replacing = Replacing { numbering: Numbering::default(), literals };
    visit(&mut statement, &mut replacing);
    Ok(statement.to_string())
}

/// Each row of the bound batches as values, in column order.
pub fn rows(batches: &[RecordBatch]) -> Result<Vec<Vec<ScalarValue>>> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            out.push(batch.columns().iter().map(|c| ScalarValue::try_from_array(c, row)).collect::<std::result::Result<_, _>>()?);
        }
    }
    Ok(out)
}

fn visit(statement: &mut DFStatement, visitor: &mut impl VisitorMut<Break = ()>) {
    if let DFStatement::Statement(s) = statement {
        let _ = s.visit(visitor);
    }
}

/// Gives each placeholder its parameter index (0-based), in order of appearance.
#[derive(Default)]
struct Numbering {
    count: usize,
    question_marks: usize,
    /// A placeholder that names no usable parameter (`$0`, `$99999999`, `:name`).
    unusable: Option<String>,
}

impl Numbering {
    fn index(&mut self, placeholder: &str) -> Option<usize> {
        let index = if placeholder == "?" {
            self.question_marks += 1;
            Some(self.question_marks - 1)
        } else {
            placeholder.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()).filter(|n| (1..=MAX_PARAMETERS).contains(n)).map(|n| n - 1)
        };
        match index {
            Some(i) => self.count = self.count.max(i + 1),
            None => self.unusable = Some(placeholder.to_string()),
        }
        index
    }
}

impl VisitorMut for Numbering {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if let SqlExpr::Value(v) = e
            && let Value::Placeholder(p) = &v.value
        {
            self.index(&p.clone());
        }
        ControlFlow::Continue(())
    }
}

/// Doubles the backslashes of every string literal.
struct DoubleBackslashes;

impl VisitorMut for DoubleBackslashes {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if let SqlExpr::Value(v) = e
            && let Value::SingleQuotedString(s) = &mut v.value
        {
            *s = s.replace('\\', "\\\\");
        }
        ControlFlow::Continue(())
    }
}

struct Replacing {
    numbering: Numbering,
    literals: Vec<SqlExpr>,
}

impl VisitorMut for Replacing {
    type Break = ();
    fn post_visit_expr(&mut self, e: &mut SqlExpr) -> ControlFlow<()> {
        if let SqlExpr::Value(v) = e
            && let Value::Placeholder(p) = &v.value
            && let Some(i) = self.numbering.index(&p.clone())
            && let Some(literal) = self.literals.get(i)
        {
            *e = literal.clone();
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    #[test]
    fn placeholders_become_literals() {
        let state = SessionContext::new().state();
        let sql = "INSERT INTO orders VALUES (?, ?, ?)";
        assert_eq!(parameter_count(&state, sql).unwrap(), 3);
        let row = [ScalarValue::Int64(Some(7)), ScalarValue::from("o'brien"), ScalarValue::Float64(None)];
        assert_eq!(substitute(&state, sql, &row).unwrap(), "INSERT INTO orders VALUES (7, 'o''brien', NULL)");
        let sql = "UPDATE orders SET amount = $2 WHERE order_id = $1 OR order_id = $1";
        assert_eq!(parameter_count(&state, sql).unwrap(), 2);
        let got = substitute(&state, sql, &[ScalarValue::Int64(Some(1)), ScalarValue::Float64(Some(2.5))]).unwrap();
        assert_eq!(got, "UPDATE orders SET amount = 2.5 WHERE order_id = 1 OR order_id = 1");
        let err = substitute(&state, sql, &[ScalarValue::Int64(Some(1))]).unwrap_err().to_string();
        assert!(err.contains("2 parameter(s) but 1 value(s)"), "{err}");
        let err = parameter_count(&state, "INSERT INTO t VALUES ($99999999999)").unwrap_err().to_string();
        assert!(err.contains("`$99999999999`"), "{err}");
    }

    #[test]
    fn backslashes_cannot_end_a_string_in_dialects_that_escape_with_them() {
        let mut config = datafusion::prelude::SessionConfig::new();
        config.options_mut().sql_parser.dialect = "MySQL".parse().unwrap();
        let state = SessionContext::new_with_config(config).state();
        let values = ["\\", ", (SELECT 1)) -- "];
        let sql = substitute(&state, "INSERT INTO t VALUES (?, ?)", &values.map(ScalarValue::from)).unwrap();
        // Parsed back in the same dialect, the statement holds exactly the two values.
        let DFStatement::Statement(parsed) = query::parse_one(&state, &sql).unwrap() else { panic!("{sql}") };
        let mut strings = Vec::new();
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(&*parsed, |e| {
            if let SqlExpr::Value(v) = e
                && let Value::SingleQuotedString(s) = &v.value
            {
                strings.push(s.clone());
            }
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(strings, values, "{sql}");
    }
}
