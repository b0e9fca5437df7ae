//! The `persona` catalog: schema `public` holds the user's Delta tables, schema `persona` the
//! tables persona writes itself.
//!
//! Layout: `delta_table.rs` (one table following its versions), `schema.rs` (a schema of such
//! tables, including those that appear in a folder later), `versions.rs` (time travel),
//! `changes.rs` (the `table_changes` change-feed function), `scan.rs` (the provider a Delta
//! table is read through), this file (building the catalog from the configuration).

pub mod changes;
mod delta_table;
pub mod scan;
mod schema;
pub mod versions;

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider};

pub use delta_table::FollowedTable;
pub use schema::{DeltaSchema, folder_table, is_table_name};

use crate::config::TableConfig;
use crate::error::Result;

pub const CATALOG: &str = "persona";
pub const USER_SCHEMA: &str = "public";
pub const PERSONA_SCHEMA: &str = "persona";

/// Local folders whose Delta tables are served as they appear, beside the configured ones.
#[derive(Debug, Clone, Default)]
pub struct Folders {
    /// Served in schema `public`: `<data_dir>/lakehouse`, where `persona load` creates tables.
    pub user: Option<PathBuf>,
    /// Served in schema `persona`: `<data_dir>/persona`, where persona writes its own tables.
    pub persona: Option<PathBuf>,
}

/// Opens every configured table and builds the catalog. A table that cannot be opened stops
/// start-up with an error naming it: serving a partial lakehouse would surprise every client.
pub async fn build(user_tables: &[TableConfig], persona_tables: &[TableConfig]) -> Result<Arc<dyn CatalogProvider>> {
    build_watching(user_tables, persona_tables, &Folders::default()).await
}

/// Like [`build`], also serving every Delta table that is or later appears in `folders`.
pub async fn build_watching(
    user_tables: &[TableConfig],
    persona_tables: &[TableConfig],
    folders: &Folders,
) -> Result<Arc<dyn CatalogProvider>> {
    let catalog = MemoryCatalogProvider::new();
    let mut user = DeltaSchema::new(open_all(user_tables).await?);
    if let Some(folder) = &folders.user {
        user = user.watching(std::path::absolute(folder)?);
    }
    catalog.register_schema(USER_SCHEMA, Arc::new(user))?;
    // persona's own tables may not have been written yet: those wait, listed once they appear.
    let (present, pending): (Vec<TableConfig>, Vec<TableConfig>) =
        persona_tables.iter().cloned().partition(|c| c.url.scheme() != "file" || schema::has_log(c));
    let mut own = DeltaSchema::with_pending(open_all(&present).await?, pending);
    if let Some(folder) = &folders.persona {
        own = own.watching(std::path::absolute(folder)?);
    }
    catalog.register_schema(PERSONA_SCHEMA, Arc::new(own))?;
    Ok(Arc::new(catalog))
}

/// A schema of the catalog as the Delta schema it is.
pub fn delta_schema(catalog: &dyn CatalogProvider, name: &str) -> Option<Arc<dyn datafusion::catalog::SchemaProvider>> {
    catalog.schema(name).filter(|s| s.is::<DeltaSchema>())
}

async fn open_all(tables: &[TableConfig]) -> Result<Vec<FollowedTable>> {
    let mut opened = Vec::with_capacity(tables.len());
    for cfg in tables {
        opened.push(FollowedTable::open(cfg).await?);
    }
    Ok(opened)
}
