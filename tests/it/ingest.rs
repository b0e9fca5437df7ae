//! `persona load`: the Online Retail CSVs batch-loaded and reloaded, rejects, schema checks,
//! merge, grown files, JSON lines and Parquet. Expected figures come from the data set's README
//! (its checksums) or are counted here with the csv crate, never from persona itself.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use persona::ingest::{Mode, load as try_load};
use persona::PersonaError;

use crate::fixture::{TestServer, config_in, csv_gz_records, load, load_request, retail_csvs, row_strings, scalar};

fn s(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_retail_loads_incrementally_and_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    let files = retail_csvs();
    let (last, first_twelve) = files.split_last().unwrap();
    let twelve: Vec<String> = first_twelve.iter().map(|p| s(p)).collect();
    let refs: Vec<&str> = twelve.iter().map(String::as_str).collect();

    let first = load(&config, "online_retail", &refs).await;
    assert_eq!(first.version, Some(0));
    assert!(first.created);
    let last_rows = csv_gz_records(last, |_| true) as u64;
    assert_eq!(first.rows, 541_909 - last_rows);

    // The whole folder as a pattern: only the month not loaded yet is read.
    let pattern = format!("{}/online_retail_2*.csv.gz", last.parent().unwrap().display());
    let second = load(&config, "online_retail", &[&pattern]).await;
    assert_eq!(second.version, Some(1));
    assert_eq!(second.rows, last_rows, "exactly the extra month's rows");
    assert_eq!(second.loaded_files(), 1);
    assert_eq!(second.files.iter().filter(|f| f.skipped.as_deref().is_some_and(|w| w.contains("unchanged"))).count(), 12);

    let server = TestServer::over(&config).await;
    let q = |sql: &'static str| {
        let server = &server;
        async move { scalar(&server.query(sql).await) }
    };
    // The data set README's checksums for online_retail.
    assert_eq!(q("SELECT count(*) FROM online_retail").await, "541909");
    assert_eq!(q("SELECT sum(\"Quantity\") FROM online_retail").await, "5176450");
    assert_eq!(q("SELECT round(sum(\"Quantity\" * \"UnitPrice\"), 2) FROM online_retail").await, "9747747.93");
    assert_eq!(q("SELECT count(DISTINCT \"InvoiceNo\") FROM online_retail").await, "25900");
    assert_eq!(q("SELECT count(*) FROM online_retail WHERE \"CustomerID\" IS NULL").await, "135080");
    assert_eq!(q("SELECT count(*) FROM online_retail WHERE \"Description\" IS NULL").await, "1454");
    assert_eq!(
        row_strings(&server.query("SELECT \"InvoiceNo\", \"StockCode\", \"Quantity\", \"InvoiceDate\", \"UnitPrice\", \"CustomerID\" FROM online_retail WHERE \"InvoiceNo\" = '536365' AND \"StockCode\" = '85123A'").await),
        ["536365|85123A|6|2010-12-01T08:26:00Z|2.55|17850"]
    );

    // The watermarks are a served table of their own.
    assert_eq!(q("SELECT count(*) FROM persona.load_watermarks WHERE table_name = 'online_retail'").await, "13");

    // Loading the same input again adds nothing and makes no version...
    let again = load(&config, "online_retail", &[&pattern]).await;
    assert_eq!(again.version, None);
    assert_eq!(again.previous_version, Some(1));
    assert!(again.to_string().contains("nothing new to load"), "{again}");
    // ...even with the watermarks gone: the Delta transaction ids remember every file.
    std::fs::remove_dir_all(dir.path().join("persona/load_watermarks")).unwrap();
    let without_marks = load(&config, "online_retail", &[&pattern]).await;
    assert_eq!(without_marks.version, None);
    let reasons: Vec<&str> = without_marks.files.iter().filter_map(|f| f.skipped.as_deref()).collect();
    assert_eq!(reasons.iter().filter(|r| **r == "already loaded in version 0").count(), 12);
    assert_eq!(reasons.iter().filter(|r| **r == "already loaded in version 1").count(), 1);
    // A copy of a loaded file under another name is the same input.
    let copy = dir.path().join("copy.csv.gz");
    std::fs::copy(last, &copy).unwrap();
    assert_eq!(load(&config, "online_retail", &[&s(&copy)]).await.version, None);
    assert_eq!(q("SELECT count(*) FROM online_retail").await, "541909");
    assert_eq!(q("SELECT max(_commit_version) FROM table_changes('online_retail', 0)").await, "1");
}

#[tokio::test]
async fn bad_records_go_to_the_rejects_file_with_their_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    // The table's types come from a clean first file; inference would read `lots` as text.
    let clean = dir.path().join("orders0.csv");
    std::fs::write(&clean, "id,customer,amount,placed_at\n0,zed,1.25,2026-01-01 09:00:00\n").unwrap();
    load(&config, "orders", &[&s(&clean)]).await;
    let csv = dir.path().join("orders.csv");
    std::fs::write(
        &csv,
        "id,customer,amount,placed_at\n\
         1,alice,10.5,2026-01-01 10:00:00\n\
         2,\"bob\nsmith\",20,2026-01-02 11:00:00\n\
         3,carol,lots,2026-01-03 12:00:00\n\
         4,dave,40\n\
         5,erin,50,2026-01-05\n",
    )
    .unwrap();
    let report = load(&config, "orders", &[&s(&csv)]).await;
    assert_eq!((report.rows, report.rejected), (3, 2));
    let rejects = report.rejects_file.clone().expect("a rejects file");
    assert!(report.to_string().contains(&rejects.display().to_string()));
    let mut reader = csv::Reader::from_path(&rejects).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    // Record 2 spans lines 3-4, so carol is on line 5 and dave on line 6.
    assert_eq!(&rows[0][1], "5");
    assert!(rows[0][2].contains("`amount`") && rows[0][2].contains("lots"), "{:?}", rows[0]);
    assert_eq!(&rows[1][1], "6");
    assert!(rows[1][2].contains("expected 4 fields, found 3"), "{:?}", rows[1]);
    assert_eq!(&rows[0][0], &s(&csv));

    let server = TestServer::over(&config).await;
    assert_eq!(row_strings(&server.query("SELECT id, customer, amount FROM orders ORDER BY id").await), [
        "0|zed|1.25",
        "1|alice|10.5",
        "2|bob\nsmith|20.0",
        "5|erin|50.0"
    ]);

    // With --max-rejects 0 the same kind of file commits nothing.
    let more = dir.path().join("more.csv");
    std::fs::write(&more, "id,customer,amount,placed_at\n6,frank,60,2026-01-06\n7,gina,many,2026-01-07\n").unwrap();
    let mut strict = load_request("orders", &[&s(&more)]);
    strict.max_rejects = Some(0);
    let err = try_load(&config, &strict).await.unwrap_err();
    assert!(matches!(err, PersonaError::TooManyRejects(_)), "{err}");
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders").await), "4");
    assert_eq!(scalar(&server.query("SELECT max(_commit_version) FROM table_changes('orders', 0)").await), "1");
}

#[tokio::test]
async fn schema_mismatches_name_the_column_and_evolution_is_explicit() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    let a = dir.path().join("a.csv");
    std::fs::write(&a, "id,name\n1,ann\n").unwrap();
    load(&config, "people", &[&s(&a)]).await;

    let b = dir.path().join("b.csv");
    std::fs::write(&b, "id,name,email\n2,bo,bo@example.com\n").unwrap();
    let err = try_load(&config, &load_request("people", &[&s(&b)])).await.unwrap_err().to_string();
    assert!(err.contains("`email`") && err.contains("b.csv") && err.contains("--allow-new-columns"), "{err}");
    let mut evolve = load_request("people", &[&s(&b)]);
    evolve.allow_new_columns = true;
    assert_eq!(try_load(&config, &evolve).await.unwrap().version, Some(1));

    // A Parquet column whose type does not fit is named with both types.
    let parquet = dir.path().join("c.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec!["x3"]))]).unwrap();
    let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&parquet).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let err = try_load(&config, &load_request("people", &[&s(&parquet)])).await.unwrap_err().to_string();
    assert!(err.contains("`id` is Utf8") && err.contains("Int64"), "{err}");

    let server = TestServer::over(&config).await;
    assert_eq!(row_strings(&server.query("SELECT id, name, email FROM people ORDER BY id").await), ["1|ann|", "2|bo|bo@example.com"]);
}

#[tokio::test]
async fn merge_upserts_by_key_and_grown_files_load_only_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    let profiles = dir.path().join("profiles.csv");
    std::fs::write(&profiles, "customer_id,email\nc1,a@x.com\nc2,b@x.com\n").unwrap();
    let mut merge = load_request("profiles", &[&s(&profiles)]);
    merge.mode = Mode::Merge { key: vec!["customer_id".into()] };
    assert_eq!(try_load(&config, &merge).await.unwrap().rows, 2);
    let update = dir.path().join("update.csv");
    // c2 twice: the last row of a key wins.
    std::fs::write(&update, "customer_id,email\nc2,old@x.com\nc3,c@x.com\nc2,new@x.com\n").unwrap();
    merge.inputs = vec![s(&update)];
    let report = try_load(&config, &merge).await.unwrap();
    assert_eq!((report.rows, report.rows_updated), (1, 1), "{report}");
    let server = TestServer::over(&config).await;
    assert_eq!(row_strings(&server.query("SELECT customer_id, email FROM profiles ORDER BY 1").await), [
        "c1|a@x.com",
        "c2|new@x.com",
        "c3|c@x.com"
    ]);
    // The change feed shows the update as pre- and post-image.
    assert_eq!(
        row_strings(&server.query("SELECT _change_type, customer_id, email FROM table_changes('profiles', 1) ORDER BY 1, 2").await),
        ["insert|c3|c@x.com", "update_postimage|c2|new@x.com", "update_preimage|c2|b@x.com"]
    );

    // A log file that grew: only the appended records load.
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, "{\"id\": 1, \"kind\": \"open\"}\n{\"id\": 2, \"kind\": \"click\"}\n").unwrap();
    assert_eq!(load(&config, "clicks", &[&s(&events)]).await.rows, 2);
    let mut text = std::fs::read_to_string(&events).unwrap();
    text.push_str("{\"id\": 3, \"kind\": \"open\"}\nnot json\n{\"id\": \"four\", \"kind\": \"open\"}\n");
    std::fs::write(&events, text).unwrap();
    let grown = load(&config, "clicks", &[&s(&events)]).await;
    assert_eq!((grown.rows, grown.rejected), (1, 2), "{grown}");
    assert_eq!(grown.files[0].already_had, 2);
    let rejects = std::fs::read_to_string(grown.rejects_file.unwrap()).unwrap();
    assert!(rejects.contains(",4,invalid JSON") && rejects.contains(",5,column `id`"), "{rejects}");
    assert_eq!(scalar(&server.query("SELECT sum(id) FROM clicks").await), "6");

    // Overwrite replaces the rows; the version before stays readable.
    let fresh = dir.path().join("fresh.csv");
    std::fs::write(&fresh, "customer_id,email\nc9,z@x.com\n").unwrap();
    let mut overwrite = load_request("profiles", &[&s(&fresh)]);
    overwrite.mode = Mode::Overwrite;
    assert_eq!(try_load(&config, &overwrite).await.unwrap().version, Some(2));
    assert_eq!(try_load(&config, &overwrite).await.unwrap().version, None, "the same overwrite twice is one");
    assert_eq!(scalar(&server.query("SELECT count(*) FROM profiles").await), "1");
    assert_eq!(scalar(&server.query("SELECT count(*) FROM profiles VERSION AS OF 1").await), "3");
}

#[tokio::test]
async fn parquet_files_load_with_their_types() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    let retail = crate::fixture::shared_data().join("online-retail/online_retail_ii_2009_2010.parquet");
    let mut request = load_request("retail_ii", &[&s(&retail)]);
    request.partition_by = vec!["Country".into()];
    let report = try_load(&config, &request).await.unwrap();
    assert_eq!(report.rows, 525_461);
    let server = TestServer::over(&config).await;
    // The data set README's checksums for online_retail_ii_2009_2010.
    assert_eq!(scalar(&server.query("SELECT sum(\"Quantity\") FROM retail_ii").await), "5432041");
    assert_eq!(scalar(&server.query("SELECT round(sum(\"Quantity\" * \"Price\"), 2) FROM retail_ii").await), "9539484.63");
    assert_eq!(scalar(&server.query("SELECT count(DISTINCT \"Country\") FROM retail_ii").await), "40");
}

#[tokio::test]
async fn a_merge_replaces_matched_rows_and_what_a_record_lacks_becomes_null() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path(), "");
    let base = dir.path().join("base.csv");
    std::fs::write(&base, "id,name,email\n1,ann,a@x\n2,bob,b@x\n3,cy,c@x\n").unwrap();
    load(&config, "people", &[&s(&base)]).await;
    let merge = |path: &std::path::Path| {
        let mut request = load_request("people", &[&s(path)]);
        request.mode = Mode::Merge { key: vec!["id".into()] };
        request
    };
    // JSON lines: bob's record has no email; the file as a whole has one (ann's).
    let some = dir.path().join("some.jsonl");
    std::fs::write(&some, "{\"id\": 1, \"name\": \"ann2\", \"email\": \"new@x\"}\n{\"id\": 2, \"name\": \"bob2\"}\n").unwrap();
    assert_eq!(try_load(&config, &merge(&some)).await.unwrap().rows_updated, 2);
    // A file without the column at all: cy's email goes too; a new key is inserted.
    let none = dir.path().join("none.csv");
    std::fs::write(&none, "id,name\n3,cy2\n4,dee\n").unwrap();
    let report = try_load(&config, &merge(&none)).await.unwrap();
    assert_eq!((report.rows, report.rows_updated), (1, 1), "{report}");
    let server = TestServer::over(&config).await;
    let rows = server.query("SELECT id, name, coalesce(email, 'NULL') FROM people ORDER BY id").await;
    assert_eq!(row_strings(&rows), ["1|ann2|new@x", "2|bob2|NULL", "3|cy2|NULL", "4|dee|NULL"]);
}
