//! The command line. Every option is also a `PERSONA_*` environment variable and, for `serve`,
//! a `persona.toml` key.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use datafusion::arrow::util::pretty::pretty_format_batches;
use tracing::info;

use crate::access::Authenticator;
use crate::config::{Config, Overrides};
use crate::error::{PersonaError, Result};
use crate::ingest::{LoadRequest, Mode};
use crate::lakehouse::{self, upkeep};
use crate::flight::{BoundServer, to_wire, wire_schema};
use crate::query::{self, Access};
use crate::runs::checks::Status;
use crate::runs::{Trigger, report, schedule, segments};
use crate::server;

/// `println!` that tolerates a reader which stopped reading (`persona sql ... | head`): the rest
/// of the output is dropped, and the command finishes its work and exits with its own code.
macro_rules! out {
    ($($arg:tt)*) => {
        write_out(format_args!($($arg)*))?
    };
}

/// One line on stdout; a closed pipe is not an error (see `out!`), other write errors are.
fn write_out(args: std::fmt::Arguments) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_fmt(args).and_then(|()| stdout.write_all(b"\n")).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(PersonaError::Io),
    }
}

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
        /// A table of persona.toml, a name under <data_dir>/lakehouse, or persona.NAME for one of
        /// persona's own tables.
        table: String,
        /// Z-order by these columns, comma-separated (clusters rows with similar values).
        #[arg(long, value_delimiter = ',')]
        zorder: Vec<String>,
    },
    /// Delete files that no version within the retention period reads (and orphaned files).
    Vacuum {
        #[command(flatten)]
        common: CommonArgs,
        /// A table of persona.toml, a name under <data_dir>/lakehouse, or persona.NAME for one of
        /// persona's own tables.
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
        /// A table of persona.toml, a name under <data_dir>/lakehouse, or persona.NAME for one of
        /// persona's own tables.
        table: String,
    },
    /// Forget a customer: delete their rows from every table that has a key column (or its
    /// `<column>_a` / `<column>_b` pair columns, as in persona.identity_pairs) and the golden
    /// records in persona.customers of the people their profiles were linked to, vacuum those
    /// tables with zero retention (removing every older version's files, so time travel before
    /// the delete ends there), then read every remaining data file to prove none still holds
    /// them. Exits non-zero if one does. Run `persona resolve` afterwards to rebuild the golden
    /// records of those people from their remaining profiles, if any.
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
    /// Audience segments (sql/segments/*.sql): list, preview, run, diff, replay.
    #[command(subcommand)]
    Segments(SegmentsCommand),
    /// Run data-validation checks (sql/checks/*.sql) and record the results in
    /// persona.check_runs. Exit code 0 when all pass, 1 when a check fails (an error-severity
    /// one, or any with --fail-on warn), 2 when a check cannot run.
    Check {
        #[command(flatten)]
        common: CommonArgs,
        /// Checks to run [default: all].
        names: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Lowest severity that makes the exit code non-zero.
        #[arg(long, value_enum, default_value_t = FailOn::Error)]
        fail_on: FailOn,
    },
}

#[derive(Debug, Subcommand)]
pub enum SegmentsCommand {
    /// Every segment file with its version and last run; broken files with file:line and why.
    List {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Member count, a sample of members and how many each condition removes; writes nothing.
    Preview {
        #[command(flatten)]
        common: CommonArgs,
        /// The segment: its file name under <sql_dir>/segments without `.sql`.
        name: String,
        /// Members to show.
        #[arg(long, default_value_t = 10)]
        sample: usize,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run segments (gated by their required checks) and publish their members, with who
    /// entered and exited since the previous run. Exit code 1 when one is blocked or fails.
    Run {
        #[command(flatten)]
        common: CommonArgs,
        /// Segments to run [default: all].
        names: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Who entered and who exited between two runs [default: the last two published runs].
    Diff {
        #[command(flatten)]
        common: CommonArgs,
        /// The segment: its file name under <sql_dir>/segments without `.sql`.
        name: String,
        /// The earlier run: a run number (3), the latest run of a version (v2), or `latest`
        /// [default: the published run before --to].
        #[arg(long)]
        from: Option<String>,
        /// The later run: a run number (3), the latest run of a version (v2), or `latest`
        /// [default: latest].
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Run a recorded run again against the input versions it recorded and compare members.
    Replay {
        #[command(flatten)]
        common: CommonArgs,
        /// The segment: its file name under <sql_dir>/segments without `.sql`.
        name: String,
        /// A run number (3), the latest run of a version (v2), or `latest`.
        run: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Warn,
    Error,
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
    /// Folder of segment and check SQL files [default: sql, beside the configuration file when
    /// one is used].
    #[arg(long, env = "PERSONA_SQL_DIR")]
    pub sql_dir: Option<PathBuf>,
    /// Folder where persona keeps the embedded lakehouse and its own tables [default: .persona,
    /// beside the configuration file when one is used].
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

/// persona's default log verbosity: warnings, and persona's own progress.
pub const DEFAULT_LOG: &str = "warn,persona=info";

/// Library messages that only repeat what persona reports itself: delta-kernel logs every
/// snapshot it fails to build at ERROR (a table's first write looks for a log that is not there
/// yet), delta-rs warns on every merge that it derived a file metric. Hidden unless asked for.
const QUIET: [(&str, &str); 2] = [("buoyant_kernel::snapshot::builder", "off"), ("deltalake_core::operations::merge", "error")];

/// The tracing filter for `PERSONA_LOG` (unset: [`DEFAULT_LOG`]). The noisy library targets
/// above are quietened unless the filter turns everything to `debug` or `trace`, or has a
/// directive of its own for them (`PERSONA_LOG=info,deltalake_core=warn`).
pub fn log_filter(persona_log: Option<&str>) -> String {
    let spec = persona_log.map(str::trim).filter(|s| !s.is_empty()).unwrap_or(DEFAULT_LOG);
    let directives: Vec<&str> = spec.split(',').map(str::trim).filter(|d| !d.is_empty()).collect();
    if directives.iter().any(|d| d.eq_ignore_ascii_case("debug") || d.eq_ignore_ascii_case("trace")) {
        return spec.to_string();
    }
    let mut filter = spec.to_string();
    for (target, level) in QUIET {
        let named = directives.iter().any(|d| {
            let t = d.split(['=', '[']).next().unwrap_or_default().trim();
            !t.is_empty() && (target == t || target.starts_with(&format!("{t}::")))
        });
        if !named {
            filter.push_str(&format!(",{target}={level}"));
        }
    }
    filter
}

/// Runs a command; the exit code tells scripts how it went (see each command's help).
pub async fn run(cli: Cli) -> Result<ExitCode> {
    crate::lakehouse::register_object_stores();
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            // Credentials and schedules first: an unset password variable or a scheduled name
            // no file defines stops the server before any work.
            let auth = Authenticator::new(&config.access)?;
            schedule::check_names(&config.sql_dir, &config.schedule)?;
            let ctx = Arc::new(server::open(&config).await?);
            let bound = BoundServer::bind(config.listen, ctx.clone()).await?.with_access(auth);
            info!("persona serves Flight SQL on grpc://{}", bound.local_addr()?);
            eprintln!("persona: serving Flight SQL on grpc://{} (Ctrl-C to stop)", bound.local_addr()?);
            let runs = server::runs(&config, &ctx, Trigger::Schedule);
            tokio::spawn(schedule::serve(runs, config.schedule.clone(), schedule::TICK));
            bound.run_until(server::shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Segments(command) => segments(command).await,
        Command::Check { common, names, format, fail_on } => {
            let config = common.config()?;
            let ctx = server::open(&config).await?;
            let results = crate::runs::checks::run(&server::runs(&config, &ctx, Trigger::Cli), &names).await?;
            match format {
                Format::Text => out!("{}", report::checks_text(&results)),
                Format::Json => out!("{}", report::checks_json(&results)),
            }
            let worst = results.iter().map(|c| c.status).max().unwrap_or(Status::Pass);
            Ok(match worst {
                Status::Error => ExitCode::from(2),
                Status::Fail => ExitCode::from(1),
                Status::Warn if fail_on == FailOn::Warn => ExitCode::from(1),
                Status::Warn | Status::Pass => ExitCode::SUCCESS,
            })
        }
        Command::Resolve { common, tuning } => {
            let config = common.config()?;
            let settings = tuning.apply(&config)?;
            let ctx = server::open(&config).await?;
            out!("{}", crate::identity::job::run(&ctx, &config.data_dir, &settings).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Evaluate { common, tuning, tasks, febrl_dir } => {
            let settings = tuning.apply(&common.config()?)?;
            for name in tasks {
                let task = crate::identity::febrl::task(&name)?;
                out!("{}", crate::identity::febrl::evaluate(&febrl_dir, task, &settings).await?);
            }
            Ok(ExitCode::SUCCESS)
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
            out!("{}", crate::ingest::load(&config, &request).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Tables { common } => {
            let config = common.config()?;
            let mut infos = Vec::new();
            for entry in lakehouse::all(&config)? {
                infos.push(upkeep::describe(&entry).await?);
            }
            out!("{}", upkeep::format_tables(&infos));
            Ok(ExitCode::SUCCESS)
        }
        Command::Optimize { common, table, zorder } => {
            let config = common.config()?;
            out!("{}", upkeep::optimize(&lakehouse::resolve(&config, &table)?, &zorder).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Vacuum { common, table, retain_hours, dry_run, force } => {
            let config = common.config()?;
            out!("{}", upkeep::vacuum(&lakehouse::resolve(&config, &table)?, retain_hours, dry_run, force).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Checkpoint { common, table } => {
            let config = common.config()?;
            let entry = lakehouse::resolve(&config, &table)?;
            let version = upkeep::checkpoint(&entry).await?;
            out!("{}: checkpoint written at version {version}", entry.display_name());
            Ok(ExitCode::SUCCESS)
        }
        Command::Forget { common, keys } => {
            let config = common.config()?;
            let report = crate::lakehouse::forget::forget(&config, &keys).await?;
            out!("{report}");
            if report.verified() {
                Ok(ExitCode::SUCCESS)
            } else {
                Err(PersonaError::NotForgotten("some data files still hold the customer; see above".into()))
            }
        }
        Command::Sql { common, query } => {
            let config = common.config()?;
            let ctx = server::open(&config).await?;
            let planned = query::plan_sql(&ctx, &query, Access::Read).await?;
            let plan = query::bind(planned, Vec::new())?;
            let schema = wire_schema(plan.schema().as_arrow());
            let batches = ctx.execute_logical_plan(plan).await?.collect().await?;
            let wired = batches.iter().map(|b| to_wire(b, &schema)).collect::<std::result::Result<Vec<_>, _>>()?;
            out!("{}", pretty_format_batches(&wired)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn segments(command: SegmentsCommand) -> Result<ExitCode> {
    let common = match &command {
        SegmentsCommand::List { common, .. }
        | SegmentsCommand::Preview { common, .. }
        | SegmentsCommand::Run { common, .. }
        | SegmentsCommand::Diff { common, .. }
        | SegmentsCommand::Replay { common, .. } => common,
    };
    let config = common.config()?;
    let ctx = server::open(&config).await?;
    let runs = server::runs(&config, &ctx, Trigger::Cli);
    let print = |format: Format, text: String, json: serde_json::Value| -> Result<()> {
        match format {
            Format::Text => write_out(format_args!("{text}")),
            Format::Json => write_out(format_args!("{}", serde_json::to_string_pretty(&json).expect("JSON values serialize"))),
        }
    };
    match command {
        SegmentsCommand::List { format, .. } => {
            let listed = segments::list(&runs).await?;
            print(format, report::list_text(&listed), report::list_json(&listed))?;
            Ok(if listed.iter().any(|l| l.error.is_some()) { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
        SegmentsCommand::Preview { name, sample, format, .. } => {
            let p = segments::preview(&runs, &name).await?;
            print(format, report::preview_text(&p, sample), report::preview_json(&p, sample))?;
            Ok(ExitCode::SUCCESS)
        }
        SegmentsCommand::Run { names, format, .. } => {
            let names = if names.is_empty() { runs.project()?.segments.iter().map(|d| d.name.clone()).collect() } else { names };
            let mut all_published = true;
            let mut outcomes = Vec::new();
            for name in &names {
                // One segment's failure does not stop the others.
                match segments::run(&runs, name).await {
                    Ok(o) => {
                        all_published &= o.status == "published";
                        outcomes.push(report::run_json(&o));
                        if format == Format::Text {
                            out!("{}\n", report::run_text(&o));
                        }
                    }
                    Err(e) => {
                        all_published = false;
                        outcomes.push(serde_json::json!({"segment": name, "status": "error", "message": e.to_string()}));
                        if format == Format::Text {
                            out!("segment {name}: error: {e}\n");
                        }
                    }
                }
            }
            if format == Format::Json {
                out!("{}", serde_json::to_string_pretty(&outcomes).expect("JSON values serialize"));
            }
            Ok(if all_published { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        SegmentsCommand::Diff { name, from, to, format, .. } => {
            let d = segments::diff(&runs, &name, from.as_deref(), to.as_deref()).await?;
            print(format, report::diff_text(&d), report::diff_json(&d))?;
            Ok(ExitCode::SUCCESS)
        }
        SegmentsCommand::Replay { name, run, .. } => {
            let r = segments::replay(&runs, &name, &run).await?;
            out!("{}", report::replay_text(&r));
            Ok(if r.same() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_noise_is_quiet_unless_asked_for() {
        let quiet = ",buoyant_kernel::snapshot::builder=off,deltalake_core::operations::merge=error";
        assert_eq!(log_filter(None), format!("warn,persona=info{quiet}"));
        assert_eq!(log_filter(Some(" ")), format!("warn,persona=info{quiet}"));
        assert_eq!(log_filter(Some("info")), format!("info{quiet}"));
        assert_eq!(log_filter(Some("debug")), "debug");
        assert_eq!(log_filter(Some("warn,persona=trace,TRACE")), "warn,persona=trace,TRACE");
        assert_eq!(
            log_filter(Some("info,deltalake_core=warn")),
            "info,deltalake_core=warn,buoyant_kernel::snapshot::builder=off"
        );
        assert_eq!(log_filter(Some("buoyant_kernel=info")), "buoyant_kernel=info,deltalake_core::operations::merge=error");
        // `deltalake` is another crate than `deltalake_core`: no effect on its targets.
        assert!(log_filter(Some("deltalake=info")).ends_with(quiet));
        for spec in [None, Some("info"), Some("debug"), Some("info,deltalake_core=warn")] {
            tracing_subscriber::EnvFilter::try_new(log_filter(spec)).unwrap();
        }
    }
}
