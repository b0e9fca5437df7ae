//! Upkeep (`persona optimize`, `vacuum`, `checkpoint`, `tables`) and `persona forget`.

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
    load(&config, "profiles", &[&profiles]).await;

    let orders = lakehouse::resolve(&config, "orders").unwrap();
    let key = Key { column: "CustomerID".into(), value: "17850".into() };
    let table = upkeep::open(&orders).await.unwrap();
    let (_, holding) = files_holding(&table, &key).await.unwrap();
    assert!(!holding.is_empty(), "the check sees the customer before forgetting");

    let report = forget(&config, &["CustomerID=17850".parse().unwrap(), "customer_id=17850".parse().unwrap()]).await.unwrap();
    assert!(report.verified(), "{report}");
    let by_table = |name: &str| report.tables.iter().find(|t| t.table == name).unwrap_or_else(|| panic!("{name} in {report}"));
    assert_eq!(by_table("orders").rows_deleted as usize, expected);
    assert_eq!(by_table("profiles").rows_deleted, 1);
    assert!(by_table("orders").files_removed >= 2, "{report}");
    assert!(by_table("orders").still_holding.is_empty() && by_table("orders").files_checked >= 1);
    assert!(report.untouched.contains(&"persona.load_watermarks".to_string()));
    assert!(report.to_string().ends_with("forgotten everywhere"), "{report}");

    let server = TestServer::over(&config).await;
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders WHERE \"CustomerID\" = 17850").await), "0");
    assert_eq!(row_strings(&server.query("SELECT customer_id FROM profiles").await), ["12583"]);
    let total: usize = retail_csvs()[..2].iter().map(|p| csv_gz_records(p, |_| true)).sum();
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders").await), (total - expected).to_string());
    // The change feed's record of the deletion is gone with the vacuum too.
    let table = upkeep::open(&orders).await.unwrap();
    assert!(files_holding(&table, &key).await.unwrap().1.is_empty());
    assert!(!dir.path().join("lakehouse/orders/_change_data").read_dir().is_ok_and(|mut d| d.next().is_some()));
}
