//! Start-up: configuration -> tables (materializing the embedded default when none are
//! configured) -> catalog -> session.

use datafusion::prelude::SessionContext;
use tracing::info;

use crate::config::Config;
use crate::error::Result;
use crate::{catalog, embedded, identity, session};

/// Opens every table and builds the session a server or a one-off query uses.
pub async fn open(config: &Config) -> Result<SessionContext> {
    #[cfg(feature = "s3")]
    deltalake::aws::register_handlers(None);
    let tables = if config.uses_embedded() {
        info!(dir = %embedded::lakehouse_dir(&config.data_dir).display(), "no tables configured: using the embedded default lakehouse");
        embedded::materialize(&config.data_dir).await?
    } else {
        config.tables.clone()
    };
    for t in &tables {
        info!(table = %t.name, location = %t.url, "table");
    }
    let mut persona_tables = identity::job::existing_tables(&config.data_dir)?;
    if config.uses_embedded() && persona_tables.is_empty() {
        // The embedded lakehouse ships with its identity tables built.
        let ctx = session::build(catalog::build(&tables, &[]).await?, &config.datafusion)?;
        let summary = identity::job::run(&ctx, &config.data_dir, &identity::Settings::default()).await?;
        info!("embedded lakehouse: {summary}");
        persona_tables = identity::job::existing_tables(&config.data_dir)?;
    }
    let catalog = catalog::build(&tables, &persona_tables).await?;
    session::build(catalog, &config.datafusion)
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    info!("shutting down");
}
