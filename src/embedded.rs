//! The embedded default lakehouse: real Online Retail invoice lines as `events` and FEBRL4
//! person records as `profiles` from two source systems, built into Delta tables on first use.
//!
//! The source files are compiled into the binary (see `data/README.md` for provenance and
//! licences), so `persona serve` works from any directory. Materializing is idempotent: a table
//! that already exists is left alone, including rows other writers appended to it since. The
//! tables record their changes (`delta.enableChangeDataFeed = true`) from their first version.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use tracing::info;

use crate::config::{TableConfig, location_url};
use crate::error::{PersonaError, Result};

const RETAIL_2010_2011: &[u8] = include_bytes!("../data/online_retail.parquet");
const RETAIL_2009_2010: &[u8] = include_bytes!("../data/online_retail_ii_2009_2010.parquet");
const FEBRL4A: &[u8] = include_bytes!("../data/febrl4a.csv");
const FEBRL4B: &[u8] = include_bytes!("../data/febrl4b.csv");

/// The embedded tables, in the order they are built.
pub const TABLES: [&str; 2] = ["events", "profiles"];

/// Builds any embedded table missing under `data_dir/lakehouse` and returns all of them.
pub async fn materialize(data_dir: &Path) -> Result<Vec<TableConfig>> {
    let root = lakehouse_dir(data_dir);
    // delta-rs writes a plan only through a session that has its extension planner.
    let ctx = deltalake::delta_datafusion::create_session().into_inner();
    let mut registered = false;
    let mut tables = Vec::new();
    for name in TABLES {
        let dir = root.join(name);
        let url = location_url(&dir.to_string_lossy(), Path::new("")).map_err(PersonaError::Embedded)?;
        if !is_delta_table(&dir) {
            if !registered {
                register_sources(&ctx)?;
                registered = true;
            }
            build_table(&ctx, name, &dir, &url).await?;
        }
        tables.push(TableConfig { name: name.to_string(), url, storage_options: Default::default() });
    }
    Ok(tables)
}

/// Where the embedded lakehouse lives under a data directory.
pub fn lakehouse_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("lakehouse")
}

fn is_delta_table(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("_delta_log"))
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".json")))
        .unwrap_or(false)
}

async fn build_table(ctx: &SessionContext, name: &str, dir: &Path, url: &url::Url) -> Result<()> {
    let started = std::time::Instant::now();
    std::fs::create_dir_all(dir)?;
    let (sql, partition) = match name {
        "events" => (EVENTS_SQL, "event_month"),
        "profiles" => (PROFILES_SQL, "source"),
        other => return Err(PersonaError::Embedded(format!("no recipe for table {other}"))),
    };
    let df = ctx.sql(sql).await?;
    let table = DeltaTable::try_from_url(url.clone()).await.map_err(|e| PersonaError::delta(name, e))?;
    let written = table
        .write(Vec::<RecordBatch>::new())
        .with_input_plan(df.logical_plan().clone())
        .with_session_state(Arc::new(ctx.state()))
        .with_partition_columns([partition])
        // Like every table persona creates: changes are recorded, so `table_changes(...)` works.
        .with_configuration([("delta.enableChangeDataFeed".to_string(), Some("true".to_string()))])
        .with_save_mode(SaveMode::ErrorIfExists)
        .with_table_name(name)
        .await;
    match written {
        Ok(t) => {
            info!(table = name, version = ?t.version(), elapsed = ?started.elapsed(), "embedded table materialized");
            Ok(())
        }
        // Another persona process built it at the same moment: its commit is as good as ours.
        Err(_) if is_delta_table(dir) => Ok(()),
        Err(e) => Err(PersonaError::delta(name, e)),
    }
}

fn register_sources(ctx: &SessionContext) -> Result<()> {
    register(ctx, "retail_2009_2010", parquet_batches(RETAIL_2009_2010)?)?;
    register(ctx, "retail_2010_2011", parquet_batches(RETAIL_2010_2011)?)?;
    register(ctx, "febrl4a", csv_batches(FEBRL4A)?)?;
    register(ctx, "febrl4b", csv_batches(FEBRL4B)?)?;
    Ok(())
}

fn register(ctx: &SessionContext, name: &str, batches: Vec<RecordBatch>) -> Result<()> {
    let schema = batches
        .first()
        .map(RecordBatch::schema)
        .ok_or_else(|| PersonaError::Embedded(format!("{name}: no rows")))?;
    ctx.register_table(name, Arc::new(MemTable::try_new(schema, vec![batches])?))?;
    Ok(())
}

fn parquet_batches(bytes: &'static [u8]) -> Result<Vec<RecordBatch>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(Bytes::from_static(bytes))
        .map_err(|e| PersonaError::Embedded(e.to_string()))?
        .build()
        .map_err(|e| PersonaError::Embedded(e.to_string()))?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}

/// FEBRL files: every column a string, empty cells NULL (leading zeros in postcodes survive).
fn csv_batches(bytes: &'static [u8]) -> Result<Vec<RecordBatch>> {
    const COLUMNS: [&str; 11] = [
        "rec_id", "given_name", "surname", "street_number", "address_1", "address_2", "suburb",
        "postcode", "state", "date_of_birth", "soc_sec_id",
    ];
    let schema = Arc::new(Schema::new(COLUMNS.map(|c| Field::new(c, DataType::Utf8, true)).to_vec()));
    let reader = ReaderBuilder::new(schema).with_header(true).build(std::io::Cursor::new(bytes))?;
    Ok(reader.collect::<std::result::Result<Vec<_>, _>>()?)
}

/// One two-year stream: Online Retail II rows before 2010-12-01 then all of Online Retail (the
/// two UCI releases overlap on 2010-12-01..09). Invoice times are UK wall-clock time and are
/// converted to UTC (GMT in winter, BST in summer).
const EVENTS_SQL: &str = r#"
WITH lines AS (
    SELECT "Invoice" AS invoice_no, "StockCode" AS stock_code, "Description" AS description,
           "Quantity" AS quantity, "InvoiceDate" AS local_time, "Price" AS unit_price,
           "Customer ID" AS customer, "Country" AS country
    FROM retail_2009_2010
    WHERE "InvoiceDate" < TIMESTAMP '2010-12-01 00:00:00'
    UNION ALL
    SELECT "InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
           "CustomerID", "Country"
    FROM retail_2010_2011
), timed AS (
    SELECT *,
           arrow_cast(arrow_cast(local_time, 'Timestamp(Microsecond, Some("Europe/London"))'),
                      'Timestamp(Microsecond, Some("UTC"))') AS event_time
    FROM lines
)
SELECT event_time,
       CASE WHEN starts_with(invoice_no, 'C') THEN 'refund'
            WHEN starts_with(invoice_no, 'A') THEN 'adjustment'
            ELSE 'purchase' END AS event_type,
       CAST(customer AS VARCHAR) AS customer_id,
       invoice_no, stock_code, description,
       quantity, unit_price,
       CAST(quantity AS DOUBLE) * unit_price AS amount,
       'GBP' AS currency,
       country,
       to_char(event_time, '%Y-%m') AS event_month
FROM timed
ORDER BY event_time, invoice_no
"#;

/// FEBRL4 `a` records are the web shop's customers, `b` records the point of sale's. The link
/// from a person to an Online Retail customer is synthetic: FEBRL entity N is the N-th Online
/// Retail customer id in numeric order. E-mails are made from the (possibly misspelt) names.
const PROFILES_SQL: &str = r#"
WITH src AS (
    SELECT 'webshop' AS source, * FROM febrl4a
    UNION ALL
    SELECT 'pos' AS source, * FROM febrl4b
), numbered AS (
    SELECT *, CAST(regexp_replace(rec_id, '^rec-([0-9]+)-.*$', '${1}') AS BIGINT) AS entity FROM src
), customers AS (
    SELECT customer, row_number() OVER (ORDER BY customer) - 1 AS entity
    FROM (
        SELECT DISTINCT "Customer ID" AS customer FROM retail_2009_2010 WHERE "Customer ID" IS NOT NULL
        UNION
        SELECT DISTINCT "CustomerID" FROM retail_2010_2011 WHERE "CustomerID" IS NOT NULL
    )
)
SELECT n.source,
       CASE WHEN n.source = 'webshop' THEN CAST(c.customer AS VARCHAR)
            ELSE 'POS-' || lpad(CAST((n.entity * 7919 + 1237) % 100003 AS VARCHAR), 6, '0') END
           AS source_customer_id,
       n.given_name, n.surname,
       CASE WHEN n.given_name IS NULL AND n.surname IS NULL THEN NULL
            ELSE replace(lower(concat_ws('.', n.given_name, n.surname)), ' ', '') || '@' ||
                 CASE n.entity % 5 WHEN 0 THEN 'gmail.com' WHEN 1 THEN 'yahoo.co.uk'
                                   WHEN 2 THEN 'hotmail.com' WHEN 3 THEN 'outlook.com'
                                   ELSE 'btinternet.com' END
       END AS email,
       n.street_number, n.address_1, n.address_2, n.suburb, n.postcode, n.state,
       n.date_of_birth, n.soc_sec_id,
       CASE WHEN n.source = 'webshop' THEN n.entity % 10 <> 3 ELSE n.entity % 7 <> 2 END AS consent_email,
       -- Seconds since the epoch: 2011-12-09T12:00:00Z (webshop) and 2011-12-01T09:00:00Z (pos).
       arrow_cast(to_timestamp_seconds(CASE WHEN n.source = 'webshop'
                                            THEN 1323432000 - (n.entity % 700) * 86400
                                            ELSE 1322730000 - ((n.entity * 13) % 500) * 86400 END),
                  'Timestamp(Microsecond, Some("UTC"))') AS updated_at
FROM numbered n
LEFT JOIN customers c ON c.entity = n.entity
ORDER BY n.source, source_customer_id
"#;
