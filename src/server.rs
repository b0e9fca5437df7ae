//! Start-up: configuration -> tables (materializing the embedded default when none are
//! configured) -> catalog -> session.

use datafusion::prelude::SessionContext;
use tracing::info;

use crate::config::Config;
use crate::error::Result;
use crate::procedures::ProcedureEnv;
use crate::{catalog, embedded, identity, session};

/// Opens every table and builds the session a server or a one-off query uses.
pub async fn open(config: &Config) -> Result<SessionContext> {
    crate::lakehouse::register_object_stores();
    let tables = if config.uses_embedded() {
        info!(dir = %embedded::lakehouse_dir(&config.data_dir).display(), "no tables configured: using the embedded default lakehouse");
        embedded::materialize(&config.data_dir).await?
    } else {
        config.tables.clone()
    };
    for t in &tables {
        info!(table = %t.name, location = %t.url, "table");
    }
    if config.uses_embedded() && identity::job::existing_tables(&config.data_dir)?.is_empty() {
        // The embedded lakehouse ships with its identity tables built.
        let ctx = session::build(catalog::build(&tables, &[]).await?, &config.datafusion)?;
        let summary = identity::job::run(&ctx, &config.data_dir, &config.identity).await?;
        info!("embedded lakehouse: {summary}");
    }
    // All of persona's tables, including those no run has written yet: the catalog picks them
    // up once `CALL persona.resolve()` or `persona resolve` creates them.
    // Tables that `persona load` creates later appear in schema `public` as they do.
    let folders = catalog::Folders {
        user: Some(crate::lakehouse::user_folder(&config.data_dir)),
        persona: Some(crate::lakehouse::persona_folder(&config.data_dir)),
    };
    let catalog = catalog::build_watching(&tables, &identity::job::all_tables(&config.data_dir)?, &folders).await?;
    let env = ProcedureEnv { data_dir: config.data_dir.clone(), identity: config.identity.clone() };
    session::build_with(catalog, &config.datafusion, Some(env))
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
