//! The command line. Every option is also a `PERSONA_*` environment variable and, for `serve`,
//! a `persona.toml` key.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use datafusion::arrow::util::pretty::pretty_format_batches;
use tracing::info;

use crate::access::Authenticator;
use crate::config::{Config, Overrides};
use crate::error::Result;
use crate::flight::{BoundServer, to_wire, wire_schema};
use crate::query::{self, Access};
use crate::server;

#[derive(Debug, Parser)]
#[command(name = "persona", version, about = "Serves a Delta Lake lakehouse of customer data as SQL over Arrow Flight SQL")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the configured Delta tables (or the embedded default lakehouse) over Flight SQL.
    Serve(CommonArgs),
    /// Resolve `profiles` into master customer ids: writes persona.identity_links,
    /// persona.identity_aliases and persona.customers (one golden record per person).
    Resolve {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        tuning: Tuning,
    },
    /// Measure identity resolution on FEBRL benchmark data: pairwise precision, recall, F1.
    Evaluate {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        tuning: Tuning,
        /// Tasks to run: febrl4 (link two files), febrl1, febrl2 (deduplicate one file).
        #[arg(default_values_t = ["febrl4".to_string(), "febrl1".to_string(), "febrl2".to_string()])]
        tasks: Vec<String>,
        /// Folder holding the FEBRL CSV files and their ground truth.
        #[arg(long, env = "PERSONA_FEBRL_DIR", default_value = "../shared/data/febrl")]
        febrl_dir: PathBuf,
    },
    /// Run one read-only SQL query against the same catalog and print the result.
    Sql {
        #[command(flatten)]
        common: CommonArgs,
        /// The query, e.g. "SELECT count(*) FROM events".
        query: String,
    },
}

/// Overrides of the `[identity]` settings of `persona.toml`.
#[derive(Debug, Args, Clone)]
pub struct Tuning {
    /// Match probability at or above which two profiles are linked [default: 0.9].
    #[arg(long)]
    threshold: Option<f64>,
    /// No person gets more profiles than this; weaker links are dropped instead [default: 20].
    #[arg(long)]
    max_cluster_size: Option<usize>,
}

impl Tuning {
    fn apply(&self, config: &Config) -> Result<crate::identity::Settings> {
        let mut s = config.identity.clone();
        s.threshold = self.threshold.unwrap_or(s.threshold);
        s.max_cluster_size = self.max_cluster_size.unwrap_or(s.max_cluster_size);
        s.validate()?;
        Ok(s)
    }
}

#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// Configuration file [default: ./persona.toml when present].
    #[arg(long, env = "PERSONA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to serve Flight SQL on [default: 127.0.0.1:50051].
    #[arg(long, env = "PERSONA_LISTEN")]
    pub listen: Option<String>,
    /// Folder of segment and check SQL files [default: sql].
    #[arg(long, env = "PERSONA_SQL_DIR")]
    pub sql_dir: Option<PathBuf>,
    /// Folder where persona keeps the embedded lakehouse and its own tables [default: .persona].
    #[arg(long, env = "PERSONA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl CommonArgs {
    fn config(&self) -> Result<Config> {
        Config::load(&Overrides {
            config: self.config.clone(),
            listen: self.listen.clone(),
            sql_dir: self.sql_dir.clone(),
            data_dir: self.data_dir.clone(),
        })
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            let ctx = Arc::new(server::open(&config).await?);
            let bound = BoundServer::bind(config.listen, ctx).await?.with_access(Authenticator::new(&config.access)?);
            info!("persona serves Flight SQL on grpc://{}", bound.local_addr()?);
            eprintln!("persona: serving Flight SQL on grpc://{} (Ctrl-C to stop)", bound.local_addr()?);
            bound.run_until(server::shutdown_signal()).await
        }
        Command::Resolve { common, tuning } => {
            let config = common.config()?;
            let settings = tuning.apply(&config)?;
            let ctx = server::open(&config).await?;
            println!("{}", crate::identity::job::run(&ctx, &config.data_dir, &settings).await?);
            Ok(())
        }
        Command::Evaluate { common, tuning, tasks, febrl_dir } => {
            let settings = tuning.apply(&common.config()?)?;
            for name in tasks {
                let task = crate::identity::febrl::task(&name)?;
                println!("{}", crate::identity::febrl::evaluate(&febrl_dir, task, &settings).await?);
            }
            Ok(())
        }
        Command::Sql { common, query } => {
            let config = common.config()?;
            let ctx = server::open(&config).await?;
            let planned = query::plan_sql(&ctx, &query, Access::Read).await?;
            let plan = query::bind(planned, Vec::new())?;
            let schema = wire_schema(plan.schema().as_arrow());
            let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
            let wired = batches.iter().map(|b| to_wire(b, &schema)).collect::<std::result::Result<Vec<_>, _>>()?;
            println!("{}", pretty_format_batches(&wired)?);
            Ok(())
        }
    }
}
