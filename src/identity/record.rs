//! Person records as the resolver sees them: every identifying field normalized once, up front.

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use persona_udfs::kernels;

use crate::error::Result;

/// The identifying fields, in comparison order. A source column may be missing or NULL.
pub const FIELDS: [&str; 11] = [
    "given_name", "surname", "street_number", "address_1", "address_2", "suburb", "postcode",
    "state", "date_of_birth", "soc_sec_id", "email",
];

#[derive(Debug, Clone, Default)]
pub struct Record {
    pub source: String,
    /// Normalized values of [`FIELDS`], `None` when missing.
    pub fields: [Option<String>; FIELDS.len()],
}

impl Record {
    pub fn get(&self, field: Field) -> Option<&str> {
        self.fields[field as usize].as_deref()
    }
}

/// Index into [`FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    GivenName,
    Surname,
    StreetNumber,
    Address1,
    Address2,
    Suburb,
    Postcode,
    State,
    DateOfBirth,
    SocSecId,
    Email,
}

/// Reads records from batches; `source` names the column telling the source system (all
/// records share one source when it is absent).
pub fn from_batches(batches: &[RecordBatch], source_column: Option<&str>) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    for batch in batches {
        let column = |name: &str| -> Result<Option<std::sync::Arc<dyn Array>>> {
            match batch.column_by_name(name) {
                Some(c) => Ok(Some(cast(c, &DataType::Utf8)?)),
                None => Ok(None),
            }
        };
        let columns: Vec<_> = FIELDS.iter().map(|f| column(f)).collect::<Result<_>>()?;
        let source = source_column.map(column).transpose()?.flatten();
        for row in 0..batch.num_rows() {
            let mut record = Record {
                source: source.as_ref().map_or(String::new(), |c| text(c.as_ref(), row).unwrap_or_default()),
                ..Default::default()
            };
            for (i, col) in columns.iter().enumerate() {
                let raw = col.as_ref().and_then(|c| text(c.as_ref(), row));
                record.fields[i] = raw.and_then(|v| normalize(FIELDS[i], &v));
            }
            out.push(record);
        }
    }
    Ok(out)
}

fn text(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) { None } else { Some(array.as_string::<i32>().value(row).to_string()) }
}

/// Names through `normalize_name`, e-mails through `normalize_email`, everything else trimmed
/// and lower-cased; empty values count as missing.
fn normalize(field: &str, value: &str) -> Option<String> {
    let normalized = match field {
        "given_name" | "surname" | "address_1" | "address_2" | "suburb" => kernels::normalize_name(value)?,
        "email" => kernels::normalize_email(value)?,
        _ => value.trim().to_lowercase(),
    };
    (!normalized.is_empty()).then_some(normalized)
}
