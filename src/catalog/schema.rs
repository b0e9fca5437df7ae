//! A DataFusion schema whose tables are Delta tables that follow their newest version.
//!
//! Besides the tables it is built with, a schema may watch a local folder: every sub-folder
//! holding a Delta log is a table of that name, including folders created after start-up (a
//! `persona load` into a new table, the first `persona resolve`). Looking costs one directory
//! listing for `SHOW TABLES` and one `stat` for a name a query uses; a table is opened the first
//! time a query reads it and followed from then on.
//!
//! Names with a version mark (`events@v3`, see `versions.rs`) read a table as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;

use super::delta_table::FollowedTable;
use super::versions;
use crate::config::{TableConfig, location_url};
use crate::error::{PersonaError, Result};

#[derive(Debug, Default)]
pub struct DeltaSchema {
    tables: RwLock<BTreeMap<String, Arc<FollowedTable>>>,
    /// Local tables expected to appear, by name.
    pending: BTreeMap<String, TableConfig>,
    /// A local folder whose Delta tables are served too.
    folder: Option<PathBuf>,
}

impl DeltaSchema {
    pub fn new(tables: impl IntoIterator<Item = FollowedTable>) -> Self {
        Self::with_pending(tables, Vec::new())
    }

    pub fn with_pending(tables: impl IntoIterator<Item = FollowedTable>, pending: Vec<TableConfig>) -> Self {
        let tables = tables.into_iter().map(|t| (t.name().to_string(), Arc::new(t))).collect();
        Self { tables: RwLock::new(tables), pending: pending.into_iter().map(|c| (c.name.clone(), c)).collect(), folder: None }
    }

    /// Also serves every Delta table under `folder` (which need not exist yet). Tables the
    /// schema was built with win over a folder of the same name.
    pub fn watching(mut self, folder: PathBuf) -> Self {
        self.folder = Some(folder);
        self
    }

    fn opened(&self, name: &str) -> Option<Arc<FollowedTable>> {
        self.tables.read().expect("schema lock").get(name).cloned()
    }

    /// A table not opened yet whose log exists now: a pending one or one in the folder.
    fn appeared(&self, name: &str) -> Option<TableConfig> {
        if let Some(c) = self.pending.get(name).filter(|c| has_log(c)) {
            return Some(c.clone());
        }
        let folder = self.folder.as_ref()?;
        if !is_table_name(name) || !folder.join(name).join("_delta_log").is_dir() {
            return None;
        }
        folder_table(folder, name).ok()
    }

    /// The followed table of that name, opening it if it appeared since start-up.
    pub async fn followed(&self, name: &str) -> Result<Option<Arc<FollowedTable>>> {
        if let Some(t) = self.opened(name) {
            return Ok(Some(t));
        }
        let Some(config) = self.appeared(name) else { return Ok(None) };
        let opened = Arc::new(FollowedTable::open(&config).await?);
        Ok(Some(self.tables.write().expect("schema lock").entry(name.to_string()).or_insert(opened).clone()))
    }

    /// The followed table of that name if a query has opened it (no I/O).
    pub fn followed_now(&self, name: &str) -> Option<Arc<FollowedTable>> {
        self.opened(name)
    }

    fn folder_names(&self) -> Vec<String> {
        let Some(folder) = &self.folder else { return Vec::new() };
        let Ok(entries) = std::fs::read_dir(folder) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| is_table_name(n) && folder.join(n).join("_delta_log").is_dir())
            .collect()
    }
}

/// True when a local table location holds a Delta log.
pub fn has_log(config: &TableConfig) -> bool {
    config.url.to_file_path().is_ok_and(|dir| dir.join("_delta_log").is_dir())
}

/// Table names persona serves from folders and creates: letters, digits and `_`, as in
/// `persona.toml`.
pub fn is_table_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The configuration of the table `name` in a local folder of tables.
pub fn folder_table(folder: &Path, name: &str) -> Result<TableConfig> {
    let url = location_url(&folder.join(name).to_string_lossy(), Path::new("")).map_err(PersonaError::Config)?;
    Ok(TableConfig { name: name.to_string(), url, storage_options: Default::default() })
}

#[async_trait]
impl SchemaProvider for DeltaSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tables.read().expect("schema lock").keys().cloned().collect();
        names.extend(self.pending.keys().filter(|n| self.appeared(n).is_some()).cloned().collect::<Vec<_>>());
        names.extend(self.folder_names());
        names.sort();
        names.dedup();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some((base, at)) = versions::split(name) {
            let Some(table) = self.followed(base).await? else { return Ok(None) };
            let latest = table.latest().await?;
            return Ok(Some(versions::provider_at(base, &latest, at?).await?));
        }
        match self.followed(name).await? {
            Some(t) => Ok(Some(t.current().await?)),
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        let base = versions::split(name).map_or(name, |(base, _)| base);
        self.opened(base).is_some() || self.appeared(base).is_some()
    }
}
