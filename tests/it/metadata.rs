//! Flight SQL metadata commands, as BI tools and drivers call them.

use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetTables, CommandGetXdbcTypeInfo, SqlInfo,
};
use arrow_flight::IpcMessage;
use datafusion::arrow::array::{Array, BinaryArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Schema};

use crate::fixture::{TestServer, fetch, row_count, row_strings};

fn column_strings(batches: &[RecordBatch], name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let col = b.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"));
        for i in 0..col.len() {
            out.push(datafusion::arrow::util::display::array_value_to_string(col, i).unwrap());
        }
    }
    out
}

#[tokio::test]
async fn catalogs_and_schemas() {
    let server = TestServer::embedded().await;
    let mut client = server.client().await;
    let info = client.get_catalogs().await.unwrap();
    assert_eq!(column_strings(&fetch(&mut client, info).await, "catalog_name"), vec!["persona"]);
    let info = client.get_db_schemas(CommandGetDbSchemas { catalog: None, db_schema_filter_pattern: None }).await.unwrap();
    let mut schemas = column_strings(&fetch(&mut client, info).await, "db_schema_name");
    schemas.sort();
    assert_eq!(schemas, vec!["information_schema", "persona", "public"]);
    let info = client
        .get_db_schemas(CommandGetDbSchemas { catalog: Some("persona".into()), db_schema_filter_pattern: Some("pub%".into()) })
        .await
        .unwrap();
    assert_eq!(column_strings(&fetch(&mut client, info).await, "db_schema_name"), vec!["public"]);
}

#[tokio::test]
async fn tables_with_their_schemas() {
    let server = TestServer::embedded().await;
    let mut client = server.client().await;
    let cmd = CommandGetTables {
        catalog: Some("persona".into()),
        db_schema_filter_pattern: Some("public".into()),
        table_name_filter_pattern: None,
        table_types: vec!["TABLE".into()],
        include_schema: true,
    };
    let info = client.get_tables(cmd).await.unwrap();
    let batches = fetch(&mut client, info).await;
    assert_eq!(column_strings(&batches, "table_name"), vec!["events", "profiles"]);
    assert_eq!(column_strings(&batches, "table_type"), vec!["TABLE", "TABLE"]);
    let schemas = batches[0].column_by_name("table_schema").unwrap().as_any().downcast_ref::<BinaryArray>().unwrap().clone();
    let events: Schema = Schema::try_from(IpcMessage(schemas.value(0).to_vec().into())).unwrap();
    assert_eq!(events.field_with_name("amount").unwrap().data_type(), &DataType::Float64);
    assert_eq!(events.field_with_name("event_month").unwrap().data_type(), &DataType::Utf8);
    let profiles: Schema = Schema::try_from(IpcMessage(schemas.value(1).to_vec().into())).unwrap();
    assert_eq!(profiles.field_with_name("source").unwrap().data_type(), &DataType::Utf8);
    assert_eq!(profiles.field_with_name("consent_email").unwrap().data_type(), &DataType::Boolean);

    // Views: information_schema; a name pattern narrows the list.
    let cmd = CommandGetTables {
        catalog: None,
        db_schema_filter_pattern: None,
        table_name_filter_pattern: Some("%file%".into()),
        table_types: vec![],
        include_schema: false,
    };
    let info = client.get_tables(cmd).await.unwrap();
    let batches = fetch(&mut client, info).await;
    assert_eq!(column_strings(&batches, "table_name"), vec!["profiles"]);
    let cmd = CommandGetTables { catalog: None, db_schema_filter_pattern: Some("information_schema".into()), table_name_filter_pattern: None, table_types: vec!["VIEW".into()], include_schema: false };
    let info = client.get_tables(cmd).await.unwrap();
    let views = column_strings(&fetch(&mut client, info).await, "table_name");
    assert!(views.contains(&"tables".to_string()) && views.contains(&"columns".to_string()), "{views:?}");
}

#[tokio::test]
async fn table_types_sql_info_and_type_info() {
    let server = TestServer::embedded().await;
    let mut client = server.client().await;
    let info = client.get_table_types().await.unwrap();
    assert_eq!(column_strings(&fetch(&mut client, info).await, "table_type"), vec!["TABLE", "VIEW"]);

    let info = client.get_sql_info(vec![SqlInfo::FlightSqlServerName, SqlInfo::FlightSqlServerReadOnly]).await.unwrap();
    let batches = fetch(&mut client, info).await;
    let rows = row_strings(&batches);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("0|") && rows[0].contains("persona"), "{rows:?}");
    assert!(rows[1].starts_with("3|") && rows[1].contains("true"), "{rows:?}");

    let info = client.get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None }).await.unwrap();
    let names = column_strings(&fetch(&mut client, info).await, "type_name");
    for t in ["BIGINT", "VARCHAR", "DOUBLE", "TIMESTAMP", "BOOLEAN"] {
        assert!(names.contains(&t.to_string()), "{t} missing from {names:?}");
    }
}

#[tokio::test]
async fn key_answers_are_empty_but_well_formed() {
    let server = TestServer::embedded().await;
    let mut client = server.client().await;
    let cmd = CommandGetPrimaryKeys { catalog: Some("persona".into()), db_schema: Some("public".into()), table: "events".into() };
    let info = client.get_primary_keys(cmd).await.unwrap();
    let announced = info.clone().try_decode_schema().unwrap();
    assert_eq!(announced.field(2).name(), "table_name");
    assert_eq!(row_count(&fetch(&mut client, info).await), 0);
    let cmd = arrow_flight::sql::CommandGetImportedKeys { catalog: None, db_schema: None, table: "events".into() };
    let info = client.get_imported_keys(cmd).await.unwrap();
    assert_eq!(info.clone().try_decode_schema().unwrap().fields().len(), 13);
    assert_eq!(row_count(&fetch(&mut client, info).await), 0);
}

#[tokio::test]
async fn show_tables_works_over_flight_sql() {
    let server = TestServer::embedded().await;
    let batches = server.query("SHOW TABLES").await;
    let names = column_strings(&batches, "table_name");
    assert!(names.contains(&"events".to_string()) && names.contains(&"profiles".to_string()), "{names:?}");
}

#[tokio::test]
async fn persona_functions_are_listed_over_flight_sql() {
    let server = TestServer::embedded().await;
    let batches = server.query("SHOW FUNCTIONS LIKE '%jaro%'").await;
    let names = column_strings(&batches, "function_name");
    assert!(names.contains(&"jaro_winkler".to_string()) && names.contains(&"jaro".to_string()), "{names:?}");
    // And they run on the served data: FEBRL4's webshop/pos pair for one person.
    let score = server
        .query("SELECT round(jaro_winkler('michaela', 'micheala'), 4)")
        .await;
    // Hand calculation: 8 matching characters, 1 transposition -> jaro 0.9583, prefix 'mich' -> 0.975.
    assert_eq!(crate::fixture::scalar(&score), "0.975");
}
