//! Errors carry the right gRPC code and message; network clients cannot write, change
//! settings or read server files, and a refused statement leaves nothing behind.

use tonic::Code;

use crate::fixture::TestServer;

#[tokio::test]
async fn bad_sql_is_invalid_argument() {
    let server = TestServer::embedded().await;
    let status = server.status_of("SELEC count(*) FROM events").await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("SELEC"), "{}", status.message());
    let status = server.status_of("SELECT no_such_column FROM events").await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("no_such_column"), "{}", status.message());
    let status = server.status_of("SELECT 1; SELECT 2").await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn unknown_table_is_not_found_and_named() {
    let server = TestServer::embedded().await;
    let status = server.status_of("SELECT * FROM orders_2031").await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains("orders_2031"), "{}", status.message());
    let status = server.status_of("SELECT * FROM persona.nowhere.events").await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test]
async fn writes_settings_and_file_reads_are_refused_without_side_effects() {
    let server = TestServer::embedded().await;
    let scratch = tempfile::tempdir().unwrap();
    let external = scratch.path().join("ext");
    let copied = scratch.path().join("copy.parquet");
    let attempts = [
        format!("CREATE EXTERNAL TABLE leak STORED AS PARQUET LOCATION '{}'", external.display()),
        format!("COPY (SELECT * FROM events LIMIT 5) TO '{}' STORED AS PARQUET", copied.display()),
        format!("COPY events TO '{}'", copied.display()),
        "DROP TABLE events".to_string(),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "CREATE VIEW v AS SELECT * FROM events".to_string(),
        "INSERT INTO events (customer_id) VALUES ('x')".to_string(),
        "DELETE FROM events".to_string(),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "RESET datafusion.execution.batch_size".to_string(),
        "SELECT * FROM '/etc/hostname'".to_string(),
        "SELECT * FROM 'data/online_retail.parquet'".to_string(),
        "EXPLAIN COPY (SELECT 1) TO '/tmp/x.csv'".to_string(),
    ];
    for sql in &attempts {
        let status = server.status_of(sql).await;
        assert_eq!(status.code(), Code::PermissionDenied, "{sql}: {status:?}");
        assert!(status.message().contains("not allowed"), "{sql}: {}", status.message());
    }
    assert!(!external.exists() && !copied.exists(), "a refused statement wrote a file");
    // `SELECT ... INTO` is a query that creates a table: the planner check stops it.
    let status = server.status_of("SELECT customer_id INTO stolen FROM events").await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // The catalog is unchanged and the setting kept its value.
    assert_eq!(crate::fixture::scalar(&server.query("SELECT count(*) FROM events").await), "1044847");
    let batch_size = server
        .query("SELECT value FROM information_schema.df_settings WHERE name = 'datafusion.execution.batch_size'")
        .await;
    assert_eq!(crate::fixture::scalar(&batch_size), "8192");
    let tables = server.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1").await;
    assert_eq!(crate::fixture::row_strings(&tables), vec!["events", "profiles"]);
}

#[tokio::test]
async fn refused_update_and_ingest_commands_say_why() {
    let server = TestServer::embedded().await;
    let mut client = server.client().await;
    let err = client.execute_update("DELETE FROM events".into(), None).await.unwrap_err();
    assert!(err.to_string().contains("network clients are read-only"), "{err}");
}

#[tokio::test]
async fn read_only_still_allows_every_kind_of_query() {
    let server = TestServer::embedded().await;
    let cte = "WITH c AS (SELECT customer_id FROM events WHERE country = 'Iceland') SELECT count(DISTINCT customer_id) FROM c";
    // Iceland has one customer in Online Retail (12347).
    assert_eq!(crate::fixture::scalar(&server.query(cte).await), "1");
    assert_eq!(crate::fixture::scalar(&server.query("SELECT sum(value) FROM generate_series(1, 4)").await), "10");
    assert!(crate::fixture::row_count(&server.query("EXPLAIN ANALYZE SELECT count(*) FROM profiles").await) > 0);
    assert!(crate::fixture::row_count(&server.query("SHOW ALL").await) > 10);
    assert!(crate::fixture::row_count(&server.query("SHOW COLUMNS FROM events").await) >= 12);
}
