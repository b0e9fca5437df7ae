//! The same flows against S3: a real S3-compatible server (s3s-fs, from crates.io, storing
//! objects as files) started here on 127.0.0.1:0, and persona reaching it through deltalake's
//! S3 backend (object_store) with the `storage_options` of `persona.toml`.
//!
//! `.ci/run` installs the server (`cargo install s3s-fs --features binary --debug`) and points
//! `PERSONA_S3S_FS` at it; without it this test fails and says how to install it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use persona::lakehouse::{self, upkeep};

use crate::fixture::{TestServer, config_in, csv_gz_records, load, retail_csvs, scalar};

const ACCESS_KEY: &str = "persona";
const SECRET_KEY: &str = "persona-secret";

/// An s3s-fs process serving a temporary folder; each sub-folder is a bucket.
struct S3Server {
    child: Child,
    endpoint: String,
    _root: tempfile::TempDir,
}

impl S3Server {
    fn start(buckets: &[&str]) -> Self {
        let binary = std::env::var_os("PERSONA_S3S_FS").map(PathBuf::from).unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
            target.join("tools/s3s-fs/bin/s3s-fs")
        });
        assert!(
            binary.is_file(),
            "the S3 tests need the s3s-fs server at {}: install it with \
             `cargo install s3s-fs --version 0.14.1 --features binary --debug --locked --root target/tools/s3s-fs` \
             (as .ci/run does) or set PERSONA_S3S_FS",
            binary.display()
        );
        let root = tempfile::tempdir().unwrap();
        for bucket in buckets {
            std::fs::create_dir(root.path().join(bucket)).unwrap();
        }
        let mut child = Command::new(&binary)
            .args(["--host", "127.0.0.1", "--port", "0", "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(root.path())
            .env("RUST_LOG", "s3s_fs=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        // It logs its address once it listens: read until then, no sleeping.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let endpoint = loop {
            let line = lines.next().expect("s3s-fs exited before it listened").unwrap();
            if let Some(at) = line.find("server is running at ") {
                break line[at + "server is running at ".len()..].trim().to_string();
            }
        };
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, endpoint, _root: root }
    }

    fn table_toml(&self, name: &str, location: &str) -> String {
        format!(
            "[tables.{name}]\nlocation = \"{location}\"\nstorage_options = {{ AWS_ENDPOINT_URL = \"{}\", AWS_ALLOW_HTTP = \"true\", \
             AWS_ACCESS_KEY_ID = \"{ACCESS_KEY}\", AWS_SECRET_ACCESS_KEY = \"{SECRET_KEY}\", AWS_REGION = \"us-east-1\" }}\n",
            self.endpoint
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_query_time_travel_optimize_and_vacuum_on_s3() {
    let s3 = S3Server::start(&["lake"]);
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), &s3.table_toml("orders", "s3://lake/orders"));
    let months = &retail_csvs()[..2];
    let rows: Vec<usize> = months.iter().map(|p| csv_gz_records(p, |_| true)).collect();
    let paths: Vec<String> = months.iter().map(|p| p.to_string_lossy().into_owned()).collect();

    let first = load(&config, "orders", &[&paths[0]]).await;
    assert_eq!((first.version, first.rows as usize), (Some(0), rows[0]));
    assert!(first.location.starts_with("s3://lake/orders"), "{first}");
    let second = load(&config, "orders", &[&paths[0], &paths[1]]).await;
    assert_eq!((second.version, second.rows as usize), (Some(1), rows[1]));
    // Idempotent on S3 as on disk, with or without watermarks.
    assert_eq!(load(&config, "orders", &[&paths[0], &paths[1]]).await.version, None);
    std::fs::remove_dir_all(dir.path().join("persona/load_watermarks")).unwrap();
    assert_eq!(load(&config, "orders", &[&paths[1]]).await.version, None);

    let server = TestServer::over(&config).await;
    let total = (rows[0] + rows[1]).to_string();
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders").await), total);
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders VERSION AS OF 0").await), rows[0].to_string());
    assert_eq!(
        scalar(&server.query("SELECT count(*) FROM table_changes('orders', 1) WHERE _change_type = 'insert'").await),
        rows[1].to_string()
    );

    let entry = lakehouse::resolve(&config, "orders").unwrap();
    let optimized = upkeep::optimize(&entry, &[]).await.unwrap();
    assert_eq!((optimized.files_removed, optimized.files_added), (2, 1), "{optimized}");
    let vacuumed = upkeep::vacuum(&entry, Some(0), false, true).await.unwrap();
    assert_eq!(vacuumed.files.len(), 2, "{vacuumed}");
    let info = upkeep::describe(&entry).await.unwrap();
    assert_eq!((info.files, info.rows.map(|r| r as usize)), (1, Some(rows[0] + rows[1])));
    // The running server follows the new versions without a restart: it reads the compacted
    // file now that vacuum removed the two it read before.
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders").await), total);
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders VERSION AS OF 2").await), total);
    let status = server.status_of("SELECT * FROM orders VERSION AS OF 7").await;
    assert_eq!(status.code(), tonic::Code::NotFound, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dml_and_bulk_ingest_on_s3() {
    use arrow_flight::sql::{CommandStatementIngest, TableDefinitionOptions, TableExistsOption, TableNotExistOption};

    let s3 = S3Server::start(&["lake"]);
    let dir = tempfile::tempdir().unwrap();
    let access = "[access]\nanonymous = \"read\"\n[[access.users]]\nname = \"etl\"\npassword = \"etl-pw\"\naccess = \"write\"\n";
    let config = config_in(dir.path(), &format!("{}{access}", s3.table_toml("orders", "s3://lake/orders")));
    let month = &retail_csvs()[0];
    let rows = csv_gz_records(month, |_| true);
    let france = csv_gz_records(month, |r| &r[7] == "France");
    load(&config, "orders", &[&month.to_string_lossy()]).await;

    let server = TestServer::from_config(&config).await;
    let mut etl = server.client_as("etl", "etl-pw").await;
    assert_eq!(etl.execute_update("DELETE FROM orders WHERE \"Country\" = 'France'".into(), None).await.unwrap(), france as i64);
    assert_eq!(etl.execute_update("INSERT INTO orders SELECT * FROM orders LIMIT 10".into(), None).await.unwrap(), 10);
    // Rows read back over Flight SQL and streamed in again by bulk ingest: two micro-batch
    // commits at most, appended to the S3 table.
    let sample = crate::fixture::query_with(&mut etl, "SELECT * FROM orders WHERE \"Country\" = 'Germany'").await;
    let germany: usize = sample.iter().map(|b| b.num_rows()).sum();
    let cmd = CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions {
            if_not_exist: TableNotExistOption::Fail as i32,
            if_exists: TableExistsOption::Append as i32,
        }),
        table: "orders".into(),
        schema: None,
        catalog: None,
        temporary: false,
        transaction_id: None,
        options: Default::default(),
    };
    let ingested = etl.execute_ingest(cmd, futures::stream::iter(sample.into_iter().map(Ok))).await.unwrap();
    assert_eq!(ingested as usize, germany);
    let expected = rows - france + 10 + germany;
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders").await), expected.to_string());
    // Every statement was a commit on S3: the load, the delete, the insert, the ingest.
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders VERSION AS OF 1").await), (rows - france).to_string());
}
