//! Upkeep (`persona optimize`, `vacuum`, `checkpoint`, `tables`) and `persona forget`.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use deltalake::DeltaTable;
use persona::config::{TableConfig, location_url};
use persona::identity::{Settings, job};
use persona::lakehouse::forget::{Key, files_holding, forget};
use persona::lakehouse::{self, upkeep};

use crate::fixture::{TestServer, config_in, csv_gz_records, load, retail_csvs, row_strings, scalar};

fn write_csv(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn optimize_vacuum_checkpoint_and_the_tables_listing() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    for i in 0..3 {
        let f = write_csv(dir.path(), &format!("p{i}.csv"), &format!("id,kind\n{},k{}\n{},k{}\n", 2 * i, i % 2, 2 * i + 1, i % 2));
        load(&config, "parts", &[&f]).await;
    }
    let entry = lakehouse::resolve(&config, "parts").unwrap();
    let before = upkeep::describe(&entry).await.unwrap();
    assert_eq!((before.version, before.files, before.rows), (2, 3, Some(6)));
    assert!(before.change_feed);

    let optimized = upkeep::optimize(&entry, &["kind".to_string()]).await.unwrap();
    assert_eq!((optimized.version, optimized.files_removed, optimized.files_added), (Some(3), 3, 1), "{optimized}");
    let after = upkeep::describe(&entry).await.unwrap();
    assert_eq!((after.version, after.files, after.rows), (3, 1, Some(6)));
    assert!(after.bytes > 0 && after.last_commit.is_some());

    // Below the table's 7-day retention only with --force.
    let err = upkeep::vacuum(&entry, Some(0), false, false).await.unwrap_err().to_string();
    assert!(err.contains("--force"), "{err}");
    let dry = upkeep::vacuum(&entry, Some(0), true, true).await.unwrap();
    assert_eq!(dry.files.len(), 3, "{dry}");
    assert_eq!(upkeep::describe(&entry).await.unwrap().files, 1, "a dry run deletes nothing");
    let done = upkeep::vacuum(&entry, Some(0), false, true).await.unwrap();
    assert_eq!(done.files.len(), 3);
    assert_eq!(upkeep::vacuum(&entry, None, false, false).await.unwrap().files.len(), 0);

    // Vacuum records itself in the log (a start and an end commit), so the newest version moved.
    let newest = upkeep::describe(&entry).await.unwrap().version;
    assert!(newest > 3);
    assert_eq!(upkeep::checkpoint(&entry).await.unwrap(), newest);
    assert!(dir.path().join(format!("lakehouse/parts/_delta_log/{newest:020}.checkpoint.parquet")).is_file());

    let server = TestServer::over(&config).await;
    assert_eq!(scalar(&server.query("SELECT sum(id) FROM parts").await), "15");
    let listing = upkeep::format_tables(&[upkeep::describe(&entry).await.unwrap()]);
    assert!(listing.starts_with("table") && listing.contains("parts") && listing.lines().count() == 2, "{listing}");
    let names: Vec<String> = lakehouse::all(&config).unwrap().iter().map(|e| e.display_name()).collect();
    assert_eq!(names, ["parts", "persona.load_watermarks"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_removes_a_customer_from_every_table_and_proves_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    let months: Vec<String> = retail_csvs()[..2].iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let expected: usize = retail_csvs()[..2].iter().map(|p| csv_gz_records(p, |r| &r[6] == "17850")).sum();
    assert!(expected > 100, "customer 17850 has {expected} lines in the first two months");
    load(&config, "orders", &[&months[0]]).await;
    load(&config, "orders", &[&months[1]]).await;
    let profiles = write_csv(dir.path(), "profiles.csv", "customer_id,email\n17850,someone@example.com\n12583,other@example.com\n");
    load(&config, "contacts", &[&profiles]).await;

    // A check that samples both contacts into persona.check_failures, as JSON rows.
    std::fs::create_dir_all(dir.path().join("sql/checks")).unwrap();
    std::fs::write(
        dir.path().join("sql/checks/example_emails.sql"),
        "-- check: example_emails\n-- version: 1\nSELECT customer_id, email FROM contacts WHERE email LIKE '%@example.com'\n",
    )
    .unwrap();
    let ctx = persona::server::open(&config).await.unwrap();
    let runs = persona::server::runs(&config, &ctx, persona::runs::Trigger::Cli);
    let checked = persona::runs::checks::run(&runs, &[]).await.unwrap();
    assert_eq!(checked[0].sample.len(), 2, "{:?}", checked[0].sample);
    drop((runs, ctx));

    let orders = lakehouse::resolve(&config, "orders").unwrap();
    let key = Key { column: "CustomerID".into(), value: "17850".into() };
    let table = upkeep::open(&orders).await.unwrap();
    let (_, holding) = files_holding(&table, std::slice::from_ref(&key)).await.unwrap();
    assert!(!holding.is_empty(), "the check sees the customer before forgetting");

    let report = forget(&config, &["CustomerID=17850".parse().unwrap(), "customer_id=17850".parse().unwrap()]).await.unwrap();
    assert!(report.verified(), "{report}");
    let by_table = |name: &str| report.tables.iter().find(|t| t.table == name).unwrap_or_else(|| panic!("{name} in {report}"));
    assert_eq!(by_table("orders").rows_deleted as usize, expected);
    assert_eq!(by_table("contacts").rows_deleted, 1);
    // The failing-row sample that quoted customer 17850 is gone; the other one stays.
    assert_eq!(by_table("persona.check_failures").rows_deleted, 1, "{report}");
    assert!(by_table("persona.check_failures").still_holding.is_empty() && by_table("persona.check_failures").files_checked >= 1);
    assert!(by_table("orders").files_removed >= 2, "{report}");
    assert!(by_table("orders").still_holding.is_empty() && by_table("orders").files_checked >= 1);
    assert!(report.untouched.contains(&"persona.load_watermarks".to_string()));
    assert!(report.to_string().ends_with("forgotten everywhere"), "{report}");

    let server = TestServer::over(&config).await;
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders WHERE \"CustomerID\" = 17850").await), "0");
    assert_eq!(row_strings(&server.query("SELECT customer_id FROM contacts").await), ["12583"]);
    let samples = row_strings(&server.query("SELECT \"row\" FROM persona.check_failures").await);
    assert_eq!(samples, [r#"{"customer_id":12583,"email":"other@example.com"}"#]);
    let total: usize = retail_csvs()[..2].iter().map(|p| csv_gz_records(p, |_| true)).sum();
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders").await), (total - expected).to_string());
    // The change feed's record of the deletion is gone with the vacuum too.
    let table = upkeep::open(&orders).await.unwrap();
    assert!(files_holding(&table, std::slice::from_ref(&key)).await.unwrap().1.is_empty());
    assert!(!dir.path().join("lakehouse/orders/_change_data").read_dir().is_ok_and(|mut d| d.next().is_some()));
}

/// `profiles` (all columns text) as a Delta table in the lakehouse folder of `config`.
async fn lakehouse_profiles(config: &persona::config::Config, rows: &[[&str; 6]]) -> TableConfig {
    let names = ["source", "source_customer_id", "given_name", "surname", "date_of_birth", "soc_sec_id"];
    let schema = Arc::new(Schema::new(names.map(|n| Field::new(n, DataType::Utf8, true)).to_vec()));
    let columns = (0..6).map(|c| Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r[c]))) as _).collect();
    let dir = lakehouse::user_folder(&config.data_dir).join("profiles");
    std::fs::create_dir_all(&dir).unwrap();
    let url = location_url(&dir.to_string_lossy(), std::path::Path::new("")).unwrap();
    DeltaTable::try_from_url(url.clone()).await.unwrap().write(vec![RecordBatch::try_new(schema, columns).unwrap()]).await.unwrap();
    TableConfig { name: "profiles".into(), url, storage_options: Default::default() }
}

async fn resolve(profiles: &TableConfig, config: &persona::config::Config) {
    let catalog = persona::catalog::build(std::slice::from_ref(profiles), &[]).await.unwrap();
    let ctx = persona::session::build(catalog, &Default::default()).unwrap();
    job::run(&ctx, &config.data_dir, &Settings::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_reaches_identity_pairs_and_the_golden_record() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    // FEBRL4 entity 1070 in the web shop (w1) and, misspelt, at the till (p1): one person;
    // entity 1016 (w2) alone.
    let profiles = lakehouse_profiles(
        &config,
        &[
            ["webshop", "w1", "michaela", "neumann", "19151111", "5304218"],
            ["pos", "p1", "michafla", "neumann", "19151111", "5304218"],
            ["webshop", "w2", "courtney", "painter", "19161214", "4066625"],
        ],
    )
    .await;
    let orders = dir.path().join("orders.csv");
    std::fs::write(&orders, "customer_id,amount\nw1,10\nw2,20\nw1,30\n").unwrap();
    load(&config, "orders", &[&orders.to_string_lossy()]).await;
    resolve(&profiles, &config).await;

    let server = TestServer::over(&config).await;
    let links = "SELECT source_customer_id, master_customer_id FROM persona.identity_links ORDER BY 1";
    assert_eq!(row_strings(&server.query(links).await), ["p1|M00000001", "w1|M00000001", "w2|M00000002"]);
    let pairs = "SELECT source_customer_id_a || '-' || source_customer_id_b FROM persona.identity_pairs";
    let before: Vec<String> = row_strings(&server.query(pairs).await);
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(before[0] == "w1-p1" || before[0] == "p1-w1", "{before:?}");
    let golden = "SELECT master_customer_id, profile_count, given_name FROM persona.customers ORDER BY 1";
    assert_eq!(row_strings(&server.query(golden).await).len(), 2);

    let keys: Vec<Key> = ["customer_id=w1", "source_customer_id=w1"].iter().map(|k| k.parse().unwrap()).collect();
    let report = forget(&config, &keys).await.unwrap();
    assert!(report.verified(), "{report}");
    assert_eq!(report.master_ids, ["M00000001"]);
    let deleted = |name: &str| report.tables.iter().find(|t| t.table == name).unwrap_or_else(|| panic!("{name} in {report}")).rows_deleted;
    assert_eq!(deleted("orders"), 2);
    assert_eq!(deleted("profiles"), 1);
    assert_eq!(deleted("persona.identity_links"), 1);
    assert_eq!(deleted("persona.identity_pairs"), 1);
    assert_eq!(deleted("persona.customers"), 1);
    let pair_table = report.tables.iter().find(|t| t.table == "persona.identity_pairs").unwrap();
    assert_eq!(pair_table.columns, ["source_customer_id_a", "source_customer_id_b"]);
    let text = report.to_string();
    assert!(text.contains("golden records deleted for master id(s) M00000001") && text.contains("persona resolve"), "{text}");
    assert!(text.ends_with("forgotten everywhere"), "{text}");

    // What is left: w1 nowhere, the person's till profile and the other person untouched.
    assert_eq!(row_strings(&server.query(links).await), ["p1|M00000001", "w2|M00000002"]);
    assert!(row_strings(&server.query(pairs).await).is_empty());
    assert_eq!(row_strings(&server.query(golden).await), ["M00000002|1|courtney"]);
    assert_eq!(row_strings(&server.query("SELECT customer_id, amount FROM orders").await), ["w2|20"]);
    for table in ["persona.identity_pairs", "persona.identity_links", "persona.customers"] {
        let entry = lakehouse::resolve(&config, table).unwrap();
        let opened = upkeep::open(&entry).await.unwrap();
        let wanted = [
            Key { column: "source_customer_id_a".into(), value: "w1".into() },
            Key { column: "source_customer_id_b".into(), value: "w1".into() },
            Key { column: "source_customer_id".into(), value: "w1".into() },
            Key { column: "master_customer_id".into(), value: if table == "persona.customers" { "M00000001" } else { "none" }.into() },
        ];
        assert!(files_holding(&opened, &wanted).await.unwrap().1.is_empty(), "{table}");
    }

    // Resolving again rebuilds the person from the profile that remains, under the same id.
    resolve(&profiles, &config).await;
    assert_eq!(row_strings(&server.query(golden).await), ["M00000001|1|michafla", "M00000002|1|courtney"]);
}
