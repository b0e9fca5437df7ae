//! How a Delta table is scanned: the table provider every query, time travel and internal job
//! reads through.
//!
//! One setting differs from delta-rs's own default: whether filters on data columns are also
//! evaluated inside the Parquet reader ("row filters", DataFusion's
//! `execution.parquet.pushdown_filters`). delta-rs turns that on for every predicate, yet
//! reports such filters as inexact, so DataFusion evaluates them again above the scan. For the
//! predicates segments use (`event_type = 'purchase'`, `customer_id IS NOT NULL`, windows
//! that keep most of a day file) the reader decodes the filter columns first, builds a row
//! selection that keeps nearly every row, then decodes the rest through it: work on top of
//! the filter that runs anyway. Off, as in DataFusion itself, Delta's file statistics still
//! skip whole files; `[datafusion] "execution.parquet.pushdown_filters" = "true"` turns it
//! back on for large files and selective lookups.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::catalog::TableProvider;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionConfig;
use deltalake::DeltaTable;

use crate::error::Result;

/// The process-wide choice, taken from the served session's settings when it is built: the
/// catalog builds providers without a session at hand.
static ROW_FILTERS: AtomicBool = AtomicBool::new(false);

/// Whether scans built from now on evaluate data-column filters inside the Parquet reader.
pub fn set_row_filters(on: bool) {
    ROW_FILTERS.store(on, Ordering::Relaxed);
}

/// A provider for `table` as loaded (its version), scanned as this module describes.
pub async fn provider(table: &DeltaTable) -> Result<Arc<dyn TableProvider>> {
    provider_with(table, ROW_FILTERS.load(Ordering::Relaxed)).await
}

/// A provider for `table` with row filters in the Parquet reader on or off.
pub async fn provider_with(table: &DeltaTable, row_filters: bool) -> Result<Arc<dyn TableProvider>> {
    let mut config = SessionConfig::new();
    config.options_mut().execution.parquet.pushdown_filters = row_filters;
    // delta-rs reads only the scan settings (row filters, string view types) from this session.
    let session = Arc::new(SessionStateBuilder::new().with_config(config).build());
    Ok(table.table_provider().with_session(session).await?)
}
