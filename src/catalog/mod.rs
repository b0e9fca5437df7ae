//! The `persona` catalog: schema `public` holds the user's Delta tables, schema `persona` the
//! tables persona writes itself.
//!
//! Layout: `delta_table.rs` (one table following its versions), `schema.rs` (a schema of such
//! tables), this file (building the catalog from the configuration).

mod delta_table;
mod schema;

use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};

pub use delta_table::FollowedTable;
pub use schema::DeltaSchema;

use crate::config::TableConfig;
use crate::error::Result;

pub const CATALOG: &str = "persona";
pub const USER_SCHEMA: &str = "public";
pub const PERSONA_SCHEMA: &str = "persona";

/// Opens every configured table and builds the catalog. A table that cannot be opened stops
/// start-up with an error naming it: serving a partial lakehouse would surprise every client.
pub async fn build(user_tables: &[TableConfig], persona_tables: &[TableConfig]) -> Result<Arc<dyn CatalogProvider>> {
    let catalog = MemoryCatalogProvider::new();
    catalog.register_schema(USER_SCHEMA, Arc::new(DeltaSchema::new(open_all(user_tables).await?)))?;
    // persona's own tables may not have been written yet: those wait, listed once they appear.
    let (present, pending): (Vec<TableConfig>, Vec<TableConfig>) =
        persona_tables.iter().cloned().partition(|c| c.url.scheme() != "file" || schema::has_log(c));
    catalog.register_schema(PERSONA_SCHEMA, Arc::new(DeltaSchema::with_pending(open_all(&present).await?, pending)))?;
    Ok(Arc::new(catalog))
}

async fn open_all(tables: &[TableConfig]) -> Result<Vec<FollowedTable>> {
    let mut opened = Vec::with_capacity(tables.len());
    for cfg in tables {
        opened.push(FollowedTable::open(cfg).await?);
    }
    Ok(opened)
}
