//! Column types: what a text column holds (inference for new tables and new columns), which
//! types Delta stores, and whether an input's column fits the table's.

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::error::{PersonaError, Result};

/// The timestamp type persona writes: microseconds, UTC (Delta's `timestamp`).
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// What the non-empty values of a text column seen so far allow it to be.
#[derive(Debug, Clone, Copy)]
pub struct Inferred {
    seen: bool,
    boolean: bool,
    integer: bool,
    float: bool,
    date: bool,
    timestamp: bool,
}

impl Default for Inferred {
    fn default() -> Self {
        Self { seen: false, boolean: true, integer: true, float: true, date: true, timestamp: true }
    }
}

impl Inferred {
    /// Narrows the candidates by one value (empty values say nothing: they load as NULL).
    pub fn add(&mut self, value: &str) {
        let v = value.trim();
        if v.is_empty() {
            return;
        }
        self.seen = true;
        if self.boolean {
            self.boolean = v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false");
        }
        if self.integer {
            self.integer = is_integer(v);
        }
        if self.float {
            self.float = is_float(v);
        }
        let date = v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok();
        self.date &= date;
        // A date alone reads as midnight, so dates and times mix into a timestamp column.
        if self.timestamp {
            self.timestamp = date || is_timestamp(v);
        }
    }

    /// The narrowest type every value seen fits; text when nothing narrower does.
    pub fn data_type(&self) -> DataType {
        match *self {
            Inferred { seen: false, .. } => DataType::Utf8,
            Inferred { boolean: true, .. } => DataType::Boolean,
            Inferred { integer: true, .. } => DataType::Int64,
            Inferred { float: true, .. } => DataType::Float64,
            Inferred { date: true, .. } => DataType::Date32,
            Inferred { timestamp: true, .. } => timestamp_type(),
            _ => DataType::Utf8,
        }
    }
}

/// Digits with an optional sign that fit 64 bits. A leading zero (`02134`, a postcode) keeps
/// the column text, so no zero is lost.
fn is_integer(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.len() == 1 || !digits.starts_with('0'))
        && v.parse::<i64>().is_ok()
}

fn is_float(v: &str) -> bool {
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    // `inf`, `NaN` and `1e5` parse as f64 but are rarely meant as numbers in a CSV file.
    digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().any(|b| b.is_ascii_digit())
        && !(digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0."))
        && v.parse::<f64>().is_ok()
}

fn is_timestamp(v: &str) -> bool {
    v.len() >= 16
        && v.as_bytes()[4] == b'-'
        && matches!(v.as_bytes()[10], b' ' | b'T')
        && crate::catalog::versions::parse_timestamp(v).is_ok()
}

/// The type a column of this Arrow type is stored as in a Delta table persona creates: Delta
/// has no unsigned integers, views or dictionaries, and persona keeps timestamps in UTC.
pub fn delta_type(t: &DataType) -> DataType {
    match t {
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::Dictionary(_, value) => delta_type(value),
        DataType::Timestamp(_, _) => timestamp_type(),
        DataType::Date64 => DataType::Date32,
        DataType::Float16 => DataType::Float32,
        other => other.clone(),
    }
}

/// A schema as persona stores it in a new table.
pub fn delta_schema(schema: &Schema) -> Schema {
    Schema::new(
        schema.fields().iter().map(|f| Field::new(f.name(), delta_type(f.data_type()), true)).collect::<Vec<_>>(),
    )
}

/// True when every value of `from` converts to `to` without loss of meaning.
pub fn fits(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to {
        return true;
    }
    match (from, to) {
        (Dictionary(_, value), _) => fits(value, to),
        (Int8 | Int16 | UInt8, Int16 | Int32 | Int64) => true,
        (Int32 | UInt16, Int32 | Int64) => true,
        (UInt32, Int64) => true,
        (Int8 | Int16 | Int32 | UInt8 | UInt16, Float64) => true,
        (Float16 | Float32, Float32 | Float64) => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        (Timestamp(_, _), Timestamp(_, _)) => true,
        (Date64, Date32) | (Date32, Date64) => true,
        (Null, _) => true,
        _ => false,
    }
}

/// Checks an input's columns against the table's: a column the table lacks is an error unless
/// new columns are allowed, a column whose type does not fit is always one. Both name the column.
pub fn check(table: &Schema, input: &Schema, allow_new_columns: bool, what: &str) -> Result<()> {
    for field in input.fields() {
        match table.field_with_name(field.name()) {
            Ok(existing) if !fits(field.data_type(), existing.data_type()) => {
                return Err(PersonaError::SchemaMismatch(format!(
                    "{what}: column `{}` is {} but the table has it as {}",
                    field.name(),
                    field.data_type(),
                    existing.data_type()
                )));
            }
            Ok(_) => {}
            Err(_) if allow_new_columns => {}
            Err(_) => {
                return Err(PersonaError::SchemaMismatch(format!(
                    "{what}: column `{}` ({}) is not in the table (its columns: {}); `persona load --allow-new-columns` adds new columns",
                    field.name(),
                    field.data_type(),
                    table.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    for field in table.fields() {
        if !field.is_nullable() && input.field_with_name(field.name()).is_err() {
            return Err(PersonaError::SchemaMismatch(format!(
                "{what}: the table's column `{}` may not be NULL and the input has no such column",
                field.name()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(values: &[&str]) -> DataType {
        let mut i = Inferred::default();
        values.iter().for_each(|v| i.add(v));
        i.data_type()
    }

    #[test]
    fn inference_picks_the_narrowest_type() {
        assert_eq!(infer(&["1", "-2", ""]), DataType::Int64);
        assert_eq!(infer(&["1", "2.55"]), DataType::Float64);
        assert_eq!(infer(&["536365", "C536379"]), DataType::Utf8);
        assert_eq!(infer(&["02134", "12345"]), DataType::Utf8, "leading zeros stay text");
        assert_eq!(infer(&["true", "FALSE"]), DataType::Boolean);
        assert_eq!(infer(&["2010-12-01"]), DataType::Date32);
        assert_eq!(infer(&["2010-12-01 08:26:00", "2010-12-01"]), timestamp_type());
        assert_eq!(infer(&["", ""]), DataType::Utf8);
        assert_eq!(infer(&["nan", "1"]), DataType::Utf8);
    }

    #[test]
    fn mismatches_name_the_column_and_both_types() {
        let table = Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("name", DataType::Utf8, true)]);
        let input = Schema::new(vec![Field::new("id", DataType::Utf8, true)]);
        let err = check(&table, &input, false, "f.parquet").unwrap_err().to_string();
        assert!(err.contains("`id` is Utf8") && err.contains("Int64"), "{err}");
        let input = Schema::new(vec![Field::new("email", DataType::Utf8, true)]);
        let err = check(&table, &input, false, "f.csv").unwrap_err().to_string();
        assert!(err.contains("`email`") && err.contains("--allow-new-columns"), "{err}");
        assert!(check(&table, &input, true, "f.csv").is_ok());
        let input = Schema::new(vec![Field::new("id", DataType::Int32, true)]);
        assert!(check(&table, &input, false, "f.parquet").is_ok(), "int32 widens to int64");
    }
}
