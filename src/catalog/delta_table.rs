//! A Delta table that follows its newest version.
//!
//! Each query asks the catalog for its tables; at that moment we look at the table's log and, when
//! another writer has committed since, move our snapshot forward. The check is one listing of the
//! log after the current version, so it stays cheap for a table that did not change.
//!
//! No lock is held across storage I/O: a refresh works on a copy of the table and swaps it in,
//! so one slow object-store call never queues up every other query on the table.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::catalog::TableProvider;
use deltalake::{DeltaTable, DeltaTableError};

use crate::config::TableConfig;
use crate::error::{PersonaError, Result};

#[derive(Debug)]
pub struct FollowedTable {
    config: TableConfig,
    state: Mutex<State>,
}

#[derive(Debug, Clone)]
struct State {
    table: DeltaTable,
    /// The provider for the loaded version, reused while the table does not change.
    provider: Option<Arc<dyn TableProvider>>,
}

impl FollowedTable {
    /// Opens the table at its newest version; fails with the table's name when the location
    /// holds no Delta table.
    pub async fn open(config: &TableConfig) -> Result<Self> {
        let table = open_latest(config).await?;
        Ok(Self { config: config.clone(), state: Mutex::new(State { table, provider: None }) })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &TableConfig {
        &self.config
    }

    /// A provider for the newest committed version.
    pub async fn current(&self) -> Result<Arc<dyn TableProvider>> {
        Ok(self.refresh().await?.1)
    }

    /// The newest committed version and a provider fixed at it: what a run that records the
    /// versions it read uses.
    pub async fn newest(&self) -> Result<(u64, Arc<dyn TableProvider>)> {
        let (table, provider) = self.refresh().await?;
        Ok((table.version().unwrap_or_default(), provider))
    }

    /// The table at its newest committed version (for time travel and the change feed).
    pub async fn latest(&self) -> Result<DeltaTable> {
        Ok(self.refresh().await?.0)
    }

    /// The table as last loaded, without looking at the log: for callers that cannot wait on
    /// I/O (table functions are planned synchronously) and have refreshed it just before.
    pub fn loaded(&self) -> DeltaTable {
        self.state.lock().expect("table state lock").table.clone()
    }

    async fn refresh(&self) -> Result<(DeltaTable, Arc<dyn TableProvider>)> {
        let State { mut table, provider } = self.state.lock().expect("table state lock").clone();
        let loaded = table.version();
        match table.get_latest_version().await {
            Ok(latest) if Some(latest) == loaded => {
                if let Some(provider) = provider {
                    return Ok((table, provider));
                }
            }
            Ok(_) => table.update_state().await.map_err(|e| PersonaError::delta(self.name(), e))?,
            // The log we followed is gone (table deleted and re-created, or old commits cleaned
            // up): start again from the newest state instead of failing until a restart.
            Err(_) => table = open_latest(&self.config).await?,
        }
        let provider = super::scan::provider(&table).await?;
        let mut state = self.state.lock().expect("table state lock");
        // Another query may have moved further ahead meanwhile; never step back.
        if state.table.version() <= table.version() {
            *state = State { table: table.clone(), provider: Some(provider.clone()) };
        }
        Ok((table, provider))
    }

    /// A provider fixed at an earlier `version`; NOT_FOUND naming the table when the log no
    /// longer (or not yet) has it.
    pub async fn at_version(&self, version: u64) -> Result<Arc<dyn TableProvider>> {
        let mut table = self.loaded();
        table.load_version(version).await.map_err(|e| match e {
            deltalake::DeltaTableError::InvalidVersion(_) | deltalake::DeltaTableError::NotATable(_) => {
                PersonaError::TableNotFound(format!("{} has no version {version}: {e}", self.name()))
            }
            other => PersonaError::delta(self.name(), other),
        })?;
        super::scan::provider(&table).await
    }
}

async fn open_latest(config: &TableConfig) -> Result<DeltaTable> {
    let options: HashMap<String, String> = config.storage_options.clone().into_iter().collect();
    deltalake::open_table_with_storage_options(config.url.clone(), options).await.map_err(|e| match e {
        // One line that names the table and the location (delta-rs appends the Debug form of
        // the I/O error on a line of its own).
        DeltaTableError::InvalidTableLocation(_) | DeltaTableError::NotATable(_) => {
            let why = match config.url.to_file_path() {
                Ok(path) if !path.exists() => "the folder does not exist".to_string(),
                Ok(_) => "the folder has no _delta_log with commits".to_string(),
                Err(()) => e.to_string().lines().next().unwrap_or_default().to_string(),
            };
            PersonaError::TableNotFound(format!("{}: no Delta table at {} ({why})", config.name, config.url))
        }
        other => PersonaError::delta(format!("{} at {}", config.name, config.url), other),
    })
}
