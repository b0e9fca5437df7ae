//! Answers to the Flight SQL metadata commands: catalogs, schemas, tables, table types, SQL
//! info, XDBC type info, and the (always empty) key relationships.

use std::sync::{Arc, LazyLock};

use arrow_flight::sql::metadata::{
    GetCatalogsBuilder, GetTablesBuilder, SqlInfoData, SqlInfoDataBuilder,
    XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetTables, Nullable, Searchable, SqlInfo, SqlNullOrdering,
    SqlSupportedCaseSensitivity, SqlSupportedTransaction, XdbcDataType,
};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::prelude::SessionContext;

use super::wire::wire_schema;
use crate::error::Result;

const INFORMATION_SCHEMA: &str = "information_schema";
pub const TABLE_TYPES: [&str; 2] = ["TABLE", "VIEW"];

pub fn catalogs(ctx: &SessionContext) -> Result<RecordBatch> {
    let mut b = GetCatalogsBuilder::new();
    for name in ctx.catalog_names() {
        b.append(name);
    }
    Ok(b.build()?)
}

pub fn db_schemas(ctx: &SessionContext, cmd: CommandGetDbSchemas) -> Result<RecordBatch> {
    let mut b = cmd.into_builder();
    for catalog_name in ctx.catalog_names() {
        let Some(catalog) = ctx.catalog(&catalog_name) else { continue };
        let mut schemas = catalog.schema_names();
        schemas.push(INFORMATION_SCHEMA.to_string());
        for schema in schemas {
            b.append(&catalog_name, schema);
        }
    }
    Ok(b.build()?)
}

/// Tables of every schema; `information_schema` views are listed as VIEW. With
/// `include_schema`, each table's schema is given in the types results are sent in.
pub async fn tables(ctx: &SessionContext, cmd: CommandGetTables) -> Result<RecordBatch> {
    // Without `include_schema` the builder ignores schemas: skip opening (and refreshing) tables.
    let with_schemas = cmd.include_schema;
    let no_schema = Schema::empty();
    let mut b: GetTablesBuilder = cmd.into_builder();
    let state = ctx.state();
    for catalog_name in ctx.catalog_names() {
        let Some(catalog) = ctx.catalog(&catalog_name) else { continue };
        for schema_name in catalog.schema_names() {
            let Some(schema) = catalog.schema(&schema_name) else { continue };
            for table in schema.table_names() {
                if !with_schemas {
                    b.append(&catalog_name, &schema_name, &table, "TABLE", &no_schema)?;
                    continue;
                }
                // One unreadable table (deleted folder, unreachable bucket) must not hide the
                // others from a BI tool's catalog browser; it is logged and left out.
                match schema.table(&table).await {
                    Ok(Some(provider)) => {
                        b.append(&catalog_name, &schema_name, &table, "TABLE", &wire_schema(&provider.schema()))?
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(table = %table, error = %e, "table left out of GetTables"),
                }
            }
        }
        // information_schema lives in the session, not the catalog.
        let info_ref = datafusion::common::TableReference::partial(INFORMATION_SCHEMA, "tables");
        if let Ok(info) = state.schema_for_ref(info_ref) {
            for table in info.table_names() {
                if let Some(provider) = info.table(&table).await? {
                    b.append(&catalog_name, INFORMATION_SCHEMA, &table, "VIEW", &wire_schema(&provider.schema()))?;
                }
            }
        }
    }
    Ok(b.build()?)
}

pub fn table_types() -> Result<RecordBatch> {
    let mut b = arrow_flight::sql::CommandGetTableTypes {}.into_builder();
    for t in TABLE_TYPES {
        b.append(t);
    }
    Ok(b.build()?)
}

/// What the server tells clients about itself; `read_only` when no caller can write.
pub fn sql_info(read_only: bool) -> SqlInfoData {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "persona");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    b.append(SqlInfo::FlightSqlServerReadOnly, read_only);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(SqlInfo::FlightSqlServerTransaction, SqlSupportedTransaction::None as i32);
    b.append(SqlInfo::FlightSqlServerCancel, false);
    // Bulk ingest (CommandStatementIngest) is served to callers with write access.
    b.append(SqlInfo::FlightSqlServerBulkIngestion, !read_only);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    // DataFusion folds unquoted identifiers to lower case and keeps quoted ones exactly as
    // written; the protocol has no "case-sensitive, stored as written" value, so say Unknown.
    b.append(SqlInfo::SqlIdentifierCase, SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32);
    b.append(SqlInfo::SqlQuotedIdentifierCase, SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(SqlInfo::SqlAllTablesAreSelectable, true);
    b.append(SqlInfo::SqlNullOrdering, SqlNullOrdering::SqlNullsSortedHigh as i32);
    b.append(SqlInfo::SqlSearchStringEscape, "\\");
    b.append(SqlInfo::SqlSupportsColumnAliasing, true);
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.build().expect("static SQL info is well-formed")
}

pub static XDBC_TYPES: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    let mut b = XdbcTypeInfoDataBuilder::new();
    let mut add = |name: &str, ty: XdbcDataType, size: Option<i32>, prefix: Option<&str>, radix: Option<i32>| {
        b.append(XdbcTypeInfo {
            type_name: name.into(),
            data_type: ty,
            column_size: size,
            literal_prefix: prefix.map(Into::into),
            literal_suffix: prefix.map(Into::into),
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: matches!(ty, XdbcDataType::XdbcVarchar),
            searchable: Searchable::Full,
            unsigned_attribute: radix.map(|_| false),
            fixed_prec_scale: false,
            auto_increment: Some(false),
            local_type_name: Some(name.into()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: ty,
            datetime_subcode: None,
            num_prec_radix: radix,
            interval_precision: None,
        });
    };
    add("BIGINT", XdbcDataType::XdbcBigint, Some(19), None, Some(10));
    add("BOOLEAN", XdbcDataType::XdbcBit, Some(1), None, None);
    add("TINYINT", XdbcDataType::XdbcTinyint, Some(3), None, Some(10));
    add("BYTEA", XdbcDataType::XdbcBinary, None, None, None);
    add("VARCHAR", XdbcDataType::XdbcVarchar, None, Some("'"), None);
    add("DECIMAL", XdbcDataType::XdbcDecimal, Some(38), None, Some(10));
    add("INTEGER", XdbcDataType::XdbcInteger, Some(10), None, Some(10));
    add("SMALLINT", XdbcDataType::XdbcSmallint, Some(5), None, Some(10));
    add("FLOAT", XdbcDataType::XdbcFloat, Some(7), None, Some(2));
    add("DOUBLE", XdbcDataType::XdbcDouble, Some(15), None, Some(2));
    add("DATE", XdbcDataType::XdbcDate, Some(10), Some("'"), None);
    add("TIME", XdbcDataType::XdbcTime, Some(15), Some("'"), None);
    add("TIMESTAMP", XdbcDataType::XdbcTimestamp, Some(26), Some("'"), None);
    b.build().expect("static XDBC type info is well-formed")
});

/// Schema of GetPrimaryKeys results (Flight SQL spec).
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// Schema of GetImportedKeys / GetExportedKeys / GetCrossReference results (Flight SQL spec).
pub fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}
