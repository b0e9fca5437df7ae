//! Writes over Flight SQL for clients with write access: INSERT, UPDATE, DELETE and MERGE on a
//! Delta table (as queries and as `CommandStatementUpdate`), bulk ingest in micro-batches with
//! concurrent writers and retried streams, plain DoPut to a table path, and the refusals.
//!
//! Expected rows are worked out by hand from the statements; versions from one commit per
//! statement or micro-batch.

use std::sync::Arc;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::sql::CommandStatementIngest;
use arrow_flight::sql::TableDefinitionOptions;
use arrow_flight::sql::{TableExistsOption, TableNotExistOption};
use arrow_flight::{FlightDescriptor, error::FlightError};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use tonic::Code;

use crate::fixture::{TestServer, config_in, load, query_with, row_strings, scalar};

const WRITER: (&str, &str) = ("loader", "load-secret");

/// A data folder with `orders` (3 rows, loaded from CSV) and a server over it where `loader`
/// may write and anonymous clients read; micro-batches of `batch_rows` rows.
async fn lake(batch_rows: usize) -> (tempfile::TempDir, TestServer) {
    lake_with(batch_rows, 60_000).await
}

async fn lake_with(batch_rows: usize, latency_ms: u64) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("orders.csv");
    std::fs::write(&csv, "order_id,customer_id,amount\n1,c1,10.5\n2,c2,20\n3,c3,30\n").unwrap();
    let plain = config_in(dir.path(), "");
    load(&plain, "orders", &[csv.to_str().unwrap()]).await;
    let extra = format!(
        "[tables]\norders = {:?}\n[ingest]\nbatch_rows = {batch_rows}\nbatch_latency_ms = {latency_ms}\n\
         [access]\nanonymous = \"read\"\n[[access.users]]\nname = \"{}\"\npassword = \"{}\"\naccess = \"write\"\n",
        dir.path().join("lakehouse/orders").display().to_string(),
        WRITER.0,
        WRITER.1
    );
    let server = TestServer::from_config(&config_in(dir.path(), &extra)).await;
    (dir, server)
}

async fn rows(server: &TestServer, sql: &str) -> Vec<String> {
    row_strings(&server.query(sql).await)
}

#[tokio::test]
async fn insert_update_delete_and_merge_change_the_delta_table() {
    let (_dir, server) = lake(1000).await;
    let mut w = server.client_as(WRITER.0, WRITER.1).await;

    // Executed as queries (what ADBC's cursor.execute sends): one row, count and version.
    let inserted = query_with(&mut w, "INSERT INTO orders VALUES (4, 'c4', 40), (5, 'c2', 50)").await;
    assert_eq!(row_strings(&inserted), ["2|1"]);
    let updated = query_with(&mut w, "UPDATE orders SET amount = amount * 2 WHERE customer_id = 'c2'").await;
    assert_eq!(row_strings(&updated), ["2|2"]);
    // As CommandStatementUpdate (JDBC's executeUpdate): the answer is the rows changed.
    assert_eq!(w.execute_update("DELETE FROM orders WHERE order_id = 1".into(), None).await.unwrap(), 1);
    let merged = query_with(
        &mut w,
        "MERGE INTO orders t USING (SELECT 3 AS order_id, 'c3' AS customer_id, 33.0 AS amount \
         UNION ALL SELECT 6, 'c6', 60.0) s ON t.order_id = s.order_id \
         WHEN MATCHED THEN UPDATE SET amount = s.amount \
         WHEN NOT MATCHED THEN INSERT (order_id, customer_id, amount) VALUES (s.order_id, s.customer_id, s.amount)",
    )
    .await;
    assert_eq!(row_strings(&merged), ["2|4"]);

    // 1 deleted; 2 and 5 (c2) doubled; 3 merged to 33; 4 inserted; 6 merged in.
    let got = rows(&server, "SELECT order_id, customer_id, amount FROM orders ORDER BY order_id").await;
    assert_eq!(got, ["2|c2|40.0", "3|c3|33.0", "4|c4|40.0", "5|c2|100.0", "6|c6|60.0"]);
    // One commit per statement: the load was version 0, the insert 1, ..., the merge 4.
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders VERSION AS OF 1").await), "5");
    assert_eq!(scalar(&server.query("SELECT sum(amount) FROM orders VERSION AS OF 2").await), "220.5");
    // The UDFs work inside DML expressions.
    let n = query_with(&mut w, "UPDATE orders SET customer_id = normalize_name(' C6 ') WHERE order_id = 6").await;
    assert_eq!(row_strings(&n), ["1|5"]);
    assert_eq!(rows(&server, "SELECT customer_id FROM orders WHERE order_id = 6").await, ["c6"]);
}

/// Prepared DML: each bound row runs the statement (JDBC's executeUpdate / executeBatch), and a
/// prepared query-style execution with one row works too; values arrive as literals of their type.
#[tokio::test]
async fn prepared_dml_runs_once_per_bound_row() {
    let (_dir, server) = lake(1000).await;
    let mut w = server.client_as(WRITER.0, WRITER.1).await;
    let mut insert = w.prepare("INSERT INTO orders VALUES (?, ?, ?)".into(), None).await.unwrap();
    assert_eq!(insert.parameter_schema().unwrap().fields().len(), 3);
    assert_eq!(insert.dataset_schema().unwrap().field(0).name(), "count");
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, false),
        Field::new("b", DataType::Utf8, false),
        Field::new("c", DataType::Float64, true),
    ]));
    let two = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![4, 5])),
            Arc::new(StringArray::from(vec!["c4", "o'brien"])),
            Arc::new(datafusion::arrow::array::Float64Array::from(vec![Some(40.0), None])),
        ],
    )
    .unwrap();
    insert.set_parameters(two).unwrap();
    assert_eq!(insert.execute_update().await.unwrap(), 2);
    let got = rows(&server, "SELECT order_id, customer_id, amount FROM orders WHERE order_id > 3 ORDER BY order_id").await;
    assert_eq!(got, ["4|c4|40.0", "5|o'brien|"]);
    // `$n` placeholders, executed as a query (ADBC's cursor.execute(sql, params)): count, version.
    let mut update = w.prepare("UPDATE orders SET amount = $2 WHERE order_id = $1".into(), None).await.unwrap();
    let row = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false), Field::new("amount", DataType::Float64, false)])),
        vec![Arc::new(Int64Array::from(vec![5])), Arc::new(datafusion::arrow::array::Float64Array::from(vec![55.5]))],
    )
    .unwrap();
    update.set_parameters(row).unwrap();
    let info = update.execute().await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    assert_eq!(row_strings(&crate::fixture::fetch(&mut w, info).await), ["1|3"]);
    // Its ticket runs once, like a plain DML ticket.
    let again = match w.do_get(ticket).await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(again.expect_err("ran twice").to_string().contains("already ran its statement"));
    assert_eq!(rows(&server, "SELECT amount FROM orders WHERE order_id = 5").await, ["55.5"]);
    // A row that binds too few values fails and writes nothing.
    let short = RecordBatch::try_new(Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)])), vec![Arc::new(Int64Array::from(vec![9]))]).unwrap();
    insert.set_parameters(short).unwrap();
    let err = insert.execute_update().await.unwrap_err().to_string();
    assert!(err.contains("3 parameter(s) but 1 value(s)"), "{err}");
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders").await), "5");
}

/// A DML ticket runs once: redeeming it again (a client or proxy retrying DoGet after a lost
/// answer) is refused and inserts nothing; executing the statement again runs it again.
#[tokio::test]
async fn a_dml_ticket_runs_once() {
    let (_dir, server) = lake(1000).await;
    let mut w = server.client_as(WRITER.0, WRITER.1).await;
    let sql = "INSERT INTO orders VALUES (4, 'c4', 40)";
    let info = w.execute(sql.into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let first: Vec<RecordBatch> = w.do_get(ticket.clone()).await.unwrap().try_collect().await.unwrap();
    assert_eq!(row_strings(&first), ["1|1"]);
    let again = match w.do_get(ticket).await {
        Ok(stream) => stream.try_collect::<Vec<_>>().await.map(|_| ()),
        Err(e) => Err(e),
    };
    let err = again.expect_err("a redeemed DML ticket must not run again").to_string();
    assert!(err.contains("already ran its statement"), "{err}");
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders").await), "4");
    // The same SQL executed again is a new statement with a new ticket.
    assert_eq!(row_strings(&query_with(&mut w, sql).await), ["1|2"]);
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders WHERE order_id = 4").await), "2");
    // Query tickets stay reusable.
    let info = w.execute("SELECT count(*) FROM orders".into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    for _ in 0..2 {
        let got: Vec<RecordBatch> = w.do_get(ticket.clone()).await.unwrap().try_collect().await.unwrap();
        assert_eq!(row_strings(&got), ["5"]);
    }
}

#[tokio::test]
async fn dml_is_refused_without_write_access_and_on_bad_targets() {
    let (_dir, server) = lake(1000).await;
    let status = server.status_of("DELETE FROM orders").await;
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("not allowed without write access"), "{}", status.message());

    let mut w = server.client_as(WRITER.0, WRITER.1).await;
    let err = w.execute("DELETE FROM persona.load_watermarks".into(), None).await.unwrap_err().to_string();
    assert!(err.contains("persona's own tables"), "{err}");
    let err = w.execute("INSERT INTO no_such_table VALUES (1)".into(), None).await.unwrap_err().to_string();
    assert!(err.contains("no_such_table"), "{err}");
    // The source of an INSERT is a query under the same policy as any other.
    let err = w.execute("INSERT INTO orders SELECT * FROM '/etc/hostname'".into(), None).await.unwrap_err().to_string();
    assert!(err.contains("not allowed"), "{err}");
    let err = w.execute("INSERT INTO orders VALUES (1, 'c1')".into(), None).await.unwrap_err().to_string();
    assert!(err.contains("2 values per row for 3 columns"), "{err}");
    // Nothing of the refused statements reached the table.
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders").await), "3");
}

fn clicks_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("click_id", DataType::Int64, true), Field::new("url", DataType::Utf8, true)]))
}

/// `batches` batches of `per` rows each, ids starting at `from`.
fn clicks(from: i64, batches: i64, per: i64) -> Vec<RecordBatch> {
    (0..batches)
        .map(|b| {
            let ids: Vec<i64> = (0..per).map(|i| from + b * per + i).collect();
            let urls: Vec<String> = ids.iter().map(|i| format!("/p/{i}")).collect();
            RecordBatch::try_new(clicks_schema(), vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(urls))]).unwrap()
        })
        .collect()
}

fn ingest_cmd(table: &str, if_not_exist: TableNotExistOption, if_exists: TableExistsOption) -> CommandStatementIngest {
    CommandStatementIngest {
        table_definition_options: Some(TableDefinitionOptions { if_not_exist: if_not_exist as i32, if_exists: if_exists as i32 }),
        table: table.into(),
        schema: None,
        catalog: None,
        temporary: false,
        transaction_id: None,
        options: Default::default(),
    }
}

fn as_stream(batches: Vec<RecordBatch>) -> impl futures::Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static {
    futures::stream::iter(batches.into_iter().map(Ok))
}

#[tokio::test]
async fn bulk_ingest_commits_micro_batches_and_a_retried_stream_adds_nothing() {
    let (_dir, server) = lake(5).await;
    let mut w = server.client_as(WRITER.0, WRITER.1).await;
    let create = || ingest_cmd("clicks", TableNotExistOption::Create, TableExistsOption::Append);
    // 10 batches of 2 rows, cut into micro-batches of exactly 5 rows: 4 commits.
    let n = w.execute_ingest(create(), as_stream(clicks(0, 10, 2))).await.unwrap();
    assert_eq!(n, 20);
    assert_eq!(scalar(&server.query("SELECT count(*) FROM clicks").await), "20");
    assert_eq!(scalar(&server.query("SELECT count(*) FROM clicks VERSION AS OF 0").await), "5");
    assert_eq!(scalar(&server.query("SELECT count(*) FROM clicks VERSION AS OF 3").await), "20");

    // The acknowledgement was lost and the client sends the same rows again, batched
    // differently: no new rows, no new version.
    assert_eq!(w.execute_ingest(create(), as_stream(clicks(0, 4, 5))).await.unwrap(), 20);
    assert_eq!(rows(&server, "SELECT count(*), count(DISTINCT click_id) FROM clicks").await, ["20|20"]);
    let err = server.status_of("SELECT * FROM clicks VERSION AS OF 4").await;
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
}

#[tokio::test]
async fn a_named_stream_resumes_where_its_earlier_attempt_stopped() {
    let (_dir, server) = lake(4).await;
    let mut w = server.client_as(WRITER.0, WRITER.1).await;
    let create = || ingest_cmd("clicks", TableNotExistOption::Create, TableExistsOption::Append);
    w.set_header("x-persona-ingest-id", "import-7");
    // The first attempt got 6 of the stream's 12 rows through (micro-batches of 4 + the
    // rest at the end of what arrived) before it broke off.
    assert_eq!(w.execute_ingest(create(), as_stream(clicks(0, 3, 2))).await.unwrap(), 6);
    // The retry sends the whole stream in other batch sizes: only rows 6..12 are new.
    assert_eq!(w.execute_ingest(create(), as_stream(clicks(0, 4, 3))).await.unwrap(), 12);
    assert_eq!(rows(&server, "SELECT count(*), count(DISTINCT click_id), max(click_id) FROM clicks").await, ["12|12|11"]);
    // Once all of it is in, sending it again adds nothing.
    assert_eq!(w.execute_ingest(create(), as_stream(clicks(0, 1, 12))).await.unwrap(), 12);
    assert_eq!(scalar(&server.query("SELECT count(*) FROM clicks").await), "12");
    // Identical rows under another name are a new stream, appended on purpose.
    w.set_header("x-persona-ingest-id", "import-8");
    assert_eq!(w.execute_ingest(create(), as_stream(clicks(0, 1, 12))).await.unwrap(), 12);
    assert_eq!(rows(&server, "SELECT count(*), count(DISTINCT click_id) FROM clicks").await, ["24|12"]);
}

/// Three clients ingesting 10 rows each (distinct ids) into the new table `fresh`, all started
/// together; their answers.
async fn race_to_create(server: &TestServer, if_exists: TableExistsOption) -> Vec<Result<i64, FlightError>> {
    let mut tasks = Vec::new();
    for writer in 0..3i64 {
        let mut client = server.client_as(WRITER.0, WRITER.1).await;
        let cmd = ingest_cmd("fresh", TableNotExistOption::Create, if_exists);
        tasks.push(tokio::spawn(async move { client.execute_ingest(cmd, as_stream(clicks(100 * writer, 2, 5))).await }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    answers
}

#[tokio::test]
async fn clients_creating_one_new_table_at_once_all_land() {
    let (dir, server) = lake(1000).await;
    for answer in race_to_create(&server, TableExistsOption::Append).await {
        assert_eq!(answer.unwrap(), 10);
    }
    assert_eq!(rows(&server, "SELECT count(*), count(DISTINCT click_id) FROM fresh").await, ["30|30"]);
    // One client created the table; the others appended to it and wrote no metadata of their own.
    let log = std::fs::read_dir(dir.path().join("lakehouse/fresh/_delta_log")).unwrap();
    let with_metadata: Vec<String> = log
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && std::fs::read_to_string(p).unwrap().contains("\"metaData\""))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(with_metadata, ["00000000000000000000.json"]);
    // Unsigned integers are stored as Delta longs, so every later batch fits the table.
    let unsigned = Arc::new(Schema::new(vec![Field::new("n", DataType::UInt32, true)]));
    let batch = |v: Vec<u32>| RecordBatch::try_new(unsigned.clone(), vec![Arc::new(datafusion::arrow::array::UInt32Array::from(v))]).unwrap();
    let mut w = server.client_as(WRITER.0, WRITER.1).await;
    let cmd = ingest_cmd("counters", TableNotExistOption::Create, TableExistsOption::Append);
    w.execute_ingest(cmd.clone(), as_stream(vec![batch(vec![1, 2]), batch(vec![u32::MAX])])).await.unwrap();
    w.execute_ingest(cmd, as_stream(vec![batch(vec![3])])).await.unwrap();
    assert_eq!(rows(&server, "SELECT count(*), max(n), arrow_typeof(max(n)) FROM counters").await, ["4|4294967295|Int64"]);
}

#[tokio::test]
async fn of_clients_creating_one_table_that_must_not_exist_one_wins() {
    let (_dir, server) = lake(1000).await;
    let mut won = 0;
    for answer in race_to_create(&server, TableExistsOption::Fail).await {
        match answer {
            Ok(n) => {
                assert_eq!(n, 10);
                won += 1;
            }
            // Whether it lost the race to create or found the table already there.
            Err(FlightError::Tonic(status)) => assert_eq!(status.code(), Code::AlreadyExists, "{status:?}"),
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(rows(&server, "SELECT count(*), count(DISTINCT click_id) FROM fresh").await, ["10|10"]);
}

#[tokio::test]
async fn concurrent_writers_to_one_table_all_land() {
    let (_dir, server) = lake(4).await;
    let mut first = server.client_as(WRITER.0, WRITER.1).await;
    let cmd = ingest_cmd("clicks", TableNotExistOption::Create, TableExistsOption::Append);
    first.execute_ingest(cmd.clone(), as_stream(clicks(0, 1, 1))).await.unwrap();
    let mut tasks = Vec::new();
    for writer in 0..4i64 {
        let mut client = server.client_as(WRITER.0, WRITER.1).await;
        let cmd = cmd.clone();
        tasks.push(tokio::spawn(async move {
            client.execute_ingest(cmd, as_stream(clicks(1000 * (writer + 1), 6, 2))).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 12);
    }
    // 1 + 4 writers x 12 rows, every id once.
    let got = rows(&server, "SELECT count(*), count(DISTINCT click_id) FROM clicks").await;
    assert_eq!(got, ["49|49"]);
}

#[tokio::test]
async fn ingest_modes_access_and_a_plain_do_put() {
    let (_dir, server) = lake(1000).await;
    let mut w = server.client_as(WRITER.0, WRITER.1).await;
    // ADBC's "append" mode on a table that does not exist, and "create" on one that does.
    let err = w
        .execute_ingest(ingest_cmd("nothing_here", TableNotExistOption::Fail, TableExistsOption::Append), as_stream(clicks(0, 1, 1)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("nothing_here") && err.contains("create mode"), "{err}");
    let err = w
        .execute_ingest(ingest_cmd("orders", TableNotExistOption::Create, TableExistsOption::Fail), as_stream(clicks(0, 1, 1)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("orders exists"), "{err}");
    // persona's own tables are not ingest targets.
    let own = CommandStatementIngest { schema: Some("persona".into()), ..ingest_cmd("load_watermarks", TableNotExistOption::Fail, TableExistsOption::Append) };
    let err = w.execute_ingest(own, as_stream(clicks(0, 1, 1))).await.unwrap_err().to_string();
    assert!(err.contains("persona's own tables"), "{err}");
    // Columns that do not fit the table are refused by name.
    let err = w
        .execute_ingest(ingest_cmd("orders", TableNotExistOption::Fail, TableExistsOption::Append), as_stream(clicks(0, 1, 1)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("click_id"), "{err}");
    // Replace: one commit with the new rows; the old ones stay readable by time travel.
    let replaced = w
        .execute_ingest(ingest_cmd("orders", TableNotExistOption::Fail, TableExistsOption::Replace), as_stream(vec![orders_batch()]))
        .await
        .unwrap();
    assert_eq!(replaced, 1);
    assert_eq!(rows(&server, "SELECT order_id, customer_id FROM orders").await, ["9|c9"]);
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders VERSION AS OF 0").await), "3");

    // Anonymous clients may read, not ingest.
    let mut anonymous = server.client().await;
    let err = anonymous
        .execute_ingest(ingest_cmd("clicks", TableNotExistOption::Create, TableExistsOption::Append), as_stream(clicks(0, 1, 1)))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not allowed without write access"), "{err}");

    // A plain DoPut naming the table by path appends, creating the table on first use.
    let descriptor = FlightDescriptor::new_path(vec!["visits".into()]);
    let data = FlightDataEncoderBuilder::new()
        .with_flight_descriptor(Some(descriptor))
        .build(as_stream(clicks(0, 3, 2)))
        .map(|d| d.expect("encode"));
    let mut request = tonic::Request::new(data);
    let token = w.token().expect("token").clone();
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let results: Vec<_> = w.inner_mut().do_put(request).await.unwrap().into_inner().try_collect().await.unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&results[0].app_metadata).unwrap();
    assert_eq!(summary["rows"], 6);
    assert_eq!(scalar(&server.query("SELECT count(*) FROM visits").await), "6");
}

fn orders_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("order_id", DataType::Int64, true),
        Field::new("customer_id", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![9])),
            Arc::new(StringArray::from(vec!["c9"])),
            Arc::new(datafusion::arrow::array::Float64Array::from(vec![90.0])),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn a_pause_in_the_stream_commits_what_waits() {
    let (_dir, server) = lake_with(1000, 200).await;
    let mut w = server.client_as(WRITER.0, WRITER.1).await;
    let mut batches = clicks(0, 2, 3).into_iter();
    let (first, second) = (batches.next().unwrap(), batches.next().unwrap());
    // Three rows, then a pause longer than the latency, then three more: two commits although
    // far fewer than batch_rows rows arrived.
    let paced = futures::stream::once(async move { Ok(first) }).chain(futures::stream::once(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        Ok(second)
    }));
    assert_eq!(w.execute_ingest(ingest_cmd("clicks", TableNotExistOption::Create, TableExistsOption::Append), paced).await.unwrap(), 6);
    assert_eq!(scalar(&server.query("SELECT count(*) FROM clicks VERSION AS OF 0").await), "3");
    assert_eq!(scalar(&server.query("SELECT count(*) FROM clicks VERSION AS OF 1").await), "6");
}

#[tokio::test]
async fn dml_mistakes_fail_while_planning_and_write_nothing() {
    let (_dir, server) = lake(1000).await;
    let mut w = server.client_as(WRITER.0, WRITER.1).await;
    let refused = |sql: &'static str| {
        let server = &server;
        async move {
            let status = server.status_of_as(sql, WRITER).await;
            assert_eq!(status.code(), Code::InvalidArgument, "{sql}: {status:?}");
            status.message().to_string()
        }
    };
    // A misspelt column to set, to filter on, or to insert into.
    assert!(refused("UPDATE orders SET amout = 0").await.contains("`amout` is not a column"));
    assert!(refused("DELETE FROM orders WHERE nocol = 1").await.contains("nocol"));
    assert!(refused("UPDATE orders SET amount = 'abc' || nocol").await.contains("nocol"));
    let merge_typo = "MERGE INTO orders t USING (SELECT 1 AS order_id) s ON t.order_id = s.order_id \
                      WHEN NOT MATCHED THEN INSERT (order_idd) VALUES (s.order_id)";
    assert!(refused(merge_typo).await.contains("order_idd"));
    // What delta-rs cannot evaluate inside a write, and what would change INSERT's meaning.
    assert!(refused("DELETE FROM orders WHERE customer_id IN (SELECT customer_id FROM orders)").await.contains("subquery"));
    assert!(refused("INSERT OR REPLACE INTO orders VALUES (1, 'c1', 1.0)").await.contains("not supported"));
    // A query is not an update command.
    let err = w.execute_update("SELECT * FROM orders".into(), None).await.unwrap_err().to_string();
    assert!(err.contains("update command takes"), "{err}");
    // Nothing was written: the table is still at its first version.
    assert_eq!(scalar(&server.query("SELECT count(*) FROM orders").await), "3");
    assert_eq!(server.status_of("SELECT * FROM orders VERSION AS OF 1").await.code(), Code::NotFound);
    // A mixed-case column is found by its name in any case; a whole-table DELETE counts its rows.
    assert_eq!(row_strings(&query_with(&mut w, "UPDATE orders SET AMOUNT = 1 WHERE order_id = 1").await), ["1|1"]);
    assert_eq!(w.execute_update("DELETE FROM orders".into(), None).await.unwrap(), 3);
}

/// Column chunks of every Parquet file in `table`: (column name, has a dictionary page).
fn dictionary_pages(table: &std::path::Path) -> Vec<(String, bool)> {
    use deltalake::parquet::file::reader::{FileReader, SerializedFileReader};
    let mut out = Vec::new();
    for entry in std::fs::read_dir(table).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "parquet") {
            let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
            for group in reader.metadata().row_groups() {
                for chunk in group.columns() {
                    out.push((chunk.column_path().string(), chunk.dictionary_page_offset().is_some()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[tokio::test]
async fn ingested_ids_are_written_plain_and_repeated_values_with_a_dictionary() {
    let (dir, server) = lake(200_000).await;
    let mut w = server.client_as(WRITER.0, WRITER.1).await;
    let schema = Arc::new(Schema::new(vec![Field::new("event_id", DataType::Int64, false), Field::new("kind", DataType::Utf8, true)]));
    let batch = |from: i64| {
        let ids: Vec<i64> = (from..from + 100_000).collect();
        let kinds: Vec<Option<&str>> = ids.iter().map(|i| [Some("view"), Some("order"), None][(i % 3) as usize]).collect();
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(ids)), Arc::new(StringArray::from(kinds))]).unwrap()
    };
    // 400,000 rows in micro-batches of 200,000: the one that creates the table and an append.
    let cmd = ingest_cmd("events", TableNotExistOption::Create, TableExistsOption::Append);
    let sent: Vec<RecordBatch> = (0..4).map(|k| batch(k * 100_000)).collect();
    assert_eq!(w.execute_ingest(cmd, as_stream(sent)).await.unwrap(), 400_000);
    // 200,000 distinct ids a file would need a 1.6 MB dictionary, over the writer's 1 MiB page:
    // no dictionary is tried. The three kinds keep theirs.
    let pages = dictionary_pages(&dir.path().join("lakehouse/events"));
    assert_eq!(pages, [("event_id".to_string(), false), ("kind".to_string(), true)]);
    // Read back: sum of 0..400,000 = 399,999 * 400,000 / 2; i % 3 = 0 is a view, 2 is NULL.
    let got = rows(&server, "SELECT sum(event_id), count(DISTINCT event_id), count(kind), count(*) FILTER (WHERE kind = 'view') FROM events").await;
    assert_eq!(got, ["79999800000|400000|266667|133334"]);
    assert_eq!(scalar(&server.query("SELECT count(*) FROM events VERSION AS OF 0").await), "200000");
}
