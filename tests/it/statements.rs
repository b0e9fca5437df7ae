//! Statement queries over Flight SQL on the embedded lakehouse. Expected figures come from the
//! Online Retail data set's own README (row counts, checksums, first row) and from the raw
//! Parquet read by DuckDB, not from persona.

use datafusion::arrow::datatypes::{DataType, TimeUnit};

use crate::fixture::{TestServer, row_count, scalar};

#[tokio::test]
async fn events_hold_both_years_without_the_overlap() {
    let server = TestServer::embedded().await;
    // 502,938 Online Retail II rows before 2010-12-01 + 541,909 Online Retail rows.
    assert_eq!(scalar(&server.query("SELECT count(*) FROM events").await), "1044847");
    // The Online Retail (2010-2011) part keeps the checksums its README gives.
    let from_dec_2010 = "FROM events WHERE event_time >= TIMESTAMP '2010-12-01T00:00:00Z'";
    assert_eq!(scalar(&server.query(&format!("SELECT sum(quantity) {from_dec_2010}")).await), "5176450");
    assert_eq!(scalar(&server.query(&format!("SELECT round(sum(amount), 2) {from_dec_2010}")).await), "9747747.93");
    assert_eq!(scalar(&server.query(&format!("SELECT count(DISTINCT invoice_no) {from_dec_2010}")).await), "25900");
}

#[tokio::test]
async fn invoice_times_are_converted_from_uk_time_to_utc() {
    let server = TestServer::embedded().await;
    // First row of Online Retail: 2010-12-01 08:26 in London, GMT in winter.
    let winter = server
        .query("SELECT CAST(event_time AS VARCHAR), quantity, unit_price, customer_id, country FROM events WHERE invoice_no = '536365' AND stock_code = '85123A'")
        .await;
    let row = crate::fixture::row_strings(&winter);
    assert_eq!(row, vec!["2010-12-01T08:26:00Z|6|2.55|17850|United Kingdom"]);
    // Invoice 558638 was written at 08:16 on 2011-07-01 in London, BST (UTC+1).
    let summer = server.query("SELECT DISTINCT CAST(event_time AS VARCHAR) FROM events WHERE invoice_no = '558638'").await;
    assert_eq!(scalar(&summer), "2011-07-01T07:16:00Z");
}

#[tokio::test]
async fn large_results_stream_in_many_batches_as_utf8() {
    let server = TestServer::embedded().await;
    let batches = server.query("SELECT * FROM events").await;
    assert_eq!(row_count(&batches), 1_044_847);
    assert!(batches.len() > 10, "a million rows came as {} batch(es)", batches.len());
    let schema = batches[0].schema();
    assert_eq!(schema.field_with_name("event_time").unwrap().data_type(), &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
    for name in ["customer_id", "invoice_no", "description", "event_month", "country"] {
        assert_eq!(schema.field_with_name(name).unwrap().data_type(), &DataType::Utf8, "{name}");
    }
}

#[tokio::test]
async fn partition_values_arrive_decoded() {
    let server = TestServer::embedded().await;
    let batches = server.query("SELECT source, count(*) AS n FROM profiles GROUP BY source ORDER BY source").await;
    assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Utf8);
    assert_eq!(crate::fixture::row_strings(&batches), vec!["pos|5000", "webshop|5000"]);
}

#[tokio::test]
async fn empty_results_still_carry_their_schema() {
    let server = TestServer::embedded().await;
    let mut client = server.client().await;
    let info = client
        .execute("SELECT customer_id, event_time, amount FROM events WHERE customer_id = 'nobody'".into(), None)
        .await
        .unwrap();
    let announced = info.clone().try_decode_schema().unwrap();
    assert_eq!(announced.fields().len(), 3);
    let batches = crate::fixture::fetch(&mut client, info).await;
    assert_eq!(row_count(&batches), 0);
    // The stream itself must carry the schema even with no rows.
    let mut client = server.client().await;
    let info = client.execute("SELECT customer_id FROM events WHERE false".into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let mut stream = client.do_get(ticket).await.unwrap();
    use futures::StreamExt;
    assert!(stream.next().await.is_none());
    let schema = stream.schema().expect("schema sent before the end of the stream");
    assert_eq!(schema.field(0).name(), "customer_id");
    assert_eq!(schema.field(0).data_type(), &DataType::Utf8);
}

#[tokio::test]
async fn webshop_profiles_join_real_event_customers() {
    let server = TestServer::embedded().await;
    let joined = server
        .query("SELECT count(DISTINCT p.source_customer_id) FROM profiles p JOIN events e ON e.customer_id = p.source_customer_id WHERE p.source = 'webshop'")
        .await;
    // Every one of the 5,000 web-shop profiles is one of the 5,942 Online Retail customers.
    assert_eq!(scalar(&joined), "5000");
}

#[tokio::test]
async fn shipped_sql_files_run_on_the_embedded_data() {
    // The shipped folder as `persona check` and `persona segments run` see it, over the
    // embedded tables, with run records in a scratch folder.
    let scratch = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut toml = format!("data_dir = {:?}\nsql_dir = {:?}\n[tables]\n", scratch.path().display().to_string(), root.display().to_string());
    for t in crate::fixture::embedded_tables() {
        toml.push_str(&format!("{} = {:?}\n", t.name, t.url.to_string()));
    }
    let config = persona::config::Config::from_toml(&toml, scratch.path()).unwrap();
    let project = persona::runs::project::Project::load(&root).unwrap();
    assert!(project.errors.is_empty(), "{:?}", project.errors);
    assert_eq!((project.segments.len(), project.checks.len()), (7, 12));

    let ctx = persona::server::open(&config).await.unwrap();
    // The embedded lakehouse is served with its identity tables built; build them here too.
    persona::identity::job::run(&ctx, scratch.path(), &config.identity).await.unwrap();
    let runs = persona::server::runs(&config, &ctx, persona::runs::Trigger::Cli);
    let results = persona::runs::checks::run(&runs, &[]).await.unwrap();
    assert_eq!(results.len(), 12);
    for r in &results {
        match r.severity {
            // Blocking checks describe the shipped data: they pass.
            Some(persona::runs::definition::Severity::Error) => assert_eq!(r.status.as_str(), "pass", "{}: {}", r.name, r.message),
            // Warnings may flag real quirks of the data (the history ends in 2011); they run.
            _ => assert!(matches!(r.status.as_str(), "pass" | "warn"), "{}: {}", r.name, r.message),
        }
    }
    for segment in &project.segments {
        let outcome = persona::runs::segments::run(&runs, &segment.name).await.unwrap();
        assert_eq!(outcome.status, "published", "{}: {:?}", segment.name, outcome.message);
        assert!(outcome.members.unwrap_or_default() > 0, "{} selects nobody", segment.name);
    }
}

#[tokio::test]
async fn distinct_counts_of_expressions_are_planned_in_two_phases() {
    let server = TestServer::embedded().await;
    let sql = "SELECT customer_id, count(DISTINCT CASE WHEN event_type = 'purchase' THEN invoice_no END) AS orders, \
               max(CASE WHEN event_type = 'purchase' THEN event_time END) AS last_purchase, \
               sum(amount) AS spend FROM events GROUP BY customer_id";
    // Two aggregates, the inner one grouping by the distinct value: without persona's rule the
    // Utf8View literal's alias (on the DISTINCT count and on the max beside it) keeps DataFusion
    // from this plan (src/optimizer.rs).
    let plan = crate::fixture::row_strings(&server.query(&format!("EXPLAIN {sql}")).await).join("\n");
    assert!(plan.contains("count(alias1)") && plan.contains(" AS alias1]]"), "{plan}");
    // Same rows as the query written by hand in the two-phase form.
    let by_hand = "SELECT customer_id, count(o) AS orders, max(l) AS last_purchase, sum(s) AS spend FROM (SELECT customer_id, \
                   CASE WHEN event_type = 'purchase' THEN invoice_no END AS o, \
                   max(CASE WHEN event_type = 'purchase' THEN event_time END) AS l, sum(amount) AS s FROM events GROUP BY 1, 2) GROUP BY 1";
    let ordered = |q: &str| format!("SELECT customer_id, orders, last_purchase, round(spend, 4) FROM ({q}) ORDER BY customer_id NULLS FIRST");
    let got = crate::fixture::row_strings(&server.query(&ordered(sql)).await);
    assert_eq!(got, crate::fixture::row_strings(&server.query(&ordered(by_hand)).await));
    assert!(got.len() > 5000);
}

#[tokio::test]
async fn data_anchored_windows_reach_the_delta_scan() {
    // The shipped segments' shape: a window ending at the newest event (src/planner.rs).
    let scratch = tempfile::tempdir().unwrap();
    let mut tables = "[tables]\n".to_string();
    for t in crate::fixture::embedded_tables() {
        tables.push_str(&format!("{} = {:?}\n", t.name, t.url.to_string()));
    }
    let config = crate::fixture::config_in(scratch.path(), &tables);
    let ctx = persona::server::open(&config).await.unwrap();
    let windowed = "WITH bounds AS (SELECT max(event_time) AS latest FROM events) \
                    SELECT e.customer_id, sum(e.amount) AS spend FROM events e CROSS JOIN bounds b \
                    WHERE e.customer_id IS NOT NULL AND e.event_time > b.latest - INTERVAL '90 days' \
                    GROUP BY e.customer_id";
    let plan = ctx.sql(windowed).await.unwrap().create_physical_plan().await.unwrap();
    let text = datafusion::physical_plan::displayable(plan.as_ref()).indent(true).to_string();
    // No join is left: the newest event (2011-12-09 12:50 UTC) minus 90 days is a constant,
    // 2011-09-10 12:50 UTC = 1,315,659,000,000,000 us since the epoch, and it reaches the scan.
    assert!(!text.contains("JoinExec"), "{text}");
    assert!(text.contains("event_time@0 > 1315659000000000"), "{text}");
    // So the Delta scan reads only the months the window touches (partitioned by month).
    assert!(text.contains("event_month=2011-09/") && text.contains("event_month=2011-12/"), "{text}");
    assert!(!text.contains("event_month=2011-08/") && !text.contains("event_month=2010-"), "{text}");
    // The same customers and sums as the window written by hand as a literal.
    let by_hand = "SELECT customer_id, sum(amount) AS spend FROM events \
                   WHERE customer_id IS NOT NULL AND event_time > TIMESTAMP '2011-09-10T12:50:00Z' GROUP BY customer_id";
    let ordered = |q: &str| format!("SELECT customer_id, spend FROM ({q}) ORDER BY customer_id");
    let rows = |batches: Vec<arrow::array::RecordBatch>| crate::fixture::row_strings(&batches);
    // Sums are compared as numbers: the order a parallel scan adds in can turn 0.0 into -0.0.
    let parsed = |rows: Vec<String>| -> Vec<(String, f64)> {
        rows.iter()
            .map(|r| {
                let (id, spend) = r.split_once('|').expect("two columns");
                (id.to_string(), spend.parse().expect("a number"))
            })
            .collect()
    };
    let folded = parsed(rows(ctx.sql(&ordered(windowed)).await.unwrap().collect().await.unwrap()));
    let expected = parsed(rows(ctx.sql(&ordered(by_hand)).await.unwrap().collect().await.unwrap()));
    assert_eq!(folded.len(), expected.len());
    for ((id, spend), (want_id, want)) in folded.iter().zip(&expected) {
        assert!(id == want_id && (spend - want).abs() < 1e-6, "{id} {spend} against {want_id} {want}");
    }
    assert!(folded.len() > 1000, "{} customers", folded.len());
}

#[tokio::test]
async fn the_parquet_page_index_is_off_unless_configured() {
    // persona's one default that differs from DataFusion's (src/session.rs); `[datafusion]` wins.
    let catalog = persona::catalog::build(crate::fixture::embedded_tables(), &[]).await.unwrap();
    let ctx = persona::session::build(catalog.clone(), &Default::default()).unwrap();
    assert!(!ctx.state().config().options().execution.parquet.enable_page_index);
    let settings = [("datafusion.execution.parquet.enable_page_index".to_string(), "true".to_string())].into_iter().collect();
    let ctx = persona::session::build(catalog, &settings).unwrap();
    assert!(ctx.state().config().options().execution.parquet.enable_page_index);
}

#[tokio::test]
async fn delta_scans_filter_rows_above_the_reader_unless_row_filters_are_on() {
    // src/catalog/scan.rs: by default a data-column filter runs once, above the Parquet reader.
    let events = crate::fixture::embedded_tables().iter().find(|t| t.name == "events").unwrap();
    let table = deltalake::open_table(events.url.clone()).await.unwrap();
    let filtered = "SELECT count(*), sum(quantity) FROM t WHERE event_type = 'purchase' AND quantity > 5";
    // The same figures without a filter to push anywhere: every row read, the condition counted.
    let counted = "SELECT count(*) FILTER (WHERE event_type = 'purchase' AND quantity > 5), \
                   sum(CASE WHEN event_type = 'purchase' AND quantity > 5 THEN quantity END) FROM t";
    let mut answers = Vec::new();
    for row_filters in [false, true] {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_table("t", persona::catalog::scan::provider_with(&table, row_filters).await.unwrap()).unwrap();
        let plan = ctx.sql(filtered).await.unwrap().create_physical_plan().await.unwrap();
        let text = datafusion::physical_plan::displayable(plan.as_ref()).indent(true).to_string();
        // With row filters the reader takes the whole filter and DataFusion drops its own.
        assert_eq!(text.contains("FilterExec"), !row_filters, "{text}");
        let rows = |batches: Vec<arrow::array::RecordBatch>| crate::fixture::row_strings(&batches);
        let got = rows(ctx.sql(filtered).await.unwrap().collect().await.unwrap());
        assert_eq!(got, rows(ctx.sql(counted).await.unwrap().collect().await.unwrap()));
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1]);
    assert_ne!(answers[0], ["0|"]);
}

#[tokio::test]
async fn per_customer_windows_run_in_one_pass_over_the_sorted_rows() {
    // src/windows.rs: top_spenders_per_country's windows (a whole-partition sum and two
    // row_numbers) leave DataFusion's per-partition window operators; a running sum keeps them.
    let server = TestServer::embedded().await;
    let explain = |sql: String| {
        let server = &server;
        async move { crate::fixture::row_strings(&server.query(&format!("EXPLAIN {sql}")).await).join("\n") }
    };
    let segment = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/segments/top_spenders_per_country.sql")).unwrap();
    let plan = explain(segment).await;
    assert_eq!(plan.matches("OnePassWindowExec").count(), 3, "{plan}");
    assert!(!plan.contains("WindowAggExec"), "{plan}");
    let running = explain("SELECT customer_id, sum(amount) OVER (PARTITION BY customer_id ORDER BY event_time) FROM events".into()).await;
    assert!(running.contains("BoundedWindowAggExec") && !running.contains("OnePassWindowExec"), "{running}");
}
