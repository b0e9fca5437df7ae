//! What the resolver compares and which pairs it considers, declared as SQL.
//!
//! Every comparison and every blocking rule is a SQL expression over one profile row, so an
//! analyst states them with the same functions they query with (`normalize_email(email)`,
//! `soundex(normalize_name(surname)) || '|' || postcode`). They live in the `[identity]` table of
//! `persona.toml`; without one the defaults below are used, skipping those whose columns the
//! profiles lack (FEBRL has no e-mail, the web shop no social security number).
//!
//! ```toml
//! [identity]
//! threshold = 0.9                  # match probability at or above which profiles link
//! max_cluster_size = 20            # no person gets more profiles than this
//! max_block_size = 100             # a blocking key shared by more profiles pairs none of them
//! max_pairs_per_profile = 10       # a rule pairing more candidates than this per profile is skipped
//! blocked_values = ["test@test.com", "n/a"]   # values that never link (all-zero values never do)
//! phone_country_code = "44"        # for phones written without one, in the default rules
//!
//! [[identity.compare]]
//! name = "email"
//! sql = "normalize_email(email)"
//! method = "damerau_levenshtein"   # exact | jaro_winkler | jaro | levenshtein | damerau_levenshtein
//! levels = [1]                     # similarity floors (jaro*) or edit-distance ceilings
//! m = [0.9, 0.07, 0.03]            # optional fixed weights per level, most agreeing first
//! u = [0.001, 0.004, 0.995]        # (learnt by EM / estimated from random pairs otherwise)
//!
//! [[identity.block]]
//! name = "email"
//! sql = "normalize_email(email)"
//! ```

use serde::Deserialize;

use crate::error::{PersonaError, Result};

/// Values that never link records, whatever column they appear in (values made only of zeros
/// never link either).
pub const DEFAULT_BLOCKED_VALUES: [&str; 9] = [
    "unknown", "n/a", "na", "none", "null", "test@test.com", "noemail@example.com", "no@email.com", "-",
];

/// The `[identity]` table of `persona.toml`; every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityConfig {
    pub threshold: Option<f64>,
    pub max_cluster_size: Option<usize>,
    pub max_block_size: Option<usize>,
    pub max_pairs_per_profile: Option<f64>,
    pub blocked_values: Option<Vec<String>>,
    /// Fixed probability that two profiles picked at random are the same person; estimated
    /// from the candidate pairs when absent.
    pub prior: Option<f64>,
    /// Country code of phone numbers written without one ("07700 900123" in a UK shop), used
    /// by the default phone comparison and blocking rule.
    pub phone_country_code: Option<String>,
    #[serde(rename = "compare")]
    pub comparisons: Option<Vec<Comparison>>,
    #[serde(rename = "block")]
    pub blocking: Option<Vec<BlockingRule>>,
}

/// How agreement on one field is graded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Exact,
    JaroWinkler,
    Jaro,
    Levenshtein,
    DamerauLevenshtein,
}

impl Method {
    fn default_levels(self) -> Vec<f64> {
        match self {
            Method::Exact => vec![],
            Method::JaroWinkler | Method::Jaro => vec![0.94, 0.88],
            Method::Levenshtein | Method::DamerauLevenshtein => vec![1.0],
        }
    }

    fn is_similarity(self) -> bool {
        matches!(self, Method::JaroWinkler | Method::Jaro)
    }
}

/// One compared field: a SQL expression and how two values of it are graded.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub name: String,
    /// SQL over a profile row; defaults to the column called `name`.
    pub sql: Option<String>,
    pub method: Method,
    /// Floors (similarities, descending) or ceilings (edit distances, ascending) of the
    /// levels between "exact" and "different"; defaults depend on the method.
    pub levels: Option<Vec<f64>>,
    /// Fixed m probabilities (how often true matches fall in each level), most agreeing level
    /// first; learnt by EM when absent.
    pub m: Option<Vec<f64>>,
    /// Fixed u probabilities (how often non-matches fall in each level), most agreeing level
    /// first; estimated from random pairs when absent.
    pub u: Option<Vec<f64>>,
}

impl Comparison {
    fn new(name: &str, sql: &str, method: Method) -> Self {
        Self { name: name.into(), sql: Some(sql.into()), method, levels: None, m: None, u: None }
    }

    pub fn sql(&self) -> String {
        self.sql.clone().unwrap_or_else(|| quote(&self.name))
    }

    /// Level thresholds, most agreeing first.
    pub fn thresholds(&self) -> Vec<f64> {
        self.levels.clone().unwrap_or_else(|| self.method.default_levels())
    }

    /// Number of agreement levels: exact, one per threshold, and "different".
    pub fn level_count(&self) -> usize {
        self.thresholds().len() + 2
    }
}

/// A blocking rule: profiles whose `sql` values are equal (and not NULL) are compared.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockingRule {
    pub name: String,
    pub sql: String,
}

impl BlockingRule {
    fn new(name: &str, sql: &str) -> Self {
        Self { name: name.into(), sql: sql.into() }
    }
}

/// At most this many comparisons: a pair's agreement pattern is packed into 4 bits per field.
pub const MAX_COMPARISONS: usize = 16;
/// At most this many levels per comparison (the 16th 4-bit code means "missing").
pub const MAX_LEVELS: usize = 15;

/// The default phone expression: without a country code, national numbers give NULL (their
/// country is unknown) and only numbers written with `+` or `00` compare.
fn phone_sql(country_code: Option<&str>) -> String {
    match country_code {
        Some(cc) => format!("normalize_phone(phone, '{}')", cc.replace('\'', "''")),
        None => "normalize_phone(phone)".into(),
    }
}

/// The comparisons used when `[identity]` declares none: names, address, birth date and
/// contact details, each through the normalizer an analyst would use.
pub fn default_comparisons(phone_country_code: Option<&str>) -> Vec<Comparison> {
    use Method::*;
    vec![
        Comparison::new("given_name", "normalize_name(given_name)", JaroWinkler),
        Comparison::new("surname", "normalize_name(surname)", JaroWinkler),
        Comparison::new("street_number", "lower(trim(street_number))", Exact),
        Comparison::new("address_1", "normalize_name(address_1)", JaroWinkler),
        Comparison::new("address_2", "normalize_name(address_2)", JaroWinkler),
        Comparison::new("suburb", "normalize_name(suburb)", JaroWinkler),
        Comparison::new("postcode", "lower(trim(postcode))", DamerauLevenshtein),
        Comparison::new("state", "lower(trim(state))", Exact),
        Comparison::new("date_of_birth", "trim(date_of_birth)", DamerauLevenshtein),
        Comparison::new("soc_sec_id", "trim(soc_sec_id)", DamerauLevenshtein),
        Comparison::new("email", "normalize_email(email)", DamerauLevenshtein),
        Comparison::new("phone", &phone_sql(phone_country_code), DamerauLevenshtein),
    ]
}

/// The blocking rules used when `[identity]` declares none.
pub fn default_blocking(phone_country_code: Option<&str>) -> Vec<BlockingRule> {
    vec![
        BlockingRule::new("soc_sec_id", "trim(soc_sec_id)"),
        // At scale a birth date alone pairs too many strangers (a million people share about
        // 25,000 dates) and `max_pairs_per_profile` drops it; these finer rules stay.
        BlockingRule::new("date_of_birth", "trim(date_of_birth)"),
        BlockingRule::new("date_of_birth+soundex(surname)", "trim(date_of_birth) || '|' || soundex(normalize_name(surname))"),
        BlockingRule::new("date_of_birth+soundex(given_name)", "trim(date_of_birth) || '|' || soundex(normalize_name(given_name))"),
        BlockingRule::new("email", "normalize_email(email)"),
        BlockingRule::new("phone", &phone_sql(phone_country_code)),
        BlockingRule::new("soundex(surname)+postcode", "soundex(normalize_name(surname)) || '|' || lower(trim(postcode))"),
        BlockingRule::new("soundex(given_name)+soundex(surname)", "soundex(normalize_name(given_name)) || '|' || soundex(normalize_name(surname))"),
        BlockingRule::new("street_number+address_1", "lower(trim(street_number)) || '|' || normalize_name(address_1)"),
        BlockingRule::new("given_name+suburb", "normalize_name(given_name) || '|' || normalize_name(suburb)"),
    ]
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Checks what a user declared: names unique, levels in order and within range.
pub fn validate(comparisons: &[Comparison], blocking: &[BlockingRule]) -> Result<()> {
    let bad = |m: String| Err(PersonaError::Config(format!("identity: {m}")));
    if comparisons.is_empty() {
        return bad("declare at least one [[identity.compare]]".into());
    }
    if comparisons.len() > MAX_COMPARISONS {
        return bad(format!("at most {MAX_COMPARISONS} comparisons, {} declared", comparisons.len()));
    }
    if blocking.is_empty() {
        return bad("declare at least one [[identity.block]] rule".into());
    }
    for (i, c) in comparisons.iter().enumerate() {
        if comparisons[..i].iter().any(|o| o.name == c.name) {
            return bad(format!("comparison `{}` is declared twice", c.name));
        }
        let t = c.thresholds();
        if c.method == Method::Exact && !t.is_empty() {
            return bad(format!("comparison `{}`: method exact takes no levels", c.name));
        }
        if t.len() + 2 > MAX_LEVELS {
            return bad(format!("comparison `{}`: at most {} levels", c.name, MAX_LEVELS - 2));
        }
        let ordered = if c.method.is_similarity() {
            t.iter().all(|x| (0.0..=1.0).contains(x)) && t.windows(2).all(|w| w[0] > w[1])
        } else {
            t.iter().all(|x| *x >= 0.0 && x.fract() == 0.0) && t.windows(2).all(|w| w[0] < w[1])
        };
        for (what, p) in [("m", &c.m), ("u", &c.u)] {
            let Some(p) = p else { continue };
            if p.len() != c.level_count() {
                return bad(format!(
                    "comparison `{}`: {what} needs one probability per level ({}: exact, {} between, different), got {}",
                    c.name,
                    c.level_count(),
                    t.len(),
                    p.len()
                ));
            }
            if !p.iter().all(|x| *x > 0.0 && *x <= 1.0) || (p.iter().sum::<f64>() - 1.0).abs() > 1e-6 {
                return bad(format!("comparison `{}`: {what} must be probabilities above 0 that sum to 1, got {p:?}", c.name));
            }
        }
        if !ordered {
            let want = if c.method.is_similarity() {
                "similarities between 0 and 1, descending"
            } else {
                "whole edit distances, ascending"
            };
            return bad(format!("comparison `{}`: levels must be {want}, got {t:?}", c.name));
        }
    }
    for (i, r) in blocking.iter().enumerate() {
        if blocking[..i].iter().any(|o| o.name == r.name) {
            return bad(format!("blocking rule `{}` is declared twice", r.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        validate(&default_comparisons(None), &default_blocking(None)).unwrap();
    }

    #[test]
    fn levels_out_of_order_are_named() {
        let mut c = default_comparisons(None);
        c[0].levels = Some(vec![0.8, 0.9]);
        let err = validate(&c, &default_blocking(None)).unwrap_err().to_string();
        assert!(err.contains("given_name") && err.contains("descending"), "{err}");
        let mut c = default_comparisons(None);
        c[2].levels = Some(vec![1.0]);
        let err = validate(&c, &default_blocking(None)).unwrap_err().to_string();
        assert!(err.contains("exact takes no levels"), "{err}");
    }

    #[test]
    fn phone_country_code_reaches_the_default_phone_rules() {
        let cfg: IdentityConfig = toml::from_str("phone_country_code = \"44\"").unwrap();
        let s = crate::identity::Settings::from_config(&cfg).unwrap();
        let phone = s.comparisons.iter().find(|c| c.name == "phone").unwrap();
        assert_eq!(phone.sql(), "normalize_phone(phone, '44')");
        assert!(s.blocking.iter().any(|r| r.sql == "normalize_phone(phone, '44')"));
        let cfg: IdentityConfig = toml::from_str("phone_country_code = \"uk\"").unwrap();
        let err = crate::identity::Settings::from_config(&cfg).unwrap_err().to_string();
        assert!(err.contains("phone_country_code") && err.contains("\"uk\""), "{err}");
    }

    #[test]
    fn declared_in_toml() {
        let cfg: IdentityConfig = toml::from_str("threshold = 0.8").unwrap();
        assert_eq!(cfg.threshold, Some(0.8));
        let cfg: IdentityConfig = toml::from_str(
            "[[compare]]\nname = \"email\"\nmethod = \"jaro_winkler\"\nlevels = [0.9]\n[[block]]\nname = \"e\"\nsql = \"lower(email)\"",
        )
        .unwrap();
        let c = &cfg.comparisons.unwrap()[0];
        assert_eq!((c.sql(), c.level_count()), ("\"email\"".to_string(), 3));
        let err = toml::from_str::<IdentityConfig>("[[compare]]\nname = \"x\"\nmethod = \"soundex\"").unwrap_err().to_string();
        assert!(err.contains("unknown variant `soundex`"), "{err}");
    }
}
