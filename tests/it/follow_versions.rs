//! A table another writer appends to is seen by the next query, without a restart.

use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use deltalake::DeltaTable;
use persona::config::{TableConfig, location_url};

use crate::fixture::{TestServer, scalar};

fn batch(ids: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("name", DataType::Utf8, true)]));
    let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(ids.to_vec())), Arc::new(StringArray::from(names))]).unwrap()
}

/// Writes with a `DeltaTable` of its own, as a separate process would.
async fn append(url: &url::Url, ids: &[i64]) {
    let table = DeltaTable::try_from_url(url.clone()).await.unwrap();
    table.write(vec![batch(ids)]).await.unwrap();
}

#[tokio::test]
async fn appended_rows_are_visible_to_the_next_query() {
    let dir = tempfile::tempdir().unwrap();
    let url = location_url(&dir.path().join("t").to_string_lossy(), std::path::Path::new("")).unwrap();
    std::fs::create_dir_all(dir.path().join("t")).unwrap();
    append(&url, &[1, 2, 3]).await;
    let tables = vec![TableConfig { name: "t".into(), url: url.clone(), storage_options: Default::default() }];
    let server = TestServer::start(&tables).await;
    assert_eq!(scalar(&server.query("SELECT count(*) FROM t").await), "3");
    append(&url, &[4, 5]).await;
    assert_eq!(scalar(&server.query("SELECT count(*) FROM t").await), "5");
    assert_eq!(scalar(&server.query("SELECT sum(id) FROM t").await), "15");
    append(&url, &[6]).await;
    append(&url, &[7]).await;
    assert_eq!(scalar(&server.query("SELECT max(id) FROM t").await), "7");
}

#[tokio::test]
async fn a_missing_table_stops_start_up_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let url = location_url(&dir.path().join("nothing_here").to_string_lossy(), std::path::Path::new("")).unwrap();
    let tables = vec![TableConfig { name: "ghost".into(), url, storage_options: Default::default() }];
    let err = persona::catalog::build(&tables, &[]).await.unwrap_err().to_string();
    assert!(err.contains("ghost") && err.contains("nothing_here"), "{err}");
}
