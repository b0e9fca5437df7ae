//! The command line. Every option is also a `PERSONA_*` environment variable and, for `serve`,
//! a `persona.toml` key.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use datafusion::arrow::util::pretty::pretty_format_batches;
use tracing::info;

use crate::config::{Config, Overrides};
use crate::error::{PersonaError, Result};
use crate::ingest::{LoadRequest, Mode};
use crate::lakehouse::{self, upkeep};
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
    /// Load CSV, JSON-lines or Parquet files into a Delta table, as one atomic commit.
    ///
    /// A table that does not exist yet is created under <data_dir>/lakehouse/TABLE (with the
    /// change data feed on) and served in schema `public`. Loading is incremental and
    /// idempotent: files already loaded (same content, whatever their name) are skipped, a file
    /// that grew contributes only its new records. Records that do not parse go to a rejects
    /// file (source, line, reason, record) and the rest load.
    Load {
        #[command(flatten)]
        common: CommonArgs,
        /// Table to load into: a table of persona.toml, or a name under <data_dir>/lakehouse.
        table: String,
        /// Files, folders (their files) or quoted patterns like 'data/*.csv.gz'.
        #[arg(required = true)]
        files: Vec<String>,
        /// Input format [default: from each file's name: .csv, .json/.jsonl/.ndjson, .parquet, optionally .gz].
        #[arg(long, value_enum)]
        format: Option<crate::ingest::formats::Format>,
        /// append adds rows; overwrite replaces the table's rows (older versions stay readable);
        /// merge updates rows whose --key matches and inserts the rest.
        #[arg(long, value_enum, default_value_t = LoadMode::Append)]
        mode: LoadMode,
        /// Key columns for --mode merge, comma-separated.
        #[arg(long, value_delimiter = ',')]
        key: Vec<String>,
        /// Partition columns of a table the load creates, comma-separated.
        #[arg(long, value_delimiter = ',')]
        partition_by: Vec<String>,
        /// Add columns the table does not have yet (Delta schema evolution) instead of failing.
        #[arg(long)]
        allow_new_columns: bool,
        /// Fail (and commit nothing) when more than N records are rejected [default: no limit].
        #[arg(long, value_name = "N")]
        max_rejects: Option<u64>,
        /// Where rejected records go [default: <data_dir>/rejects/TABLE-TIME.csv].
        #[arg(long, value_name = "FILE")]
        rejects: Option<PathBuf>,
        /// No progress line on stderr (it is also off when stderr is not a terminal).
        #[arg(long, short)]
        quiet: bool,
    },
    /// List every table with its version, files, size, rows and last commit time.
    Tables {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Compact a table's small files (and optionally Z-order them) in one commit.
    Optimize {
        #[command(flatten)]
        common: CommonArgs,
        table: String,
        /// Z-order by these columns, comma-separated (clusters rows with similar values).
        #[arg(long, value_delimiter = ',')]
        zorder: Vec<String>,
    },
    /// Delete files that no version within the retention period reads (and orphaned files).
    Vacuum {
        #[command(flatten)]
        common: CommonArgs,
        table: String,
        /// Keep files needed by versions of the last H hours [default: the table's
        /// delta.deletedFileRetentionDuration, 7 days].
        #[arg(long, value_name = "H")]
        retain_hours: Option<u64>,
        /// List what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Allow a retention shorter than the table's (breaks time travel to older versions).
        #[arg(long)]
        force: bool,
    },
    /// Write a checkpoint of a table's newest version so readers replay fewer log files.
    Checkpoint {
        #[command(flatten)]
        common: CommonArgs,
        table: String,
    },
    /// Forget a customer: delete their rows from every table that has the key column, vacuum
    /// those tables with zero retention (removing every older version's files, so time travel
    /// before the delete ends there), then read every remaining data file to prove none still
    /// holds them. Exits non-zero if one does.
    Forget {
        #[command(flatten)]
        common: CommonArgs,
        /// COLUMN=VALUE, e.g. customer_id=17850; repeat for tables that name the column differently.
        #[arg(long = "key", required = true, value_name = "COLUMN=VALUE")]
        keys: Vec<crate::lakehouse::forget::Key>,
    },
    /// Run one read-only SQL query against the same catalog and print the result.
    Sql {
        #[command(flatten)]
        common: CommonArgs,
        /// The query, e.g. "SELECT count(*) FROM events".
        query: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoadMode {
    Append,
    Overwrite,
    Merge,
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
    crate::lakehouse::register_object_stores();
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            let ctx = Arc::new(server::open(&config).await?);
            let bound = BoundServer::bind(config.listen, ctx).await?;
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
        Command::Load {
            common,
            table,
            files,
            format,
            mode,
            key,
            partition_by,
            allow_new_columns,
            max_rejects,
            rejects,
            quiet,
        } => {
            let config = common.config()?;
            let mode = match mode {
                LoadMode::Append => Mode::Append,
                LoadMode::Overwrite => Mode::Overwrite,
                LoadMode::Merge => Mode::Merge { key },
            };
            let request = LoadRequest {
                table,
                inputs: files,
                format,
                mode,
                partition_by,
                allow_new_columns,
                max_rejects,
                rejects_path: rejects,
                quiet,
            };
            println!("{}", crate::ingest::load(&config, &request).await?);
            Ok(())
        }
        Command::Tables { common } => {
            let config = common.config()?;
            let mut infos = Vec::new();
            for entry in lakehouse::all(&config)? {
                infos.push(upkeep::describe(&entry).await?);
            }
            println!("{}", upkeep::format_tables(&infos));
            Ok(())
        }
        Command::Optimize { common, table, zorder } => {
            let config = common.config()?;
            println!("{}", upkeep::optimize(&lakehouse::resolve(&config, &table)?, &zorder).await?);
            Ok(())
        }
        Command::Vacuum { common, table, retain_hours, dry_run, force } => {
            let config = common.config()?;
            println!("{}", upkeep::vacuum(&lakehouse::resolve(&config, &table)?, retain_hours, dry_run, force).await?);
            Ok(())
        }
        Command::Checkpoint { common, table } => {
            let config = common.config()?;
            let entry = lakehouse::resolve(&config, &table)?;
            let version = upkeep::checkpoint(&entry).await?;
            println!("{}: checkpoint written at version {version}", entry.display_name());
            Ok(())
        }
        Command::Forget { common, keys } => {
            let config = common.config()?;
            let report = crate::lakehouse::forget::forget(&config, &keys).await?;
            println!("{report}");
            if report.verified() {
                Ok(())
            } else {
                Err(PersonaError::NotForgotten("some data files still hold the customer; see above".into()))
            }
        }
        Command::Sql { common, query } => {
            let config = common.config()?;
            let ctx = server::open(&config).await?;
            let planned = query::plan_sql(&ctx, &query, Access::ReadOnly).await?;
            let plan = query::bind(planned, Vec::new())?;
            let schema = wire_schema(plan.schema().as_arrow());
            let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
            let wired = batches.iter().map(|b| to_wire(b, &schema)).collect::<std::result::Result<Vec<_>, _>>()?;
            println!("{}", pretty_format_batches(&wired)?);
            Ok(())
        }
    }
}
