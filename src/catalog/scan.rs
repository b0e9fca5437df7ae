//! How a Delta table is scanned: the table provider every query, time travel and internal job
//! reads through.
//!
//! One setting differs from delta-rs's own default: whether filters on data columns are
//! evaluated inside the Parquet reader ("row filters", DataFusion's
//! `execution.parquet.pushdown_filters`). delta-rs turns them on for every predicate, and
//! DataFusion then hands the whole filter to the reader. For the predicates segments use
//! (`event_type = 'purchase'`, `customer_id IS NOT NULL`, windows that keep most of a day file)
//! the reader decodes the filter columns first, builds a row selection that keeps nearly every
//! row, then decodes the other columns through it: slower than decoding every column once and
//! filtering the batch. Off, as in DataFusion itself, the filter runs as its own step above the
//! scan, and the predicate still prunes row groups by their statistics (Delta's file
//! statistics skip whole files either way). `[datafusion]
//! "datafusion.execution.parquet.pushdown_filters" = "true"` turns row filters back on, for
//! large files and selective lookups.

use std::sync::{Arc, LazyLock};
use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::catalog::TableProvider;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;
use deltalake::DeltaTable;

use crate::error::Result;

/// The process-wide choice, taken from the session's settings when it is built (`serve`, `sql`,
/// segment and check runs): the catalog builds providers without a session at hand. Commands
/// that build no session (`load`, `forget`) read with the default.
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
    // delta-rs reads only the scan settings (row filters, string view types) from this session.
    // Providers are built again for every new table version, so the two sessions are built once.
    static SESSIONS: LazyLock<[Arc<SessionState>; 2]> = LazyLock::new(|| [scan_session(false), scan_session(true)]);
    let session = Arc::clone(&SESSIONS[usize::from(row_filters)]);
    Ok(table.table_provider().with_session(session).await?)
}

fn scan_session(row_filters: bool) -> Arc<SessionState> {
    let mut config = SessionConfig::new();
    config.options_mut().execution.parquet.pushdown_filters = row_filters;
    Arc::new(SessionStateBuilder::new().with_config(config).build())
}
