//! `persona resolve`: profiles in, identity tables out.
//!
//! Reads `public.profiles` (any table with `source`, `source_customer_id` and some of the
//! columns the identity rules use), resolves it, and writes four Delta tables under
//! `<data_dir>/persona/`: `identity_links` (one row per profile with its master id),
//! `identity_pairs` (every linked pair with its probability and blocking rule),
//! `identity_aliases` (ids merged into older ones) and `customers` (one golden record per master
//! id, built with the survivorship aggregates). Each run is one new version of each table.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;

use super::master::{self, Key};
use super::{Link, Settings, profiles, resolve};
use crate::config::TableConfig;
use crate::store;
use crate::error::{PersonaError, Result};

pub use store::{CUSTOMERS, IDENTITY_ALIASES as ALIASES, IDENTITY_LINKS as LINKS, IDENTITY_PAIRS as PAIRS};

#[derive(Debug, Clone)]
pub struct Summary {
    pub profiles: usize,
    pub candidate_pairs: usize,
    pub links: usize,
    pub master_ids: usize,
    pub new_ids: usize,
    pub aliases: usize,
    /// Default rules left out because the profiles lack their columns.
    pub skipped_rules: Vec<String>,
    pub elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "resolved {} profiles: {} candidate pairs, {} links, {} master customer ids ({} new, {} merged into older ids) in {:.2}s",
            self.profiles, self.candidate_pairs, self.links, self.master_ids, self.new_ids, self.aliases, self.elapsed.as_secs_f64()
        )
    }
}

/// The identity tables that exist under `data_dir`.
pub fn existing_tables(data_dir: &Path) -> Result<Vec<TableConfig>> {
    [LINKS, PAIRS, ALIASES, CUSTOMERS]
        .into_iter()
        .filter(|name| store::exists(data_dir, name))
        .map(|name| store::location(data_dir, name))
        .collect()
}

/// One resolution at a time: a second run (another CLI process aside) waits for the first, so
/// two runs never hand out the same new id.
static RUNNING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Resolves the profiles the session serves and writes the identity tables.
pub async fn run(ctx: &SessionContext, data_dir: &Path, settings: &Settings) -> Result<Summary> {
    let _one_at_a_time = RUNNING.lock().await;
    let started = Instant::now();
    let profiles = ctx.table("public.profiles").await.map_err(|e| {
        PersonaError::TableNotFound(format!("identity resolution reads the table `profiles`: {}", e.strip_backtrace()))
    })?;
    let schema = profiles.schema().as_arrow().clone();
    for required in ["source", "source_customer_id"] {
        if schema.field_with_name(required).is_err() {
            return Err(PersonaError::InvalidArgument(format!("public.profiles has no `{required}` column")));
        }
    }
    // The table is read once, each row numbered by its place in what was read: the golden
    // records find a resolved profile's row by that number (keys can repeat or be NULL).
    // `profiles::load` returns the rows in a fixed order, by (source, source_customer_id) and
    // then that number: the sample of random pairs u is estimated from (and the cluster-size
    // guard) depend on row positions, and without it re-running on unchanged input could move
    // a borderline pair across the threshold and change ids.
    let batches = profiles.collect().await?;
    let (numbered_schema, numbered) = numbered(&schema, &batches)?;
    let read = ctx.read_table(Arc::new(MemTable::try_new(numbered_schema, vec![numbered])?))?;
    let loaded = profiles::load(read, settings, Some("source"), &["source", "source_customer_id", ROW]).await?;
    let keys: Vec<Key> = (0..loaded.len)
        .map(|i| (loaded.carried[0].value(i).to_string(), loaded.carried[1].value(i).to_string()))
        .collect();
    let rows: Vec<usize> = (0..loaded.len)
        .map(|i| loaded.carried[2].value(i).parse::<usize>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| PersonaError::Io(std::io::Error::other(format!("identity: a row number came back unreadable: {e}"))))?;

    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "identity profiles loaded");
    let previous = previous_ids(data_dir).await?;
    let resolution = resolve(&loaded, settings);
    let assignment = master::assign(&keys, &resolution.clusters, &previous);

    // Each profile's strongest link: its score and the rule that found it.
    let mut best: Vec<Option<(f64, usize)>> = vec![None; loaded.len];
    for l in &resolution.links {
        for k in [l.i as usize, l.j as usize] {
            if best[k].is_none_or(|(p, _)| l.probability > p) {
                best[k] = Some((l.probability, l.rule));
            }
        }
    }
    let rule_names: Vec<&str> = loaded.rules.iter().map(|r| r.name.as_str()).collect();
    let links = links_batch(&keys, &assignment.ids, &best, &rule_names)?;
    let pairs = pairs_batch(&keys, &resolution.links, &rule_names)?;
    let masters: std::collections::HashSet<&String> = assignment.ids.iter().collect();
    let summary = Summary {
        profiles: loaded.len,
        candidate_pairs: resolution.candidate_pairs,
        links: resolution.links.len(),
        master_ids: masters.len(),
        new_ids: assignment.new_ids,
        aliases: assignment.aliases.len(),
        skipped_rules: loaded.skipped.clone(),
        elapsed: Duration::ZERO,
    };
    // The resolver's columns and pairs are done with: free them before the golden records'
    // aggregation, the other big user of memory (a million profiles: 1.4 GB less at the peak).
    drop(masters);
    drop(rule_names);
    drop((best, resolution, previous, loaded, keys));
    let by_person = profiles_by_person(&schema, batches, &rows, &assignment.ids)?;
    drop(rows);
    let new_aliases = assignment.aliases;
    let delta_ctx = deltalake::delta_datafusion::create_session().into_inner();
    // One partition: the profiles arrive ordered by person (`profiles_by_person`), and the
    // golden records' GROUP BY then finishes one person at a time instead of holding half a
    // million people's survivorship states at once (a million profiles: 1.7 GB at the peak).
    delta_ctx.state_ref().write().config_mut().options_mut().execution.target_partitions = 1;
    persona_udfs::register_all(&delta_ctx)?;
    delta_ctx.register_batch("links", links)?;
    delta_ctx.register_batch("pairs", pairs)?;
    let person_order = vec![vec![datafusion::prelude::col(PERSON).sort(true, false)]];
    let by_person = MemTable::try_new(by_person.0, vec![by_person.1])?.with_sort_order(person_order);
    delta_ctx.register_table("profiles", Arc::new(by_person))?;

    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "identity resolved; writing the tables");
    write(&delta_ctx, data_dir, LINKS, "SELECT * FROM links", SaveMode::Overwrite).await?;
    write(&delta_ctx, data_dir, PAIRS, "SELECT * FROM pairs", SaveMode::Overwrite).await?;
    delta_ctx.deregister_table("pairs")?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "identity links and pairs written");
    let aliases = aliases_batch(&new_aliases)?;
    delta_ctx.register_batch("new_aliases", aliases)?;
    write(&delta_ctx, data_dir, ALIASES, "SELECT * FROM new_aliases", SaveMode::Append).await?;
    write(&delta_ctx, data_dir, CUSTOMERS, &golden_record_sql(&schema), SaveMode::Overwrite).await?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "identity golden records written");

    Ok(Summary { elapsed: started.elapsed(), ..summary })
}

/// The master id each profile had after the last run.
async fn previous_ids(data_dir: &Path) -> Result<HashMap<Key, String>> {
    if !store::exists(data_dir, LINKS) {
        return Ok(HashMap::new());
    }
    let table = DeltaTable::try_from_url(store::location(data_dir, LINKS)?.url).await.map_err(|e| PersonaError::delta(LINKS, e))?;
    let ctx = SessionContext::new();
    ctx.register_table("links", crate::catalog::scan::provider(&table).await?)?;
    let batches = ctx.sql("SELECT source, source_customer_id, master_customer_id FROM links").await?.collect().await?;
    let mut previous = HashMap::new();
    for b in &batches {
        let cols: Vec<_> = (0..3).map(|i| cast(b.column(i), &DataType::Utf8)).collect::<std::result::Result<_, _>>()?;
        for row in 0..b.num_rows() {
            let value = |i: usize| cols[i].as_string::<i32>().value(row).to_string();
            previous.insert((value(0), value(1)), value(2));
        }
    }
    Ok(previous)
}

fn links_batch(keys: &[Key], ids: &[String], best: &[Option<(f64, usize)>], rules: &[&str]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("source_customer_id", DataType::Utf8, false),
        Field::new("master_customer_id", DataType::Utf8, false),
        Field::new("score", DataType::Float64, true),
        Field::new("rule", DataType::Utf8, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(keys.iter().map(|k| k.0.as_str()))),
            Arc::new(StringArray::from_iter_values(keys.iter().map(|k| k.1.as_str()))),
            Arc::new(StringArray::from_iter_values(ids.iter())),
            Arc::new(Float64Array::from_iter(best.iter().map(|b| b.map(|(p, _)| p)))),
            Arc::new(StringArray::from_iter_values(best.iter().map(|b| b.map_or("singleton", |(_, r)| rules[r])))),
        ],
    )?)
}

/// Every linked pair with its probability and the blocking rule that paired it: why two
/// profiles became one person.
fn pairs_batch(keys: &[Key], links: &[Link], rules: &[&str]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("source_a", DataType::Utf8, false),
        Field::new("source_customer_id_a", DataType::Utf8, false),
        Field::new("source_b", DataType::Utf8, false),
        Field::new("source_customer_id_b", DataType::Utf8, false),
        Field::new("probability", DataType::Float64, false),
        Field::new("rule", DataType::Utf8, false),
    ]));
    let side = |pick: fn(&Link) -> u32, part: fn(&Key) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(links.iter().map(|l| part(&keys[pick(l) as usize]))))
    };
    Ok(RecordBatch::try_new(
        schema,
        vec![
            side(|l| l.i, |k| k.0.as_str()),
            side(|l| l.i, |k| k.1.as_str()),
            side(|l| l.j, |k| k.0.as_str()),
            side(|l| l.j, |k| k.1.as_str()),
            Arc::new(Float64Array::from_iter_values(links.iter().map(|l| l.probability))),
            Arc::new(StringArray::from_iter_values(links.iter().map(|l| rules[l.rule]))),
        ],
    )?)
}

fn aliases_batch(aliases: &[(String, String)]) -> Result<RecordBatch> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros() as i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("alias_id", DataType::Utf8, false),
        Field::new("master_customer_id", DataType::Utf8, false),
        Field::new("merged_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from_iter_values(aliases.iter().map(|a| a.0.as_str()))),
            Arc::new(StringArray::from_iter_values(aliases.iter().map(|a| a.1.as_str()))),
            Arc::new(TimestampMicrosecondArray::from(vec![now; aliases.len()]).with_timezone("UTC")),
        ],
    )?)
}

/// The column `profiles_by_person` adds: each profile's master id (a name no profile table uses).
const PERSON: &str = "__persona_master_customer_id";
/// The column `numbered` adds: each row's place among the rows read.
const ROW: &str = "__persona_row";

/// `schema` with one more column at the end.
fn schema_with(schema: &Schema, field: Field) -> Arc<Schema> {
    let fields: Vec<Arc<Field>> = schema.fields().iter().cloned().chain([Arc::new(field)]).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The rows with their place among all the rows (0, 1, ...) as the column [`ROW`]; the
/// columns themselves are shared, not copied.
fn numbered(schema: &Schema, batches: &[RecordBatch]) -> Result<(Arc<Schema>, Vec<RecordBatch>)> {
    let with_row = schema_with(schema, Field::new(ROW, DataType::UInt64, false));
    let mut first = 0u64;
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        let n = batch.num_rows() as u64;
        let mut columns = batch.columns().to_vec();
        columns.push(Arc::new(UInt64Array::from_iter_values(first..first + n)));
        out.push(RecordBatch::try_new(Arc::clone(&with_row), columns)?);
        first += n;
    }
    Ok((with_row, out))
}

/// The profile rows reordered by master id, with that id as the column [`PERSON`], in batches
/// of 8,192 rows; and their schema. `rows[i]` is the place among the rows read of the resolver's
/// profile `i`, whose master id is `ids[i]`. Within one person the rows keep the resolver's
/// order (by source and id), so the golden records do not depend on the order the table was
/// read in.
fn profiles_by_person(schema: &Schema, batches: Vec<RecordBatch>, rows: &[usize], ids: &[String]) -> Result<(Arc<Schema>, Vec<RecordBatch>)> {
    // Row r is in the batch whose first row is the last start at or before r.
    let starts: Vec<usize> = batches
        .iter()
        .scan(0usize, |next, b| {
            let start = *next;
            *next += b.num_rows();
            Some(start)
        })
        .collect();
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if rows.len() != total || rows.iter().any(|&r| r >= total) {
        return Err(PersonaError::Io(std::io::Error::other(format!(
            "identity: resolved {} profiles but read {total} rows for the golden records; nothing was written",
            rows.len()
        ))));
    }
    let place = |r: usize| {
        let b = starts.partition_point(|&s| s <= r) - 1;
        (b, r - starts[b])
    };
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| ids[a].cmp(&ids[b]));
    let with_person = schema_with(schema, Field::new(PERSON, DataType::Utf8, false));
    let sources: Vec<&RecordBatch> = batches.iter().collect();
    let mut out = Vec::with_capacity(order.len().div_ceil(8192));
    for chunk in order.chunks(8192) {
        let picked: Vec<(usize, usize)> = chunk.iter().map(|&i| place(rows[i])).collect();
        let picked_rows = datafusion::arrow::compute::interleave_record_batch(&sources, &picked)?;
        let mut columns = picked_rows.columns().to_vec();
        columns.push(Arc::new(StringArray::from_iter_values(chunk.iter().map(|&i| ids[i].as_str()))));
        out.push(RecordBatch::try_new(Arc::clone(&with_person), columns)?);
    }
    Ok((with_person, out))
}

/// One row per master id: each profile column survives as its latest value when the profiles
/// have `updated_at`, else as its most frequent value.
fn golden_record_sql(schema: &Schema) -> String {
    let has_updated = schema.field_with_name("updated_at").is_ok();
    let mut columns = vec![format!("p.{PERSON} AS master_customer_id")];
    for f in schema.fields() {
        let name = f.name();
        if ["source", "source_customer_id", "updated_at"].contains(&name.as_str()) {
            continue;
        }
        let quoted = format!("p.\"{}\"", name.replace('"', "\"\""));
        let survivor = if has_updated { format!("latest_value({quoted}, p.updated_at)") } else { format!("most_frequent({quoted})") };
        columns.push(format!("{survivor} AS \"{}\"", name.replace('"', "\"\"")));
    }
    if has_updated {
        columns.push("max(p.updated_at) AS updated_at".into());
    }
    columns.push("count(*) AS profile_count".into());
    columns.push("array_sort(array_agg(DISTINCT p.source)) AS sources".into());
    format!(
        "SELECT {} FROM profiles p GROUP BY p.{PERSON}",
        columns.join(", ")
    )
}

async fn write(ctx: &SessionContext, data_dir: &Path, name: &str, sql: &str, mode: SaveMode) -> Result<()> {
    let cfg = store::location(data_dir, name)?;
    std::fs::create_dir_all(store::dir(data_dir).join(name))?;
    let plan = ctx.sql(sql).await?.logical_plan().clone();
    let table = DeltaTable::try_from_url(cfg.url).await.map_err(|e| PersonaError::delta(name, e))?;
    table
        .write(Vec::<RecordBatch>::new())
        .with_input_plan(plan)
        .with_session_state(Arc::new(ctx.state()))
        .with_save_mode(mode)
        .with_table_name(name)
        .await
        .map_err(|e| PersonaError::delta(name, e))?;
    Ok(())
}
