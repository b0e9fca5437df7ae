//! The one DataFusion session every client shares: the `persona` catalog, information_schema
//! (so `SHOW TABLES` and `SHOW FUNCTIONS` work), the persona UDFs, planner rules and query
//! planner.

use std::sync::Arc;

use datafusion::catalog::CatalogProvider;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::catalog::{CATALOG, USER_SCHEMA};
use crate::error::{PersonaError, Result};
use crate::procedures::ProcedureEnv;

/// Builds the session over an already-built catalog, applying `[datafusion]` settings.
pub fn build(
    catalog: Arc<dyn CatalogProvider>,
    settings: &std::collections::BTreeMap<String, String>,
) -> Result<SessionContext> {
    build_with(catalog, settings, None)
}

/// Like [`build`], with what `CALL persona.resolve()` and the other procedures need.
pub fn build_with(
    catalog: Arc<dyn CatalogProvider>,
    settings: &std::collections::BTreeMap<String, String>,
    procedures: Option<ProcedureEnv>,
) -> Result<SessionContext> {
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_create_default_catalog_and_schema(false)
        .with_default_catalog_and_schema(CATALOG, USER_SCHEMA);
    // Delta tables are many small Parquet files (a file per partition and commit). Reading a
    // file's page index is one more read per file on every query, and within a file of one row
    // group it seldom skips a page: the shipped segments over 700 day files ran 20-25% faster
    // without it. File-level Delta statistics still prune whole files. `[datafusion]` can turn
    // it back on (large files, selective lookups).
    config.options_mut().execution.parquet.enable_page_index = false;
    for (key, value) in settings {
        config.options_mut().set(key, value).map_err(|e| {
            PersonaError::Config(format!("datafusion.\"{key}\" = \"{value}\": {e}"))
        })?;
    }
    crate::catalog::scan::set_row_filters(config.options().execution.parquet.pushdown_filters);
    if let Some(env) = procedures {
        config = config.with_extension(Arc::new(env));
    }
    let builder = SessionStateBuilder::new().with_config(config).with_default_features();
    let state = with_persona_planning(builder).build();
    let ctx = SessionContext::new_with_state(state);
    ctx.register_udtf(crate::catalog::changes::NAME, Arc::new(crate::catalog::changes::TableChanges::new(catalog.clone())));
    ctx.register_catalog(CATALOG, catalog);
    // Registered after the session is built: building with a function list would replace
    // DataFusion's built-ins.
    persona_udfs::register_all(&ctx)?;
    Ok(ctx)
}

/// persona's planner rules (`optimizer.rs`) and query planner (`planner.rs`) on a session
/// builder: every persona session has them, and the sqllogictest sessions too.
pub fn with_persona_planning(builder: SessionStateBuilder) -> SessionStateBuilder {
    builder
        .with_optimizer_rules(crate::optimizer::rules())
        .with_physical_optimizer_rule(Arc::new(crate::windows::OnePassWindows))
        .with_query_planner(Arc::new(crate::planner::PersonaQueryPlanner))
}
