//! Runs read their inputs at fixed Delta versions.
//!
//! A segment or check run first finds every table its SQL reads, takes each table's newest
//! version (or, when a past run is replayed, the version that run recorded), and plans in a
//! session whose catalog holds exactly those tables at exactly those versions. What the run
//! records as its input versions is therefore what it read, even while writers commit.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider, SchemaProvider};
use datafusion::common::TableReference;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;

use crate::catalog::{CATALOG, DeltaSchema, PERSONA_SCHEMA, USER_SCHEMA};
use crate::error::{PersonaError, Result};
use crate::query;

/// Input versions by `schema.table` (`public.events`, `persona.customers`).
pub type Versions = BTreeMap<String, u64>;

/// A session over pinned tables, and the versions they are pinned at.
pub struct Pinned {
    pub ctx: SessionContext,
    pub versions: Versions,
}

/// The `schema.table` names the statements read, in the persona catalog (CTE names and table
/// functions left out).
pub fn tables_read(ctx: &SessionContext, sqls: &[&str]) -> Result<Vec<(String, String)>> {
    let state = ctx.state();
    let mut out: Vec<(String, String)> = Vec::new();
    for sql in sqls {
        let statement = query::parse_one(&state, sql)?;
        for reference in state.resolve_table_references(&statement)? {
            if matches!(reference, TableReference::Bare { .. }) && state.table_functions().contains_key(reference.table()) {
                continue;
            }
            let resolved = reference.resolve(CATALOG, USER_SCHEMA);
            if resolved.catalog.as_ref() != CATALOG || resolved.schema.as_ref() == "information_schema" {
                continue;
            }
            let key = (resolved.schema.to_string(), resolved.table.to_string());
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    Ok(out)
}

/// Pins `tables` at their newest versions, or at `at` when given (a replay).
pub async fn pin(ctx: &SessionContext, tables: &[(String, String)], at: Option<&Versions>) -> Result<Pinned> {
    let catalog = ctx
        .catalog(CATALOG)
        .ok_or_else(|| PersonaError::Config(format!("the session has no catalog `{CATALOG}`")))?;
    let pinned_schemas: BTreeMap<&str, Arc<MemorySchemaProvider>> =
        [USER_SCHEMA, PERSONA_SCHEMA].into_iter().map(|s| (s, Arc::new(MemorySchemaProvider::new()))).collect();
    let mut versions = Versions::new();
    for (schema_name, table) in tables {
        let key = format!("{schema_name}.{table}");
        if versions.contains_key(&key) {
            continue;
        }
        let not_found = || PersonaError::TableNotFound(format!("{key}; list tables with SHOW TABLES"));
        let Some(target) = pinned_schemas.get(schema_name.as_str()) else { return Err(not_found()) };
        let schema = catalog.schema(schema_name).ok_or_else(not_found)?;
        let delta = schema
            .as_ref()
            .downcast_ref::<DeltaSchema>()
            .ok_or_else(|| PersonaError::Config(format!("schema {schema_name} is not a schema of Delta tables")))?;
        let followed = delta.followed(table).await?.ok_or_else(not_found)?;
        let (version, provider) = match at {
            None => followed.newest().await?,
            Some(recorded) => {
                let v = *recorded.get(&key).ok_or_else(|| {
                    PersonaError::InvalidArgument(format!("the recorded run did not read {key}, so it cannot be replayed as it was"))
                })?;
                (v, followed.at_version(v).await?)
            }
        };
        target.register_table(table.clone(), provider)?;
        versions.insert(key, version);
    }
    let pinned_catalog = MemoryCatalogProvider::new();
    for (name, schema) in pinned_schemas {
        pinned_catalog.register_schema(name, schema)?;
    }
    let list = Arc::new(MemoryCatalogProviderList::new());
    let state = SessionStateBuilder::new_from_existing(ctx.state()).with_catalog_list(list).build();
    let pinned = SessionContext::new_with_state(state);
    pinned.register_catalog(CATALOG, Arc::new(pinned_catalog));
    Ok(Pinned { ctx: pinned, versions })
}

/// The versions of `tables` only: what one definition of a run read.
pub fn subset(versions: &Versions, tables: &[(String, String)]) -> Versions {
    tables
        .iter()
        .filter_map(|(s, t)| {
            let key = format!("{s}.{t}");
            versions.get(&key).map(|v| (key, *v))
        })
        .collect()
}

/// The versions as recorded: a JSON object of `schema.table` to version.
pub fn to_json(versions: &Versions) -> String {
    serde_json::to_string(versions).expect("a map of strings to integers is JSON")
}

pub fn from_json(text: &str) -> Result<Versions> {
    serde_json::from_str(text).map_err(|e| PersonaError::InvalidArgument(format!("recorded input versions `{text}`: {e}")))
}
