//! Runs every `tests/slt/*.slt` file (sqllogictest format) against a DataFusion session with the
//! persona UDFs, planner rules and query planner, and information_schema enabled, one fresh
//! session per file.
//!
//! Values print as DataFusion's own slt runner prints them: NULL as `NULL`, the empty string as
//! `(empty)`, floats in their shortest form (`1`, `0.5`), everything else with Arrow's display
//! formatting.

use std::path::PathBuf;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

struct Session(SessionContext);

fn new_session() -> Result<Session, DataFusionError> {
    // persona's planner rules and query planner, as every persona session has them
    // (src/session.rs), so the files also pin down what they do to results.
    let builder = SessionStateBuilder::new()
        .with_config(SessionConfig::new().with_information_schema(true))
        .with_default_features();
    let state = persona::session::with_persona_planning(builder).build();
    let ctx = SessionContext::new_with_state(state);
    persona_udfs::register_all(&ctx)?;
    Ok(Session(ctx))
}

#[async_trait::async_trait]
impl AsyncDB for Session {
    type Error = DataFusionError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DataFusionError> {
        let frame = self.0.sql(sql).await?;
        let types: Vec<_> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| column_type(f.data_type()))
            .collect();
        let batches = frame.collect().await?;
        if types.is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        Ok(DBOutput::Rows {
            types,
            rows: render(&batches)?,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "persona"
    }
}

fn column_type(data_type: &DataType) -> DefaultColumnType {
    if data_type.is_integer() {
        DefaultColumnType::Integer
    } else if data_type.is_floating() || data_type.is_numeric() {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

fn render(batches: &[RecordBatch]) -> Result<Vec<Vec<String>>, DataFusionError> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let columns = batch
            .columns()
            .iter()
            .map(|column| Cell::try_new(column, &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(columns.iter().map(|cell| cell.render(row)).collect());
        }
    }
    Ok(rows)
}

/// How one column's values print.
enum Cell<'a> {
    /// Floats print with Rust's shortest round-trip form, so 1.0 is `1` and 0.5 is `0.5`.
    Float(Float64Array),
    Other(ArrayFormatter<'a>),
}

impl<'a> Cell<'a> {
    fn try_new(
        column: &'a ArrayRef,
        options: &'a FormatOptions<'a>,
    ) -> Result<Self, DataFusionError> {
        Ok(if column.data_type().is_floating() {
            Cell::Float(
                cast(column, &DataType::Float64)?
                    .as_primitive::<Float64Type>()
                    .clone(),
            )
        } else {
            Cell::Other(ArrayFormatter::try_new(column.as_ref(), options)?)
        })
    }

    fn render(&self, row: usize) -> String {
        match self {
            Cell::Float(values) if values.is_null(row) => "NULL".to_string(),
            Cell::Float(values) => values.value(row).to_string(),
            Cell::Other(formatter) => match formatter.value(row).to_string() {
                // An empty cell would vanish in the space-separated expected output.
                empty if empty.is_empty() => "(empty)".to_string(),
                value => value,
            },
        }
    }
}

#[tokio::test]
async fn slt_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .map(|entry| entry.expect("readable tests/slt entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());

    let mut failures = Vec::new();
    for file in &files {
        let mut runner = Runner::new(|| async { new_session() });
        if let Err(error) = runner.run_file_async(file).await {
            failures.push(format!("{}:\n{error}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} slt files failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
