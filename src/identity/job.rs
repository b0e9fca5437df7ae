//! `persona resolve`: profiles in, identity tables out.
//!
//! Reads `public.profiles` (any table with `source`, `source_customer_id` and some of the
//! identifying columns), resolves it, and writes three Delta tables under
//! `<data_dir>/persona/`: `identity_links` (one row per profile with its master id),
//! `identity_aliases` (ids merged into older ones) and `customers` (one golden record per master
//! id, built with the survivorship aggregates). Each run is one new version of each table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{AsArray, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;

use super::master::{self, Key};
use super::{Settings, record, resolve};
use crate::config::{TableConfig, location_url};
use crate::error::{PersonaError, Result};

pub const LINKS: &str = "identity_links";
pub const ALIASES: &str = "identity_aliases";
pub const CUSTOMERS: &str = "customers";

#[derive(Debug, Clone)]
pub struct Summary {
    pub profiles: usize,
    pub candidate_pairs: usize,
    pub links: usize,
    pub master_ids: usize,
    pub new_ids: usize,
    pub aliases: usize,
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

/// Where persona keeps its own tables.
pub fn persona_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("persona")
}

/// The persona tables that exist under `data_dir`.
pub fn existing_tables(data_dir: &Path) -> Result<Vec<TableConfig>> {
    let mut tables = Vec::new();
    for name in [LINKS, ALIASES, CUSTOMERS] {
        let dir = persona_dir(data_dir).join(name);
        if dir.join("_delta_log").is_dir() {
            tables.push(table_config(data_dir, name)?);
        }
    }
    Ok(tables)
}

fn table_config(data_dir: &Path, name: &str) -> Result<TableConfig> {
    let dir = persona_dir(data_dir).join(name);
    std::fs::create_dir_all(&dir)?;
    let url = location_url(&dir.to_string_lossy(), Path::new("")).map_err(PersonaError::Config)?;
    Ok(TableConfig { name: name.to_string(), url, storage_options: Default::default() })
}

/// Resolves the profiles the session serves and writes the identity tables.
pub async fn run(ctx: &SessionContext, data_dir: &Path, settings: &Settings) -> Result<Summary> {
    let started = Instant::now();
    let profiles = ctx.sql("SELECT * FROM public.profiles").await?;
    let schema = profiles.schema().as_arrow().clone();
    for required in ["source", "source_customer_id"] {
        if schema.field_with_name(required).is_err() {
            return Err(PersonaError::InvalidArgument(format!("public.profiles has no `{required}` column")));
        }
    }
    let batches = profiles.collect().await?;
    let records = record::from_batches(&batches, Some("source"))?;
    let keys = profile_keys(&batches)?;

    let previous = previous_ids(data_dir).await?;
    let resolution = resolve(&records, settings);
    let assignment = master::assign(&keys, &resolution.clusters, &previous);

    let mut best = vec![None::<f64>; records.len()];
    for &(i, j, p) in &resolution.links {
        for k in [i as usize, j as usize] {
            best[k] = Some(best[k].map_or(p, |b: f64| b.max(p)));
        }
    }
    let links = links_batch(&keys, &assignment.ids, &best)?;
    let delta_ctx = deltalake::delta_datafusion::create_session().into_inner();
    persona_udfs::register_all(&delta_ctx)?;
    delta_ctx.register_batch("links", links.clone())?;
    delta_ctx.register_table("profiles", Arc::new(MemTable::try_new(Arc::new(schema.clone()), vec![batches])?))?;

    write(&delta_ctx, data_dir, LINKS, "SELECT * FROM links", SaveMode::Overwrite).await?;
    let aliases = aliases_batch(&assignment.aliases)?;
    delta_ctx.register_batch("new_aliases", aliases)?;
    write(&delta_ctx, data_dir, ALIASES, "SELECT * FROM new_aliases", SaveMode::Append).await?;
    write(&delta_ctx, data_dir, CUSTOMERS, &golden_record_sql(&schema), SaveMode::Overwrite).await?;

    let masters: std::collections::HashSet<&String> = assignment.ids.iter().collect();
    Ok(Summary {
        profiles: records.len(),
        candidate_pairs: resolution.candidate_pairs,
        links: resolution.links.len(),
        master_ids: masters.len(),
        new_ids: assignment.new_ids,
        aliases: assignment.aliases.len(),
        elapsed: started.elapsed(),
    })
}

fn profile_keys(batches: &[RecordBatch]) -> Result<Vec<Key>> {
    let mut keys = Vec::new();
    for b in batches {
        let source = cast(b.column_by_name("source").expect("checked"), &DataType::Utf8)?;
        let id = cast(b.column_by_name("source_customer_id").expect("checked"), &DataType::Utf8)?;
        let (source, id) = (source.as_string::<i32>(), id.as_string::<i32>());
        for row in 0..b.num_rows() {
            keys.push((source.value(row).to_string(), id.value(row).to_string()));
        }
    }
    Ok(keys)
}

/// The master id each profile had after the last run.
async fn previous_ids(data_dir: &Path) -> Result<HashMap<Key, String>> {
    let dir = persona_dir(data_dir).join(LINKS);
    if !dir.join("_delta_log").is_dir() {
        return Ok(HashMap::new());
    }
    let table = DeltaTable::try_from_url(table_config(data_dir, LINKS)?.url).await.map_err(|e| PersonaError::delta(LINKS, e))?;
    let ctx = SessionContext::new();
    ctx.register_table("links", table.table_provider().await?)?;
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

fn links_batch(keys: &[Key], ids: &[String], best: &[Option<f64>]) -> Result<RecordBatch> {
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
            Arc::new(Float64Array::from(best.to_vec())),
            Arc::new(StringArray::from_iter_values(best.iter().map(|b| if b.is_some() { "fellegi_sunter" } else { "singleton" }))),
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

/// One row per master id: each profile column survives as its latest value when the profiles
/// have `updated_at`, else as its most frequent value.
fn golden_record_sql(schema: &Schema) -> String {
    let has_updated = schema.field_with_name("updated_at").is_ok();
    let mut columns = vec!["l.master_customer_id".to_string()];
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
        "SELECT {} FROM profiles p JOIN links l ON l.source = CAST(p.source AS VARCHAR) AND l.source_customer_id = CAST(p.source_customer_id AS VARCHAR) GROUP BY l.master_customer_id",
        columns.join(", ")
    )
}

async fn write(ctx: &SessionContext, data_dir: &Path, name: &str, sql: &str, mode: SaveMode) -> Result<()> {
    let cfg = table_config(data_dir, name)?;
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
