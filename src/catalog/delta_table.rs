//! A Delta table that follows its newest version.
//!
//! Each query asks the catalog for its tables; at that moment we look at the table's log and, when
//! another writer has committed since, move our snapshot forward. The check is one listing of the
//! log after the current version, so it stays cheap for a table that did not change.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use deltalake::DeltaTable;
use tokio::sync::Mutex;
use url::Url;

use crate::config::TableConfig;
use crate::error::{PersonaError, Result};

#[derive(Debug)]
pub struct FollowedTable {
    name: String,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    table: DeltaTable,
    /// The provider for `provider_version`, reused while the table does not change.
    provider: Option<(Option<u64>, Arc<dyn TableProvider>)>,
}

impl FollowedTable {
    /// Opens the table at its newest version; fails with the table's name when the location
    /// holds no Delta table.
    pub async fn open(cfg: &TableConfig) -> Result<Self> {
        let options: HashMap<String, String> = cfg.storage_options.clone().into_iter().collect();
        let table = deltalake::open_table_with_storage_options(cfg.url.clone(), options)
            .await
            .map_err(|e| PersonaError::delta(format!("{} at {}", cfg.name, cfg.url), e))?;
        Ok(Self { name: cfg.name.clone(), state: Mutex::new(State { table, provider: None }) })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table's location.
    pub async fn url(&self) -> Url {
        self.state.lock().await.table.table_url().clone()
    }

    /// A provider for the newest committed version.
    pub async fn current(&self) -> Result<Arc<dyn TableProvider>> {
        let mut state = self.state.lock().await;
        let latest = state
            .table
            .get_latest_version()
            .await
            .map_err(|e| PersonaError::delta(&self.name, e))?;
        if state.table.version() != Some(latest) {
            state.table.update_state().await.map_err(|e| PersonaError::delta(&self.name, e))?;
        }
        let version = state.table.version();
        if let Some((v, provider)) = &state.provider
            && *v == version
        {
            return Ok(provider.clone());
        }
        let provider = state.table.table_provider().await?;
        state.provider = Some((version, provider.clone()));
        Ok(provider)
    }

    /// The version the last query saw.
    pub async fn version(&self) -> Option<u64> {
        self.state.lock().await.table.version()
    }
}
