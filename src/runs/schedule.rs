//! Scheduled runs inside `persona serve`: cron times (five fields, UTC) and "an input table has
//! a new Delta version".
//!
//! ```toml
//! [[schedule]]
//! segments = ["lapsed_high_value", "repeat_buyers"]
//! checks = ["events_not_in_future"]
//! cron = "0 6 * * 1-5"          # 06:00 UTC on weekdays
//!
//! [[schedule]]
//! segments = ["top_spenders_90d"]
//! on_new_version = true         # whenever a table it reads gets a new version
//! ```
//!
//! `persona serve` checks at start-up that every name an entry gives is a segment or check
//! defined under `sql_dir` ([`check_names`]), so a typo stops it with the name. The scheduler
//! wakes every few seconds. A cron entry fires once in each matching minute; a
//! new-version entry fires when the newest version of a table the definition reads differs from
//! what its last recorded run read. Runs go one at a time; a failing run is logged and recorded
//! like any other, and the scheduler carries on.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Deserialize;
use tracing::{info, warn};

use super::definition::Definition;
use super::{Runs, Trigger, pinned, record, segments};
use crate::error::{PersonaError, Result};

/// One `[[schedule]]` entry.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default)]
    pub segments: Vec<String>,
    #[serde(default)]
    pub checks: Vec<String>,
    pub cron: Option<String>,
    #[serde(default)]
    pub on_new_version: bool,
}

impl ScheduleConfig {
    pub fn validate(&self, index: usize) -> Result<()> {
        let at = |m: &str| PersonaError::Config(format!("schedule[{index}]: {m}"));
        if self.segments.is_empty() && self.checks.is_empty() {
            return Err(at("name the segments and/or checks to run"));
        }
        if self.cron.is_none() && !self.on_new_version {
            return Err(at("give a `cron` time or `on_new_version = true`"));
        }
        if let Some(c) = &self.cron {
            Cron::parse(c).map_err(|e| at(&format!("cron `{c}`: {e}")))?;
        }
        Ok(())
    }
}

/// A five-field cron expression: minute, hour, day of month, month, day of week (0 or 7 =
/// Sunday), each `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a list of those.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    days_restricted: bool,
    weekdays_restricted: bool,
}

impl Cron {
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(format!("five fields (minute hour day month weekday) are needed, {} given", fields.len()));
        };
        let mut weekdays = field(weekday, 0, 7, "weekday")?;
        // 7 is another name for Sunday.
        if weekdays[7] {
            weekdays[0] = true;
        }
        weekdays.truncate(7);
        Ok(Self {
            minutes: field(minute, 0, 59, "minute")?,
            hours: field(hour, 0, 23, "hour")?,
            days: field(day, 1, 31, "day")?,
            months: field(month, 1, 12, "month")?,
            weekdays,
            days_restricted: day != "*",
            weekdays_restricted: weekday != "*",
        })
    }

    /// True when the minute of `t` is one the expression names. As in every cron since Vixie
    /// cron, a restricted day of month and a restricted weekday match when either does.
    pub fn matches(&self, t: DateTime<Utc>) -> bool {
        let day = self.days[t.day() as usize];
        let weekday = self.weekdays[t.weekday().num_days_from_sunday() as usize];
        let day_ok = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            (true, false) => day,
            (false, true) => weekday,
            (false, false) => true,
        };
        self.minutes[t.minute() as usize] && self.hours[t.hour() as usize] && self.months[t.month() as usize] && day_ok
    }
}

/// The values one cron field selects, as flags indexed by value.
fn field(text: &str, low: u32, high: u32, name: &str) -> std::result::Result<Vec<bool>, String> {
    let mut on = vec![false; high as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| format!("{name}: bad step in `{part}`"))?),
            None => (part, 1),
        };
        let number = |s: &str| {
            s.parse::<u32>().ok().filter(|v| (low..=high).contains(v)).ok_or_else(|| format!("{name}: `{s}` is not between {low} and {high}"))
        };
        let (from, to) = match range {
            "*" => (low, high),
            r => match r.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None if step > 1 => (number(r)?, high),
                None => (number(r)?, number(r)?),
            },
        };
        if from > to {
            return Err(format!("{name}: `{range}` runs backwards"));
        }
        for v in (from..=to).step_by(step as usize) {
            on[v as usize] = true;
        }
    }
    Ok(on)
}

/// Checks that every segment and check the entries name is defined (and its file usable) under
/// `sql_dir`, so a typo stops `persona serve` at start-up with the name instead of failing at
/// every tick.
pub fn check_names(sql_dir: &std::path::Path, schedules: &[ScheduleConfig]) -> Result<()> {
    if schedules.is_empty() {
        return Ok(());
    }
    let project = super::project::Project::load(sql_dir)?;
    for (i, entry) in schedules.iter().enumerate() {
        let at = |e: PersonaError| PersonaError::Config(format!("schedule[{i}]: {e}"));
        for name in &entry.segments {
            project.segment(name).map_err(at)?;
        }
        for name in &entry.checks {
            project.check(name).map_err(at)?;
        }
    }
    Ok(())
}

/// How often the scheduler looks at the clock and the tables.
pub const TICK: Duration = Duration::from_secs(10);

/// Runs the schedules until the process ends.
pub async fn serve(runs: Runs, schedules: Vec<ScheduleConfig>, tick: Duration) {
    if schedules.is_empty() {
        return;
    }
    info!(entries = schedules.len(), "scheduler started");
    let crons: Vec<Option<Cron>> = schedules.iter().map(|s| s.cron.as_deref().and_then(|c| Cron::parse(c).ok())).collect();
    let mut fired: HashMap<usize, i64> = HashMap::new();
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        let now = Utc::now();
        let minute = now.timestamp() / 60;
        for (i, entry) in schedules.iter().enumerate() {
            if let Some(cron) = &crons[i]
                && cron.matches(now)
                && fired.get(&i) != Some(&minute)
            {
                fired.insert(i, minute);
                run_entry(&runs.with_trigger(Trigger::Schedule), entry, false).await;
            }
            if entry.on_new_version {
                run_entry(&runs.with_trigger(Trigger::NewVersion), entry, true).await;
            }
        }
    }
}

/// Runs what an entry names; with `only_if_new`, only the definitions whose inputs moved.
async fn run_entry(runs: &Runs, entry: &ScheduleConfig, only_if_new: bool) {
    for name in &entry.segments {
        let due = !only_if_new || inputs_moved(runs, name, true).await.unwrap_or_else(|e| log(name, &e, false));
        if due {
            match segments::run(runs, name).await {
                Ok(o) => info!(segment = %name, run = o.run_number, status = o.status, members = ?o.members, trigger = %runs.trigger.describe(), "scheduled segment run"),
                Err(e) => {
                    log(name, &e, true);
                }
            }
        }
    }
    let mut checks = Vec::new();
    for name in &entry.checks {
        if !only_if_new || inputs_moved(runs, name, false).await.unwrap_or_else(|e| log(name, &e, false)) {
            checks.push(name.clone());
        }
    }
    if !checks.is_empty() {
        match super::checks::run(runs, &checks).await {
            Ok(results) => {
                for c in results {
                    info!(check = %c.name, status = c.status.as_str(), message = %c.message, "scheduled check run");
                }
            }
            Err(e) => {
                log(&checks.join(","), &e, true);
            }
        }
    }
}

fn log(name: &str, e: &PersonaError, ran: bool) -> bool {
    warn!(definition = %name, error = %e, "scheduled {} failed", if ran { "run" } else { "version check" });
    false
}

/// True when a table the definition reads has a newer version than its last run read (or it
/// never ran).
async fn inputs_moved(runs: &Runs, name: &str, segment: bool) -> Result<bool> {
    let project = runs.project()?;
    let def: &Definition = if segment { project.segment(name)? } else { project.check(name)? };
    let tables = runs.readable_tables(def).map_err(PersonaError::InvalidArgument)?;
    let last = if segment {
        record::segment_runs(runs, name).await?.pop().map(|r| r.input_versions)
    } else {
        record::last_check_inputs(runs, name).await?
    };
    let Some(last) = last else { return Ok(true) };
    let now = pinned::pin(&runs.ctx, &tables, None).await?.versions;
    Ok(now.iter().any(|(t, v)| last.get(t) != Some(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn cron_fields() {
        let c = Cron::parse("0 6 * * 1-5").unwrap();
        // 2026-12-04 is a Friday, 2026-12-05 a Saturday.
        assert!(c.matches(at(2026, 12, 4, 6, 0)));
        assert!(!c.matches(at(2026, 12, 4, 6, 1)));
        assert!(!c.matches(at(2026, 12, 5, 6, 0)));
        let every_15 = Cron::parse("*/15 * * * *").unwrap();
        assert!([0, 15, 30, 45].iter().all(|m| every_15.matches(at(2026, 1, 1, 3, *m))));
        assert!(!every_15.matches(at(2026, 1, 1, 3, 20)));
        // Day of month OR weekday when both are restricted: the 1st, and every Sunday (7 = 0).
        let c = Cron::parse("30 2 1 * 7").unwrap();
        assert!(c.matches(at(2026, 12, 1, 2, 30)), "the 1st (a Tuesday)");
        assert!(c.matches(at(2026, 12, 6, 2, 30)), "a Sunday");
        assert!(!c.matches(at(2026, 12, 7, 2, 30)));
        let c = Cron::parse("0 0,12 1-7/3 1,7 *").unwrap();
        assert!(c.matches(at(2026, 7, 4, 12, 0)));
        assert!(!c.matches(at(2026, 7, 5, 12, 0)));
    }

    #[test]
    fn bad_cron_is_explained() {
        assert!(Cron::parse("0 6 * *").unwrap_err().contains("five fields"));
        assert!(Cron::parse("61 * * * *").unwrap_err().contains("minute: `61`"));
        assert!(Cron::parse("0 9-5 * * *").unwrap_err().contains("backwards"));
        assert!(Cron::parse("*/0 * * * *").unwrap_err().contains("bad step"));
        let entry = ScheduleConfig { segments: vec!["a".into()], ..Default::default() };
        assert!(entry.validate(0).unwrap_err().to_string().contains("schedule[0]: give a `cron`"));
    }
}
