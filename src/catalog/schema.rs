//! A DataFusion schema whose tables are Delta tables that follow their newest version.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::Result as DfResult;

use super::delta_table::FollowedTable;

#[derive(Debug, Default)]
pub struct DeltaSchema {
    tables: BTreeMap<String, Arc<FollowedTable>>,
}

impl DeltaSchema {
    pub fn new(tables: impl IntoIterator<Item = FollowedTable>) -> Self {
        let tables = tables.into_iter().map(|t| (t.name().to_string(), Arc::new(t))).collect();
        Self { tables }
    }
}

#[async_trait]
impl SchemaProvider for DeltaSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        match self.tables.get(name) {
            Some(t) => Ok(Some(t.current().await?)),
            None => Ok(None),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables.contains_key(name)
    }
}
