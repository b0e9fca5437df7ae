//! Who may do what over Flight SQL.
//!
//! A client is anonymous or a user declared in `persona.toml`. Users authenticate the way
//! Flight SQL clients do it: ADBC and JDBC send `authorization: Basic ...` in a Handshake and
//! use the bearer token the server answers with on every later call; scripts may also send
//! `Basic` on every call, or a configured token as `Bearer`. What a client may do is its
//! [`Access`]: `read` (queries, EXPLAIN, SHOW, metadata) or `write` (also DML, ingest and the
//! procedures that write). Anonymous clients get `[access] anonymous` (default `read`, or
//! `none` to require credentials).
//!
//! ```toml
//! [access]
//! anonymous = "read"                      # none | read | write
//! [[access.users]]
//! name = "loader"
//! password_env = "PERSONA_LOADER_PASSWORD" # or password = "...", token / token_env
//! access = "write"
//! ```
//!
//! Issued tokens are `persona1.<user>.<HMAC-SHA256 of the user under a key drawn at start-up>`:
//! stateless, so any number of clients cost no memory, and they end with the process (a client
//! reconnecting after a restart authenticates again).

use std::fmt;

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{KeyInit, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{PersonaError, Result};

/// Basic credentials, with or without `=` padding: the Go Flight client (ADBC) leaves it out.
const BASIC: GeneralPurpose =
    GeneralPurpose::new(&alphabet::STANDARD, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));

/// What a client may do, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Queries, EXPLAIN, SHOW and metadata.
    Read,
    /// Also DML on Delta tables, bulk ingest, and procedures that write persona's tables.
    Write,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "read",
            Access::Write => "write",
        })
    }
}

/// What anonymous clients may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Anonymous {
    /// Credentials are required.
    None,
    #[default]
    Read,
    Write,
}

/// The `[access]` table of `persona.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    #[serde(default)]
    pub anonymous: Anonymous,
    #[serde(default)]
    pub users: Vec<UserConfig>,
}

/// One `[[access.users]]` entry: a name, one way to prove it, and what it may do.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    pub password: Option<String>,
    /// Environment variable holding the password, so it stays out of the file.
    pub password_env: Option<String>,
    /// A fixed bearer token for scripts (`authorization: Bearer <token>`).
    pub token: Option<String>,
    pub token_env: Option<String>,
    pub access: Access,
}

/// A caller as the server sees it after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `None` for anonymous clients.
    pub user: Option<String>,
    /// `None` when the caller may do nothing (anonymous access is off).
    pub access: Option<Access>,
    /// True when the caller proved itself with a password in this request: a Handshake then
    /// answers with a bearer token.
    pub by_password: bool,
}

impl Caller {
    /// The access the caller has, or UNAUTHENTICATED when it has none.
    pub fn require(&self, needed: Access) -> Result<Access> {
        match self.access {
            None => Err(PersonaError::Unauthenticated(
                "this server requires credentials: connect with a user name and password or a bearer token".into(),
            )),
            Some(a) if a >= needed => Ok(a),
            Some(a) => Err(PersonaError::PermissionDenied(format!(
                "{} has {a} access; this needs {needed} access",
                self.user.as_deref().map_or("an anonymous client".to_string(), |u| format!("user `{u}`"))
            ))),
        }
    }
}

#[derive(Clone)]
struct User {
    name: String,
    /// SHA-256 of the password: compared digest to digest, so timing reveals nothing of it.
    password: Option<[u8; 32]>,
    token: Option<[u8; 32]>,
    access: Access,
}

/// Checks credentials and issues tokens.
#[derive(Clone)]
pub struct Authenticator {
    anonymous: Anonymous,
    users: Vec<User>,
    key: [u8; 32],
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets.
        let names: Vec<&str> = self.users.iter().map(|u| u.name.as_str()).collect();
        f.debug_struct("Authenticator").field("anonymous", &self.anonymous).field("users", &names).finish()
    }
}

impl Default for Authenticator {
    /// Anonymous read access and no users: what a server without `[access]` does.
    fn default() -> Self {
        Self::new(&AccessConfig::default()).expect("the default access configuration is valid")
    }
}

impl AccessConfig {
    /// Checks the declarations themselves: usable and distinct names, one way to give each
    /// secret, at least one secret per user. Environment variables are not read here: only a
    /// server needs the secrets (see [`Authenticator::new`]), so every other command runs with
    /// them unset.
    pub fn validate(&self) -> Result<()> {
        for (i, u) in self.users.iter().enumerate() {
            let at = |what: &str| PersonaError::Config(format!("access.users `{}`: {what}", u.name));
            if u.name.is_empty() || u.name.contains(['.', ':']) {
                return Err(PersonaError::Config(format!(
                    "access.users: `{}` is not a usable user name (non-empty, no `.` or `:`)",
                    u.name
                )));
            }
            if self.users[..i].iter().any(|o| o.name == u.name) {
                return Err(at("declared twice"));
            }
            check_secret(&u.password, &u.password_env).map_err(|e| at(&e))?;
            check_secret(&u.token, &u.token_env).map_err(|e| at(&e))?;
            if u.password.is_none() && u.password_env.is_none() && u.token.is_none() && u.token_env.is_none() {
                return Err(at("give a password, password_env, token or token_env"));
            }
        }
        Ok(())
    }
}

impl Authenticator {
    /// The authenticator a server uses: the declarations checked, and secrets given through
    /// environment variables read now (an unset one is an error naming it).
    pub fn new(config: &AccessConfig) -> Result<Self> {
        config.validate()?;
        let mut users: Vec<User> = Vec::new();
        for u in &config.users {
            let at = |what: &str| PersonaError::Config(format!("access.users `{}`: {what}", u.name));
            let password = secret(&u.password, &u.password_env).map_err(|e| at(&e))?;
            let token = secret(&u.token, &u.token_env).map_err(|e| at(&e))?;
            users.push(User { name: u.name.clone(), password: password.map(digest), token: token.map(digest), access: u.access });
        }
        Ok(Self { anonymous: config.anonymous, users, key: random_key() })
    }

    /// True when some caller could write: Flight SQL then reports the server as not read-only.
    pub fn allows_writes(&self) -> bool {
        self.anonymous == Anonymous::Write || self.users.iter().any(|u| u.access == Access::Write)
    }

    /// The caller an `authorization` header (or its absence) stands for. Wrong credentials are
    /// UNAUTHENTICATED, never a silent fall-back to anonymous access.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller> {
        let Some(header) = authorization.map(str::trim).filter(|h| !h.is_empty()) else {
            let access = match self.anonymous {
                Anonymous::None => None,
                Anonymous::Read => Some(Access::Read),
                Anonymous::Write => Some(Access::Write),
            };
            return Ok(Caller { user: None, access, by_password: false });
        };
        let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
        let value = value.trim();
        let denied = |why: &str| PersonaError::Unauthenticated(why.to_string());
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = BASIC.decode(value).map_err(|_| denied("malformed Basic credentials"))?;
            let text = String::from_utf8(decoded).map_err(|_| denied("malformed Basic credentials"))?;
            let (name, password) = text.split_once(':').ok_or_else(|| denied("malformed Basic credentials"))?;
            let user = self
                .users
                .iter()
                .find(|u| u.name == name && u.password.is_some_and(|p| same(&p, &digest(password.to_string()))))
                .ok_or_else(|| denied("wrong user name or password"))?;
            return Ok(Caller { user: Some(user.name.clone()), access: Some(user.access), by_password: true });
        }
        if scheme.eq_ignore_ascii_case("bearer") {
            if let Some(user) = self.verify_issued(value) {
                return Ok(Caller { user: Some(user.name.clone()), access: Some(user.access), by_password: false });
            }
            let offered = digest(value.to_string());
            if let Some(user) = self.users.iter().find(|u| u.token.is_some_and(|t| same(&t, &offered))) {
                return Ok(Caller { user: Some(user.name.clone()), access: Some(user.access), by_password: false });
            }
            return Err(denied("unknown or expired bearer token: authenticate again"));
        }
        Err(denied(&format!("unsupported authorization scheme `{scheme}`: use Basic or Bearer")))
    }

    /// A bearer token for `user`, valid until the server stops.
    pub fn issue(&self, user: &str) -> String {
        format!("persona1.{}.{}", URL_SAFE_NO_PAD.encode(user), hex::encode(self.mac(user)))
    }

    fn verify_issued(&self, token: &str) -> Option<&User> {
        let mut parts = token.split('.');
        let (Some("persona1"), Some(name), Some(mac), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return None;
        };
        let name = String::from_utf8(URL_SAFE_NO_PAD.decode(name).ok()?).ok()?;
        let mac = hex::decode(mac).ok()?;
        let mut check = hmac::Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length works");
        check.update(name.as_bytes());
        check.verify_slice(&mac).ok()?;
        self.users.iter().find(|u| u.name == name)
    }

    fn mac(&self, user: &str) -> Vec<u8> {
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length works");
        mac.update(user.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

/// A secret declared at most one way, and not empty when inline.
fn check_secret(inline: &Option<String>, env: &Option<String>) -> std::result::Result<(), String> {
    match (inline, env) {
        (Some(_), Some(_)) => Err("give the secret inline or through an environment variable, not both".into()),
        (Some(s), None) if s.is_empty() => Err("the secret is empty".into()),
        (None, Some(var)) if var.is_empty() => Err("the environment variable name is empty".into()),
        _ => Ok(()),
    }
}

/// A secret given inline or through an environment variable.
fn secret(inline: &Option<String>, env: &Option<String>) -> std::result::Result<Option<String>, String> {
    match (inline, env) {
        (Some(_), Some(_)) => Err("give the secret inline or through an environment variable, not both".into()),
        (Some(s), None) if s.is_empty() => Err("the secret is empty".into()),
        (Some(s), None) => Ok(Some(s.clone())),
        (None, Some(var)) => match std::env::var(var) {
            Ok(s) if !s.is_empty() => Ok(Some(s)),
            _ => Err(format!("environment variable {var} is not set")),
        },
        (None, None) => Ok(None),
    }
}

fn digest(s: String) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Equality without an early exit.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(anonymous: Anonymous) -> Authenticator {
        let users = vec![
            UserConfig { name: "loader".into(), password: Some("s3cret".into()), password_env: None, token: None, token_env: None, access: Access::Write },
            UserConfig { name: "bi".into(), password: None, password_env: None, token: Some("tok-123".into()), token_env: None, access: Access::Read },
        ];
        Authenticator::new(&AccessConfig { anonymous, users }).unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn passwords_tokens_and_anonymous_callers() {
        let a = auth(Anonymous::Read);
        assert_eq!(a.authenticate(None).unwrap().access, Some(Access::Read));
        let loader = a.authenticate(Some(&basic("loader", "s3cret"))).unwrap();
        assert_eq!((loader.user.as_deref(), loader.access, loader.by_password), (Some("loader"), Some(Access::Write), true));
        // "loader:s3cret" is 13 bytes: padded it ends in "=", the Go client sends it without.
        let unpadded = basic("loader", "s3cret").trim_end_matches('=').to_string();
        assert_ne!(unpadded, basic("loader", "s3cret"));
        assert_eq!(a.authenticate(Some(&unpadded)).unwrap().user.as_deref(), Some("loader"));
        let issued = a.issue("loader");
        let again = a.authenticate(Some(&format!("Bearer {issued}"))).unwrap();
        assert_eq!((again.user.as_deref(), again.access, again.by_password), (Some("loader"), Some(Access::Write), false));
        assert_eq!(a.authenticate(Some("Bearer tok-123")).unwrap().access, Some(Access::Read));
        // Wrong credentials are refused, not treated as anonymous.
        assert!(matches!(a.authenticate(Some(&basic("loader", "guess"))), Err(PersonaError::Unauthenticated(_))));
        assert!(matches!(a.authenticate(Some("Bearer tok-124")), Err(PersonaError::Unauthenticated(_))));
        // A token issued by another server (another key) is not accepted.
        let other = auth(Anonymous::Read).issue("loader");
        assert!(a.authenticate(Some(&format!("Bearer {other}"))).is_err());
        // A token naming another user with this user's MAC does not verify.
        let forged = issued.replace(&URL_SAFE_NO_PAD.encode("loader"), &URL_SAFE_NO_PAD.encode("bi"));
        assert!(a.authenticate(Some(&format!("Bearer {forged}"))).is_err());
    }

    #[test]
    fn access_levels_are_enforced() {
        let a = auth(Anonymous::None);
        let anonymous = a.authenticate(None).unwrap();
        assert!(matches!(anonymous.require(Access::Read), Err(PersonaError::Unauthenticated(_))));
        let bi = a.authenticate(Some("Bearer tok-123")).unwrap();
        assert_eq!(bi.require(Access::Read).unwrap(), Access::Read);
        let err = bi.require(Access::Write).unwrap_err().to_string();
        assert!(err.contains("user `bi` has read access; this needs write access"), "{err}");
        assert!(a.allows_writes());
        assert!(!Authenticator::default().allows_writes());
    }

    #[test]
    fn bad_user_declarations_are_named() {
        let cfg: AccessConfig = toml::from_str("[[users]]\nname = \"x\"\naccess = \"write\"").unwrap();
        let err = Authenticator::new(&cfg).unwrap_err().to_string();
        assert!(err.contains("access.users `x`: give a password"), "{err}");
        let cfg: AccessConfig =
            toml::from_str("[[users]]\nname = \"x\"\npassword_env = \"PERSONA_TEST_UNSET_VARIABLE\"\naccess = \"read\"").unwrap();
        let err = Authenticator::new(&cfg).unwrap_err().to_string();
        assert!(err.contains("PERSONA_TEST_UNSET_VARIABLE is not set"), "{err}");
        // Only a server reads the variable: the declaration itself is fine.
        cfg.validate().unwrap();
        let cfg: AccessConfig =
            toml::from_str("[[users]]\nname = \"x\"\npassword = \"a\"\npassword_env = \"B\"\naccess = \"read\"").unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("not both"));
        let cfg: AccessConfig =
            toml::from_str("[[users]]\nname = \"x\"\ntoken = \"t\"\naccess = \"read\"\n[[users]]\nname = \"x\"\ntoken = \"u\"\naccess = \"read\"").unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("access.users `x`: declared twice"));
        let err = toml::from_str::<AccessConfig>("anonymous = \"admin\"").unwrap_err().to_string();
        assert!(err.contains("unknown variant `admin`"), "{err}");
    }
}
