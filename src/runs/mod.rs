//! Segments and checks: versioned SQL files that analysts write, run against pinned input
//! versions, with every run recorded in Delta.
//!
//! Layout: `definition.rs` (a file's header and SQL), `builtin.rs` (check kinds declared in a
//! header), `threshold.rs` (metric limits), `project.rs` (all files of a sql folder),
//! `pinned.rs` (inputs at fixed Delta versions), `rows.rs` (rows as JSON), `checks.rs` (running
//! checks), `segments.rs` (preview, run, diff, replay), `audience.rs` (the consent and
//! suppression rule applied to every segment), `record.rs` (the run tables' rows),
//! `report.rs` (what the command line prints), `schedule.rs` (cron and new-version triggers),
//! this file (what a run needs, shared by the command line, procedures and the scheduler).

pub mod audience;
pub mod builtin;
pub mod checks;
pub mod definition;
pub mod pinned;
pub mod project;
pub mod record;
pub mod report;
pub mod rows;
pub mod schedule;
pub mod segments;
pub mod threshold;

use std::path::PathBuf;

use datafusion::prelude::SessionContext;
use serde::Deserialize;

use crate::error::Result;
use checks::CheckResult;
use definition::Definition;
use pinned::Pinned;
use project::Project;

/// `[audience]` in persona.toml: who any segment may reach at all.
///
/// ```toml
/// [audience]
/// key = "customer_id"        # the member key the rule speaks about (default customer_id)
/// allow = "SELECT source_customer_id FROM profiles WHERE consent_email"   # members must be here
/// suppress = ["SELECT customer_id FROM suppression_list"]                 # and in none of these
/// ```
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AudienceConfig {
    pub key: Option<String>,
    pub allow: Option<String>,
    #[serde(default)]
    pub suppress: Vec<String>,
}

/// `[checks]` in persona.toml.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChecksConfig {
    /// Failing rows kept per check run in persona.check_failures (default 100).
    pub failure_sample: Option<usize>,
}

/// Who or what started a run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The command line.
    Cli,
    /// A Flight SQL client (`CALL ...`), with its user name when it has one.
    Sql(Option<String>),
    /// A cron schedule.
    Schedule,
    /// An input table got a new Delta version.
    NewVersion,
}

impl Trigger {
    pub fn describe(&self) -> String {
        match self {
            Trigger::Cli => "cli".into(),
            Trigger::Sql(None) => "sql".into(),
            Trigger::Sql(Some(u)) => format!("sql:{u}"),
            Trigger::Schedule => "schedule".into(),
            Trigger::NewVersion => "new_version".into(),
        }
    }
}

/// Everything a run needs: the live session, where files and tables are, and the rules.
#[derive(Clone)]
pub struct Runs {
    pub ctx: SessionContext,
    pub data_dir: PathBuf,
    pub sql_dir: PathBuf,
    pub audience: AudienceConfig,
    pub checks: ChecksConfig,
    pub trigger: Trigger,
}

impl Runs {
    pub fn project(&self) -> Result<Project> {
        Project::load(&self.sql_dir)
    }

    pub fn failure_sample(&self) -> usize {
        self.checks.failure_sample.unwrap_or(100)
    }

    pub fn with_trigger(&self, trigger: Trigger) -> Self {
        Self { trigger, ..self.clone() }
    }

    /// Evaluates checks and records the results as one check run. With `gate`, the checks read
    /// the segment run's pinned inputs (which include theirs) and are recorded against that run;
    /// otherwise they pin their own inputs, all at once, so they judge one consistent state.
    pub async fn evaluate_checks(&self, defs: &[&Definition], gate: Option<(&Pinned, &str)>) -> Result<Vec<CheckResult>> {
        let mut results = Vec::new();
        let mut usable = Vec::new();
        let mut all_tables = Vec::new();
        for d in defs {
            match self.readable_tables(d) {
                Ok(tables) => {
                    all_tables.extend(tables.iter().cloned());
                    usable.push((*d, tables));
                }
                Err(e) => results.push(CheckResult::error(&d.name, Some(d), e)),
            }
        }
        let own;
        let (pinned, segment_run) = match gate {
            Some((p, run)) => (p, Some(run)),
            None => {
                own = pinned::pin(&self.ctx, &all_tables, None).await?;
                (&own, None)
            }
        };
        let mut recorded = Vec::new();
        for (d, tables) in &usable {
            let previous = record::last_metric(self, &d.name).await?;
            let result = checks::evaluate(&pinned.ctx, d, previous, self.failure_sample()).await;
            recorded.push((result.clone(), pinned::subset(&pinned.versions, tables)));
            results.push(result);
        }
        record::checks(self, &recorded, segment_run).await?;
        Ok(results)
    }

    /// The tables a definition reads, each known to the catalog; otherwise `file:line: reason`.
    pub fn readable_tables(&self, d: &Definition) -> std::result::Result<Vec<(String, String)>, String> {
        let at = |e: String| format!("{}:{}: {e}", d.path.display(), d.sql_line);
        let mut sqls = vec![d.sql.as_str()];
        let extra;
        if let Some(table) = d.builtin.as_ref().and_then(|b| b.schema_table()) {
            extra = format!("SELECT * FROM {table}");
            sqls.push(&extra);
        }
        let tables = pinned::tables_read(&self.ctx, &sqls).map_err(|e| at(e.to_string()))?;
        for (schema, table) in &tables {
            let known = self.ctx.catalog(crate::catalog::CATALOG).and_then(|c| c.schema(schema)).is_some_and(|s| s.table_exist(table));
            if !known {
                return Err(at(format!("table not found: {schema}.{table}")));
            }
        }
        Ok(tables)
    }
}
