//! `persona.toml`: which Delta tables to serve, where to listen, where the SQL files live.
//!
//! Every option is also a command-line flag and a `PERSONA_*` environment variable (see
//! `cli.rs`); a flag or variable wins over the file, the file wins over the default.
//! Unknown keys are errors that name the key, so a typo never silently falls back to a default.
//!
//! ```toml
//! listen = "127.0.0.1:50051"
//! sql_dir = "sql"
//! data_dir = ".persona"
//!
//! [tables]
//! events = "/data/lake/events"                      # a path, file:// or s3:// URL
//! profiles = { location = "s3://lake/profiles", storage_options = { AWS_REGION = "eu-west-1" } }
//!
//! [datafusion]
//! "datafusion.execution.batch_size" = "8192"
//!
//! [identity]                                        # see identity/rules.rs
//! threshold = 0.9
//!
//! [access]                                          # see access.rs
//! anonymous = "read"
//!
//! [audience]                                        # see runs/audience.rs
//! allow = "SELECT source_customer_id FROM profiles WHERE consent_email"
//!
//! [[schedule]]                                      # see runs/schedule.rs
//! segments = ["lapsed_high_value"]
//! cron = "0 6 * * *"
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::access::AccessConfig;
use crate::ingest::stream::IngestConfig;
use crate::runs::schedule::ScheduleConfig;
use crate::runs::{AudienceConfig, ChecksConfig};
use crate::error::{PersonaError, Result};
use crate::identity::Settings;
use crate::identity::rules::IdentityConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_CONFIG_FILE: &str = "persona.toml";
pub const DEFAULT_DATA_DIR: &str = ".persona";
pub const DEFAULT_SQL_DIR: &str = "sql";

/// The file as written by the user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<String>,
    pub sql_dir: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub tables: BTreeMap<String, TableSpec>,
    /// Passed to DataFusion's `SessionConfig` as `key = value` settings.
    #[serde(default)]
    pub datafusion: BTreeMap<String, String>,
    /// Identity resolution: comparisons, blocking rules, threshold (see `identity/rules.rs`).
    #[serde(default)]
    pub identity: IdentityConfig,
    /// Users and what anonymous clients may do (see `access.rs`).
    #[serde(default)]
    pub access: AccessConfig,
    /// The consent and suppression rule every segment's members pass (see `runs/audience.rs`).
    #[serde(default)]
    pub audience: AudienceConfig,
    #[serde(default)]
    pub checks: ChecksConfig,
    /// Scheduled runs inside `persona serve` (see `runs/schedule.rs`).
    #[serde(default)]
    pub schedule: Vec<ScheduleConfig>,
    /// Micro-batching of Flight SQL ingest streams (see `ingest/stream.rs`).
    #[serde(default)]
    pub ingest: IngestConfig,
}

/// A table entry: either a bare location string or `{ location, storage_options }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub location: String,
    pub storage_options: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableSpecFull {
    location: String,
    #[serde(default)]
    storage_options: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for TableSpec {
    // Hand-written instead of `#[serde(untagged)]`: untagged enums swallow the inner error, and
    // we want "unknown field `locaton`" to reach the user.
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct SpecVisitor;
        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = TableSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a location string or a table { location, storage_options }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<TableSpec, E> {
                Ok(TableSpec { location: v.to_string(), storage_options: BTreeMap::new() })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<TableSpec, A::Error> {
                let full = TableSpecFull::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TableSpec { location: full.location, storage_options: full.storage_options })
            }
        }
        d.deserialize_any(SpecVisitor)
    }
}

/// A table to serve, with its location resolved to a URL.
#[derive(Debug, Clone)]
pub struct TableConfig {
    pub name: String,
    pub url: Url,
    pub storage_options: BTreeMap<String, String>,
}

/// Options given on the command line or in the environment; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub sql_dir: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub sql_dir: PathBuf,
    /// Where persona keeps what it writes: the embedded lakehouse and the `persona.*` tables.
    pub data_dir: PathBuf,
    /// The user's tables; empty means "serve the embedded default lakehouse".
    pub tables: Vec<TableConfig>,
    pub datafusion: BTreeMap<String, String>,
    /// Identity resolution settings: the defaults overridden by `[identity]`.
    pub identity: Settings,
    /// Users and anonymous access for network clients.
    pub access: AccessConfig,
    pub audience: AudienceConfig,
    pub checks: ChecksConfig,
    pub schedule: Vec<ScheduleConfig>,
    pub ingest: IngestConfig,
    /// The file the settings came from, if any.
    pub source: Option<PathBuf>,
}

impl Config {
    /// Reads `persona.toml` (the `--config` path, or the one in the working directory if present)
    /// and applies the overrides.
    pub fn load(overrides: &Overrides) -> Result<Self> {
        let (file, source) = match &overrides.config {
            Some(path) => (read_file(path)?, Some(path.clone())),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                let path = PathBuf::from(DEFAULT_CONFIG_FILE);
                (read_file(&path)?, Some(path))
            }
            None => (ConfigFile::default(), None),
        };
        Self::resolve(file, source, overrides)
    }

    /// Parses a configuration from TOML text; relative paths are taken from `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<Self> {
        let file = parse(text, &base.join(DEFAULT_CONFIG_FILE))?;
        Self::resolve(file, Some(base.join(DEFAULT_CONFIG_FILE)), &Overrides::default())
    }

    fn resolve(file: ConfigFile, source: Option<PathBuf>, o: &Overrides) -> Result<Self> {
        // Relative paths in a file are relative to that file, so `persona --config x/persona.toml`
        // works from any directory.
        let base = source
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let listen_text = o.listen.clone().or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text.parse().map_err(|e| {
            PersonaError::Config(format!("listen: `{listen_text}` is not an address like 127.0.0.1:50051 ({e})"))
        })?;
        // The defaults too: with a file, `sql` and `.persona` sit beside it (without one, `base`
        // is empty and they are in the working directory). Flags and variables are taken as given,
        // relative to the working directory.
        let sql_dir = o.sql_dir.clone().unwrap_or_else(|| base.join(file.sql_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_SQL_DIR))));
        let data_dir = o.data_dir.clone().unwrap_or_else(|| base.join(file.data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))));
        let tables = file
            .tables
            .into_iter()
            .map(|(name, spec)| table_config(name, spec, &base))
            .collect::<Result<Vec<_>>>()?;
        let identity = Settings::from_config(&file.identity)?;
        // Checked now so a bad user entry stops any command with its name; the secrets in
        // environment variables are read only by `persona serve` (Authenticator::new).
        file.access.validate()?;
        for (i, entry) in file.schedule.iter().enumerate() {
            entry.validate(i)?;
        }
        if file.ingest.batch_rows == 0 {
            return Err(PersonaError::Config("ingest.batch_rows: must be at least 1".into()));
        }
        Ok(Self {
            listen,
            sql_dir,
            data_dir,
            tables,
            datafusion: file.datafusion,
            identity,
            access: file.access,
            audience: file.audience,
            checks: file.checks,
            schedule: file.schedule,
            ingest: file.ingest,
            source,
        })
    }

    /// True when no tables are configured and the embedded default lakehouse is served.
    pub fn uses_embedded(&self) -> bool {
        self.tables.is_empty()
    }
}

fn read_file(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PersonaError::Config(format!("cannot read {}: {e}", path.display())))?;
    parse(&text, path)
}

fn parse(text: &str, path: &Path) -> Result<ConfigFile> {
    toml::from_str(text).map_err(|e| PersonaError::Config(format!("{}: {e}", path.display())))
}

fn table_config(name: String, spec: TableSpec, base: &Path) -> Result<TableConfig> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(PersonaError::Config(format!(
            "tables.{name}: a table name may hold only letters, digits and `_`"
        )));
    }
    let url = location_url(&spec.location, base)
        .map_err(|e| PersonaError::Config(format!("tables.{name}.location: {e}")))?;
    Ok(TableConfig { name, url, storage_options: spec.storage_options })
}

/// Turns a location into a URL: `s3://`, `file://` and other URLs pass through, anything
/// else is a local path (relative to `base`).
pub fn location_url(location: &str, base: &Path) -> std::result::Result<Url, String> {
    if location.trim().is_empty() {
        return Err("the location is empty".into());
    }
    if location.contains("://") {
        return Url::parse(location).map_err(|e| format!("`{location}` is not a valid URL: {e}"));
    }
    let path = base.join(location);
    let absolute = std::path::absolute(&path).map_err(|e| format!("`{location}`: {e}"))?;
    Url::from_directory_path(&absolute).map_err(|()| format!("`{location}` is not a usable path"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("listn = \"x\"", Path::new("/tmp")).unwrap_err().to_string();
        assert!(err.contains("unknown field `listn`"), "{err}");
        let err = Config::from_toml("[tables.e]\nlocaton = \"/x\"", Path::new("/tmp"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `locaton`"), "{err}");
    }

    #[test]
    fn tables_as_string_or_table() {
        let cfg = Config::from_toml(
            "[tables]\nevents = \"lake/events\"\nprofiles = { location = \"s3://b/p\", storage_options = { AWS_REGION = \"eu\" } }",
            Path::new("/srv"),
        )
        .unwrap();
        assert_eq!(cfg.tables[0].name, "events");
        assert_eq!(cfg.tables[0].url.as_str(), "file:///srv/lake/events/");
        assert_eq!(cfg.tables[1].url.as_str(), "s3://b/p");
        assert_eq!(cfg.tables[1].storage_options["AWS_REGION"], "eu");
        assert!(!cfg.uses_embedded());
    }

    #[test]
    fn identity_rules_from_the_file() {
        let cfg = Config::from_toml(
            "[identity]\nthreshold = 0.95\n[[identity.block]]\nname = \"email\"\nsql = \"normalize_email(email)\"",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(cfg.identity.threshold, 0.95);
        assert_eq!(cfg.identity.blocking.len(), 1);
        assert!(cfg.identity.strict_blocking && !cfg.identity.strict_comparisons);
        let err = Config::from_toml("[identity]\nthreshold = 1.5", Path::new("/")).unwrap_err().to_string();
        assert!(err.contains("identity.threshold"), "{err}");
        let err = Config::from_toml("[identity]\nthreshhold = 0.5", Path::new("/")).unwrap_err().to_string();
        assert!(err.contains("unknown field `threshhold`"), "{err}");
    }

    #[test]
    fn paths_and_their_defaults_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("project");
        std::fs::create_dir_all(&sub).unwrap();
        let file = sub.join("persona.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:0\"\n").unwrap();
        // Given by path, from whatever the working directory is: both defaults beside the file.
        let cfg = Config::load(&Overrides { config: Some(file.clone()), ..Default::default() }).unwrap();
        assert_eq!(cfg.sql_dir, sub.join("sql"));
        assert_eq!(cfg.data_dir, sub.join(".persona"));
        std::fs::write(&file, "sql_dir = \"defs\"\ndata_dir = \"../state\"\n").unwrap();
        let cfg = Config::load(&Overrides { config: Some(file.clone()), ..Default::default() }).unwrap();
        assert_eq!((cfg.sql_dir, cfg.data_dir), (sub.join("defs"), sub.join("../state")));
        // Flags win and are taken as given (relative to the working directory).
        let o = Overrides { config: Some(file), sql_dir: Some("s".into()), data_dir: Some("d".into()), ..Default::default() };
        let cfg = Config::load(&o).unwrap();
        assert_eq!((cfg.sql_dir, cfg.data_dir), (PathBuf::from("s"), PathBuf::from("d")));
        // No file: the working directory.
        let cfg = Config::resolve(ConfigFile::default(), None, &Overrides::default()).unwrap();
        assert_eq!((cfg.sql_dir, cfg.data_dir), (PathBuf::from("sql"), PathBuf::from(".persona")));
        let cfg = Config::resolve(ConfigFile::default(), Some(PathBuf::from("persona.toml")), &Overrides::default()).unwrap();
        assert_eq!((cfg.sql_dir, cfg.data_dir), (PathBuf::from("sql"), PathBuf::from(".persona")));
    }

    #[test]
    fn bad_listen_address_is_explained() {
        let err = Config::from_toml("listen = \"nowhere\"", Path::new("/")).unwrap_err().to_string();
        assert!(err.contains("listen: `nowhere`"), "{err}");
    }
}
