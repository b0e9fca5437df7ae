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

/// How many distinct parameters the statement has (`?` each count, `$n` the highest `n`).
pub fn parameter_count(state: &SessionState, sql: &str) -> Result<usize> {
    let mut statement = query::parse_one(state, sql)?;
    let mut numbering = Numbering::default();
    visit(&mut statement, &mut numbering);
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
    let literals = row
        .iter()
        .map(|v| unparser.expr_to_sql(&Expr::Literal(v.clone(), None)).map_err(PersonaError::from))
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
}

impl Numbering {
    fn index(&mut self, placeholder: &str) -> Option<usize> {
        let index = if placeholder == "?" {
            self.question_marks += 1;
            self.question_marks - 1
        } else {
            placeholder.strip_prefix('$')?.parse::<usize>().ok()?.checked_sub(1)?
        };
        self.count = self.count.max(index + 1);
        Some(index)
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
    }
}
