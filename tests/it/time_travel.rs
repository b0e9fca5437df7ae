//! Reading the past over Flight SQL: `VERSION AS OF`, `TIMESTAMP AS OF`, `table_changes(...)`,
//! on tables persona loads and on the golden `cdf-table` written by Spark; and tables created
//! after the server started.

use deltalake::DeltaTable;
use persona::config::{TableConfig, location_url};
use tonic::Code;

use crate::fixture::{TestServer, config_in, load, row_strings, scalar, shared_data};

fn write_csv(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn versions_timestamps_and_changes_of_a_loaded_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    let v0 = write_csv(dir.path(), "v0.csv", "id,customer_id,amount\n1,c1,10\n2,c2,20\n3,c3,30\n");
    load(&config, "events", &[&v0]).await;
    let server = TestServer::over(&config).await;
    assert_eq!(scalar(&server.query("SELECT count(*) FROM events").await), "3");
    let v1 = write_csv(dir.path(), "v1.csv", "id,customer_id,amount\n4,c4,40\n5,c2,50\n");
    load(&config, "events", &[&v1]).await;

    // Another writer deletes c2's rows and updates one amount: versions 2 and 3.
    let url = persona::lakehouse::resolve(&config, "events").unwrap().table.url;
    let table = DeltaTable::try_from_url(url.clone()).await.unwrap();
    let (table, _) = table.delete().with_predicate("customer_id = 'c2'").await.unwrap();
    let (table, _) = table.update().with_predicate("id = 1").with_update("amount", "11").await.unwrap();
    assert_eq!(table.version(), Some(3));

    for (version, rows) in [(0, "3"), (1, "5"), (2, "3"), (3, "3")] {
        let sql = format!("SELECT count(*) FROM events VERSION AS OF {version}");
        assert_eq!(scalar(&server.query(&sql).await), rows, "{sql}");
    }
    assert_eq!(scalar(&server.query("SELECT sum(amount) FROM events").await), "81");
    assert_eq!(scalar(&server.query("SELECT sum(e.amount) FROM public.events VERSION AS OF 1 AS e").await), "150");
    // Two versions of one table side by side.
    assert_eq!(
        row_strings(&server.query("SELECT o.id, o.amount, n.amount FROM events VERSION AS OF 0 o JOIN events n ON o.id = n.id ORDER BY o.id").await),
        ["1|10|11", "3|30|30"]
    );

    // TIMESTAMP AS OF: the newest version committed at or before that time.
    let commit_ms = table.snapshot().unwrap().version_timestamp(1).expect("version 1's time");
    let t1 = chrono::DateTime::from_timestamp_millis(commit_ms).unwrap();
    let sql = format!("SELECT count(*) FROM events TIMESTAMP AS OF '{}'", t1.to_rfc3339());
    assert_eq!(scalar(&server.query(&sql).await), "5", "{sql}");

    // A version that does not exist names the table and the range.
    let status = server.status_of("SELECT * FROM events VERSION AS OF 9").await;
    assert_eq!(status.code(), Code::NotFound, "{status}");
    assert!(status.message().contains("events") && status.message().contains("0 to 3"), "{status}");
    let status = server.status_of("SELECT * FROM events TIMESTAMP AS OF '2001-01-01'").await;
    assert_eq!(status.code(), Code::NotFound, "{status}");
    assert!(status.message().contains("first commit"), "{status}");
    let status = server.status_of("SELECT * FROM events VERSION AS OF 'x'").await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");

    // The change feed between versions: exactly the rows each commit changed.
    assert_eq!(
        row_strings(&server.query("SELECT _change_type, id, customer_id, amount, _commit_version FROM table_changes('events', 2, 3) ORDER BY _commit_version, _change_type, id").await),
        ["delete|2|c2|20|2", "delete|5|c2|50|2", "update_postimage|1|c1|11|3", "update_preimage|1|c1|10|3"]
    );
    assert_eq!(
        row_strings(&server.query("SELECT _change_type, count(*) FROM table_changes('events', 0) GROUP BY 1 ORDER BY 1").await),
        ["delete|2", "insert|5", "update_postimage|1", "update_preimage|1"]
    );
    let status = server.status_of("SELECT * FROM table_changes('events', 2, 7)").await;
    assert_eq!(status.code(), Code::NotFound, "{status}");
    assert!(status.message().contains("0 to 3"), "{status}");
    let status = server.status_of("SELECT * FROM table_changes('nothing', 0)").await;
    assert_eq!(status.code(), Code::NotFound, "{status}");
}

#[tokio::test]
async fn golden_cdf_table_written_by_spark() {
    let location = shared_data().join("delta-golden/cdf-table/delta");
    let url = location_url(&location.to_string_lossy(), std::path::Path::new("")).unwrap();
    let server = TestServer::start(&[TableConfig { name: "cdf".into(), url, storage_options: Default::default() }]).await;
    // MANIFEST.md: rows at v0..v3 are 10, 10, 10, 9; the feed from v0 has 23 rows.
    for (version, rows) in [(0, "10"), (1, "10"), (2, "10"), (3, "9")] {
        assert_eq!(scalar(&server.query(&format!("SELECT count(*) FROM cdf VERSION AS OF {version}")).await), rows);
    }
    assert_eq!(
        row_strings(&server.query("SELECT _change_type, count(*) FROM table_changes('cdf', 0) GROUP BY 1 ORDER BY 1").await),
        ["delete|1", "insert|10", "update_postimage|6", "update_preimage|6"]
    );
    assert_eq!(
        row_strings(&server.query("SELECT id, name, _commit_version FROM table_changes('cdf', 3) WHERE _change_type = 'delete'").await),
        ["7|Dennis|3"]
    );
    assert_eq!(
        scalar(&server.query("SELECT CAST(max(_commit_timestamp) AS VARCHAR) FROM table_changes('cdf', 0, 0)").await),
        "2023-12-22T17:10:18.828"
    );
}

#[tokio::test]
async fn a_table_without_change_feed_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain");
    std::fs::create_dir_all(&path).unwrap();
    let url = location_url(&path.to_string_lossy(), std::path::Path::new("")).unwrap();
    let table = DeltaTable::try_from_url(url.clone()).await.unwrap();
    let schema = std::sync::Arc::new(datafusion::arrow::datatypes::Schema::new(vec![datafusion::arrow::datatypes::Field::new(
        "id",
        datafusion::arrow::datatypes::DataType::Int64,
        true,
    )]));
    let batch = datafusion::arrow::array::RecordBatch::try_new(schema, vec![std::sync::Arc::new(datafusion::arrow::array::Int64Array::from(vec![1]))]).unwrap();
    table.write(vec![batch]).await.unwrap();
    let server = TestServer::start(&[TableConfig { name: "plain".into(), url, storage_options: Default::default() }]).await;
    let status = server.status_of("SELECT * FROM table_changes('plain', 0)").await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(status.message().contains("delta.enableChangeDataFeed"), "{status}");
}

#[tokio::test]
async fn tables_loaded_after_start_up_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    let server = TestServer::over(&config).await;
    let status = server.status_of("SELECT * FROM newcomers").await;
    assert_eq!(status.code(), Code::NotFound);
    let file = write_csv(dir.path(), "n.csv", "id,name\n1,a\n2,b\n");
    load(&config, "newcomers", &[&file]).await;
    assert_eq!(scalar(&server.query("SELECT count(*) FROM newcomers").await), "2");
    let tables = row_strings(&server.query("SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = 'persona' AND table_schema <> 'information_schema' ORDER BY 1, 2").await);
    assert_eq!(tables, ["persona|load_watermarks", "public|newcomers"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_tables_record_their_changes() {
    use deltalake::table::config::TablePropertiesExt;
    let dir = tempfile::tempdir().unwrap();
    let tables = persona::embedded::materialize(dir.path()).await.unwrap();
    let profiles = tables.iter().find(|t| t.name == "profiles").unwrap().clone();
    let events = tables.iter().find(|t| t.name == "events").unwrap().clone();
    for t in [&profiles, &events] {
        let opened = deltalake::open_table(t.url.clone()).await.unwrap();
        assert!(opened.snapshot().unwrap().table_config().enable_change_data_feed(), "{}", t.name);
    }
    // Delete three web-shop profiles with another writer; count them first.
    let doomed = ["12346", "12347", "12348"];
    let server = TestServer::start(&tables).await;
    let list = doomed.map(|d| format!("'{d}'")).join(", ");
    let expected = scalar(&server.query(&format!("SELECT count(*) FROM profiles WHERE source = 'webshop' AND source_customer_id IN ({list})")).await);
    assert_eq!(expected, "3");
    let table = deltalake::open_table(profiles.url.clone()).await.unwrap();
    table.delete().with_predicate(format!("source = 'webshop' AND source_customer_id IN ({list})")).await.unwrap();

    // The README's example: the rows each commit changed, with the change's kind and version.
    let changes = server
        .query("SELECT _change_type, _commit_version, source_customer_id FROM table_changes('profiles', 1) ORDER BY source_customer_id")
        .await;
    assert_eq!(row_strings(&changes), doomed.map(|d| format!("delete|1|{d}")));
    // Version 0 is the whole table as inserts: 5,000 web-shop and 5,000 point-of-sale profiles.
    let inserted = server.query("SELECT _change_type, count(*) FROM table_changes('profiles', 0, 0) GROUP BY 1").await;
    assert_eq!(row_strings(&inserted), ["insert|10000"]);
}
