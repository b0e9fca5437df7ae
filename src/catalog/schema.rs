//! A DataFusion schema whose tables are Delta tables that follow their newest version.
//!
//! A schema may also know tables that do not exist yet (persona's identity tables before the
//! first `CALL persona.resolve()`): they are listed and opened as soon as their log appears.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;

use super::delta_table::FollowedTable;
use crate::config::TableConfig;

#[derive(Debug, Default)]
pub struct DeltaSchema {
    tables: RwLock<BTreeMap<String, Arc<FollowedTable>>>,
    /// Local tables expected to appear, by name.
    pending: BTreeMap<String, TableConfig>,
}

impl DeltaSchema {
    pub fn new(tables: impl IntoIterator<Item = FollowedTable>) -> Self {
        Self::with_pending(tables, Vec::new())
    }

    pub fn with_pending(tables: impl IntoIterator<Item = FollowedTable>, pending: Vec<TableConfig>) -> Self {
        let tables = tables.into_iter().map(|t| (t.name().to_string(), Arc::new(t))).collect();
        Self { tables: RwLock::new(tables), pending: pending.into_iter().map(|c| (c.name.clone(), c)).collect() }
    }

    /// The followed table called `name`, opening a pending one that has appeared.
    pub async fn followed(&self, name: &str) -> DfResult<Option<Arc<FollowedTable>>> {
        if let Some(t) = self.opened(name) {
            return Ok(Some(t));
        }
        let Some(config) = self.appeared(name) else { return Ok(None) };
        let opened = Arc::new(FollowedTable::open(config).await?);
        Ok(Some(self.tables.write().expect("schema lock").entry(name.to_string()).or_insert(opened).clone()))
    }

    fn opened(&self, name: &str) -> Option<Arc<FollowedTable>> {
        self.tables.read().expect("schema lock").get(name).cloned()
    }

    /// A pending table whose log exists now.
    fn appeared(&self, name: &str) -> Option<&TableConfig> {
        self.pending.get(name).filter(|c| has_log(c))
    }
}

/// True when a local table location holds a Delta log.
pub fn has_log(config: &TableConfig) -> bool {
    config.url.to_file_path().is_ok_and(|dir| dir.join("_delta_log").is_dir())
}

#[async_trait]
impl SchemaProvider for DeltaSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tables.read().expect("schema lock").keys().cloned().collect();
        names.extend(self.pending.keys().filter(|n| !names.contains(n) && self.appeared(n).is_some()).cloned().collect::<Vec<_>>());
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match self.followed(name).await? {
            Some(t) => Ok(Some(t.current().await?)),
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.opened(name).is_some() || self.appeared(name).is_some()
    }
}
