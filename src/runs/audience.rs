//! The project-level audience rule: consent and suppression, applied to every segment's output
//! after its own SQL, so no segment file can forget it. Each rule query returns one column of
//! member keys; a member stays when it is in `allow` (if declared) and in no `suppress` query.

use std::collections::HashSet;

use datafusion::prelude::SessionContext;
use futures::TryStreamExt;

use super::AudienceConfig;
use super::rows::key_text;
use crate::error::{PersonaError, Result};

impl AudienceConfig {
    pub fn is_empty(&self) -> bool {
        self.allow.is_none() && self.suppress.is_empty()
    }

    /// The key column the rule speaks about.
    pub fn key(&self) -> &str {
        self.key.as_deref().unwrap_or("customer_id")
    }

    /// Every query of the rule, for pinning their tables.
    pub fn queries(&self) -> Vec<&str> {
        self.allow.iter().map(String::as_str).chain(self.suppress.iter().map(String::as_str)).collect()
    }

    /// The rule as recorded with a run (JSON), so a replay applies the rule the run applied.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "key": self.key(), "allow": self.allow, "suppress": self.suppress }).to_string()
    }

    pub fn from_json(text: &str) -> Result<Self> {
        if text.is_empty() {
            return Ok(Self::default());
        }
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| PersonaError::InvalidArgument(format!("recorded audience rule `{text}`: {e}")))?;
        Ok(Self {
            key: v["key"].as_str().map(str::to_string),
            allow: v["allow"].as_str().map(str::to_string),
            suppress: v["suppress"].as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default(),
        })
    }

    /// An error when the rule cannot apply to a segment keyed by `key_column`.
    pub fn applies_to(&self, segment: &str, key_column: &str) -> Result<()> {
        if !self.is_empty() && key_column != self.key() {
            return Err(PersonaError::InvalidArgument(format!(
                "segment `{segment}` is keyed by {key_column} but the [audience] rule filters {} keys; \
                 key the segment by {} or set [audience] key",
                self.key(),
                self.key()
            )));
        }
        Ok(())
    }
}

/// The allowed and suppressed keys, evaluated once per run in its pinned session.
pub struct Audience {
    allow: Option<HashSet<String>>,
    suppress: HashSet<String>,
}

impl Audience {
    pub async fn evaluate(ctx: &SessionContext, rule: &AudienceConfig) -> Result<Self> {
        let allow = match &rule.allow {
            Some(sql) => Some(keys(ctx, sql).await.map_err(|e| context("allow", sql, e))?),
            None => None,
        };
        let mut suppress = HashSet::new();
        for sql in &rule.suppress {
            suppress.extend(keys(ctx, sql).await.map_err(|e| context("suppress", sql, e))?);
        }
        Ok(Self { allow, suppress })
    }

    pub fn admits(&self, key: &str) -> bool {
        self.allow.as_ref().is_none_or(|a| a.contains(key)) && !self.suppress.contains(key)
    }
}

fn context(what: &str, sql: &str, e: PersonaError) -> PersonaError {
    let reason = match e {
        PersonaError::DataFusion(df) => df.strip_backtrace(),
        other => other.to_string(),
    };
    PersonaError::InvalidArgument(format!("[audience] {what} query `{sql}`: {reason}"))
}

/// The first column of a query's rows, as text.
async fn keys(ctx: &SessionContext, sql: &str) -> Result<HashSet<String>> {
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    let mut out = HashSet::new();
    while let Some(batch) = stream.try_next().await? {
        let column = batch.column(0);
        for row in 0..batch.num_rows() {
            if let Some(k) = key_text(column.as_ref(), row)? {
                out.insert(k);
            }
        }
    }
    Ok(out)
}
