//! Start-up: configuration -> tables (materializing the embedded default when none are
//! configured) -> catalog -> session.

use datafusion::prelude::SessionContext;
use tracing::info;

use crate::config::Config;
use crate::error::Result;
use crate::procedures::ProcedureEnv;
use crate::runs::{Runs, Trigger};
use crate::{catalog, embedded, identity, session, store};

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
    // up once a run (`CALL persona.resolve()`, a segment run, ...) creates them. Tables that
    // `persona load` creates later appear in schema `public` as they do.
    let folders = catalog::Folders {
        user: Some(crate::lakehouse::user_folder(&config.data_dir)),
        persona: Some(store::dir(&config.data_dir)),
    };
    let catalog = catalog::build_watching(&tables, &store::all_tables(&config.data_dir)?, &folders).await?;
    let env = ProcedureEnv {
        tables: config.tables.clone(),
        ingest: config.ingest.clone(),
        data_dir: config.data_dir.clone(),
        sql_dir: config.sql_dir.clone(),
        identity: config.identity.clone(),
        audience: config.audience.clone(),
        checks: config.checks.clone(),
    };
    session::build_with(catalog, &config.datafusion, Some(env))
}

/// What segment and check runs need, over an opened session.
pub fn runs(config: &Config, ctx: &SessionContext, trigger: Trigger) -> Runs {
    Runs {
        ctx: ctx.clone(),
        data_dir: config.data_dir.clone(),
        sql_dir: config.sql_dir.clone(),
        audience: config.audience.clone(),
        checks: config.checks.clone(),
        trigger,
    }
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
