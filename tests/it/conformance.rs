//! Reader conformance over the shared delta-golden tables (written by Spark, Databricks and
//! delta-rs). Each table with an expected answer is read through persona's Flight SQL server and
//! compared: with the generator's own `expected/` Parquet (read by DataFusion's plain Parquet
//! reader, not the Delta reader), or with the values MANIFEST.md quotes from the source repos'
//! tests. Tables persona cannot read are listed in `CASES` with the reason.

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use persona::config::{TableConfig, location_url};

use crate::fixture::{TestServer, shared_data};

enum Expect {
    /// The full scan equals `expected/` (or `expected/latest/table_content/`), ignoring row order;
    /// the listed columns are compared by a `Rows` check instead (documented policy differences).
    Spark { skip: &'static [&'static str] },
    /// `SELECT` over the table (named `t`) gives exactly these rows, as `a|b` text.
    Rows(&'static str, &'static [&'static str]),
    /// persona cannot read the table: why, and a piece of the error a scan must give.
    Unreadable { why: &'static str, error: &'static str },
}

struct Case {
    table: &'static str,
    expect: &'static [Expect],
}

const CASES: &[Case] = &[
    Case {
        table: "data-reader-partition-values",
        expect: &[
            Expect::Spark { skip: &["as_timestamp"] },
            // Policy: a zone-less timestamp partition value is read as UTC (as delta-rs and
            // delta-kernel-rs do); Spark wrote it in America/Los_Angeles and expects 18:11:11Z.
            Expect::Rows(
                "SELECT CAST(as_timestamp AS VARCHAR) FROM t ORDER BY value",
                &["2021-09-08T11:11:11Z", "2021-09-08T11:11:11Z", "∅"],
            ),
        ],
    },
    Case { table: "data-reader-escaped-chars", expect: &[Expect::Spark { skip: &[] }] },
    Case {
        table: "delta-0.8.0-special-partition",
        expect: &[Expect::Rows("SELECT x, y FROM t ORDER BY y", &["A/A|1", "B B|2"])],
    },
    Case { table: "dat-multi_partitioned", expect: &[Expect::Spark { skip: &[] }] },
    Case { table: "kernel-timestamp-int96", expect: &[Expect::Spark { skip: &[] }] },
    Case {
        table: "timestamp-partitioned-table",
        expect: &[Expect::Rows(
            "SELECT id, x, s = '' AS s_is_empty, CAST(time AS VARCHAR) FROM t",
            &["1|0.5|true|1971-07-22T03:06:40Z"],
        )],
    },
    Case { table: "data-reader-timestamp_ntz", expect: &[Expect::Spark { skip: &[] }] },
    Case {
        table: "checkpoint",
        expect: &[Expect::Unreadable {
            why: "log-replay-only table: its add actions point at fake files named 0..15, so no reader can scan it",
            error: "15",
        }],
    },
    Case { table: "basic-with-inserts-deletes-checkpoint", expect: &[Expect::Spark { skip: &[] }] },
    Case { table: "multi-part-checkpoint", expect: &[Expect::Spark { skip: &[] }] },
    Case { table: "v2-checkpoint-parquet", expect: &[Expect::Spark { skip: &[] }] },
    Case {
        table: "v2-checkpoints-json-with-sidecars",
        expect: &[Expect::Rows("SELECT count(*), count(DISTINCT id), max(id) FROM t", &["1233|1000|999"])],
    },
    Case {
        table: "python-0.25.5-checkpoint",
        expect: &[Expect::Rows("SELECT x FROM t ORDER BY x", &["1", "1", "2", "2", "3", "3"])],
    },
    Case { table: "table-with-columnmapping-mode-name", expect: &[Expect::Spark { skip: &[] }] },
    Case { table: "table-with-columnmapping-mode-id", expect: &[Expect::Spark { skip: &[] }] },
    Case { table: "dv-partitioned-with-checkpoint", expect: &[Expect::Spark { skip: &[] }] },
    Case { table: "dv-with-columnmapping", expect: &[Expect::Spark { skip: &[] }] },
    Case {
        table: "with-short-dv",
        expect: &[Expect::Rows(
            "SELECT id, value, rand FROM t ORDER BY id",
            &[
                "3|3|0.7918174793484931",
                "4|4|0.9281049271981882",
                "5|5|0.27796520310701633",
                "6|6|0.15263801464228832",
                "7|7|0.1981143710215575",
                "8|8|0.3069439236599195",
                "9|9|0.5175919190815845",
            ],
        )],
    },
    Case {
        table: "compacted-log-files-table",
        expect: &[Expect::Rows(
            "SELECT id, comment FROM t ORDER BY id",
            &["0|new", "1|after-large-delete", "2|", "10|merge1-insert", "12|merge2-insert"],
        )],
    },
    Case {
        table: "cdf-table",
        expect: &[Expect::Rows(
            "SELECT id, name, CAST(birthday AS VARCHAR) FROM t ORDER BY id",
            &[
                "1|Steve|2023-12-22",
                "2|Bob|2023-12-22",
                "3|Dave|2023-12-22",
                "4|Kate|2023-12-22",
                "5|Emily|2023-12-29",
                "6|Carl|2023-12-29",
                "8|Claire|2023-12-25",
                "9|Ada|2023-12-25",
                "10|Borb|2023-12-25",
            ],
        )],
    },
    Case { table: "time-travel-schema-changes-b", expect: &[Expect::Spark { skip: &[] }] },
    Case { table: "dat-with_schema_change", expect: &[Expect::Spark { skip: &[] }] },
    Case {
        table: "type-widening",
        // Values to expect once it reads (MANIFEST.md): byte_long 1 / 9223372036854775807,
        // decimal_decimal_greater_scale 67.89000 / 12345678901.23456, date_timestamp_ntz
        // 2024-09-09T00:00:00 / 2024-09-09T12:34:56.123456.
        expect: &[Expect::Unreadable {
            why: "requires the typeWidening-preview reader feature, which deltalake 1.1 refuses",
            error: "TypeWideningPreview",
        }],
    },
    Case { table: "decimal-various-scale-precision", expect: &[Expect::Spark { skip: &[] }] },
    Case { table: "data-reader-map", expect: &[Expect::Spark { skip: &[] }] },
];

#[tokio::test]
async fn golden_tables_read_as_their_writers_expect() {
    let root = shared_data().join("delta-golden");
    let mut correct = 0;
    let mut failures = Vec::new();
    let mut unreadable = Vec::new();
    for case in CASES {
        if let [Expect::Unreadable { why, error }] = case.expect {
            let message = scan_error(&root, case.table).await;
            assert!(message.contains(error), "{}: expected a scan error mentioning {error}, got {message:?}", case.table);
            unreadable.push(format!("{} ({why})", case.table));
            continue;
        }
        match check(&root, case).await {
            Ok(()) => correct += 1,
            Err(why) => failures.push(format!("{}: {why}", case.table)),
        }
    }
    eprintln!(
        "delta-golden conformance: {correct}/{} tables with expectations read correctly; not readable: {unreadable:?}",
        CASES.len()
    );
    assert!(failures.is_empty(), "{} table(s) differ:\n{}", failures.len(), failures.join("\n"));
}

async fn serve(root: &std::path::Path, table: &str) -> Result<TestServer, String> {
    let dir = root.join(table).join("delta");
    assert!(dir.is_dir(), "{} is missing: the shared data sets must sit beside the clone", dir.display());
    let url = location_url(&dir.to_string_lossy(), std::path::Path::new("")).unwrap();
    // Opening fails for tables whose log persona cannot replay; report it as a difference.
    TestServer::try_start(&[TableConfig { name: "t".into(), url, storage_options: Default::default() }])
        .await
        .map_err(|e| format!("open: {e}"))
}

/// The error a full scan of an unreadable table gives, wherever it surfaces (open, plan, stream).
async fn scan_error(root: &std::path::Path, table: &str) -> String {
    let server = match serve(root, table).await {
        Ok(server) => server,
        Err(e) => return e,
    };
    match query(&server, "SELECT * FROM t").await {
        Ok(batches) => panic!("{table} is listed as unreadable but gave {} batches", batches.len()),
        Err(e) => e,
    }
}

async fn check(root: &std::path::Path, case: &Case) -> Result<(), String> {
    let server = serve(root, case.table).await?;
    for expect in case.expect {
        match expect {
            Expect::Spark { skip } => {
                let expected_dir = spark_expected_dir(&root.join(case.table));
                let expected = SessionContext::new()
                    .read_parquet(expected_dir.to_string_lossy().as_ref(), ParquetReadOptions::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?;
                let ours = query(&server, "SELECT * FROM t").await?;
                let (want_cols, want) = canonical(&expected, skip);
                let (got_cols, got) = canonical(&ours, skip);
                if want_cols != got_cols {
                    return Err(format!("columns {got_cols:?}, expected {want_cols:?}"));
                }
                if want != got {
                    return Err(format!("{} rows differ; expected {want:?}, got {got:?}", want.len().max(got.len())));
                }
            }
            Expect::Rows(sql, rows) => {
                let got = row_strings_null_aware(&query(&server, sql).await?);
                if got != *rows {
                    return Err(format!("`{sql}` gave {got:?}, expected {rows:?}"));
                }
            }
            Expect::Unreadable { .. } => unreachable!("unreadable tables are checked by scan_error"),
        }
    }
    Ok(())
}

async fn query(server: &TestServer, sql: &str) -> Result<Vec<RecordBatch>, String> {
    let mut client = server.client().await;
    let info = client.execute(sql.to_string(), None).await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for endpoint in info.endpoint {
        let stream = client.do_get(endpoint.ticket.unwrap()).await.map_err(|e| e.to_string())?;
        out.extend(futures::TryStreamExt::try_collect::<Vec<_>>(stream).await.map_err(|e| e.to_string())?);
    }
    Ok(out)
}

fn spark_expected_dir(table: &std::path::Path) -> std::path::PathBuf {
    let dat = table.join("expected/latest/table_content");
    if dat.is_dir() { dat } else { table.join("expected") }
}

/// Columns sorted by name and rows sorted, each value as text; timestamps compared as UTC
/// instants at microsecond precision whatever unit or zone label each side uses.
fn canonical(batches: &[RecordBatch], skip: &[&str]) -> (Vec<String>, Vec<String>) {
    let Some(first) = batches.first() else { return (Vec::new(), Vec::new()) };
    let schema = first.schema();
    let mut columns: Vec<(String, usize)> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| !skip.contains(&f.name().as_str()))
        .map(|(i, f)| (f.name().clone(), i))
        .collect();
    columns.sort();
    let mut rows = Vec::new();
    for batch in batches {
        let arrays: Vec<ArrayRef> = columns.iter().map(|(_, i)| normalize(batch.column(*i))).collect();
        for r in 0..batch.num_rows() {
            rows.push(arrays.iter().map(|a| cell(a, r)).collect::<Vec<_>>().join("|"));
        }
    }
    rows.sort();
    (columns.into_iter().map(|(n, _)| n).collect(), rows)
}

fn normalize(array: &ArrayRef) -> ArrayRef {
    match array.data_type() {
        DataType::Timestamp(_, _) => cast(array, &DataType::Timestamp(TimeUnit::Microsecond, None)).unwrap(),
        DataType::Dictionary(_, value) => cast(array, value).unwrap(),
        DataType::Utf8View | DataType::LargeUtf8 => cast(array, &DataType::Utf8).unwrap(),
        DataType::BinaryView | DataType::LargeBinary => cast(array, &DataType::Binary).unwrap(),
        _ => array.clone(),
    }
}

fn cell(array: &ArrayRef, row: usize) -> String {
    if array.is_null(row) { "∅".to_string() } else { array_value_to_string(array, row).unwrap() }
}

/// Like the fixture's `row_strings`, but NULL and "" stay apart.
fn row_strings_null_aware(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        for r in 0..b.num_rows() {
            out.push(b.columns().iter().map(|c| cell(c, r)).collect::<Vec<_>>().join("|"));
        }
    }
    out
}
