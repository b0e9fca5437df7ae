//! The functions behind the SQL UDFs, for Rust callers: the identity resolver scores candidate
//! pairs with exactly what an analyst gets from `jaro_winkler(...)` or `soundex(...)` in SQL.

use crate::fuzzy::damerau_levenshtein::DamerauLevenshtein;
use crate::fuzzy::jaro::Jaro;
use crate::fuzzy::jaro_winkler::JaroWinkler;
use crate::fuzzy::{PairMetric, nfc};
use crate::normalize::StringMap;
use crate::normalize::normalize_email::NormalizeEmail;
use crate::normalize::normalize_name::NormalizeName;
use crate::normalize::soundex::Soundex;

/// `jaro_winkler(a, b)`.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    JaroWinkler::compute(&nfc(a), &nfc(b)).unwrap_or(0.0)
}

/// `jaro(a, b)`.
pub fn jaro(a: &str, b: &str) -> f64 {
    Jaro::compute(&nfc(a), &nfc(b)).unwrap_or(0.0)
}

/// Levenshtein distance in characters after NFC (DataFusion's own `levenshtein` counts the
/// same for NFC input).
pub fn levenshtein(a: &str, b: &str) -> usize {
    strsim::levenshtein(&nfc(a), &nfc(b))
}

/// `damerau_levenshtein(a, b)` (unrestricted).
pub fn damerau_levenshtein(a: &str, b: &str) -> i64 {
    DamerauLevenshtein::compute(&nfc(a), &nfc(b)).unwrap_or(i64::MAX)
}

/// `soundex(s)`.
pub fn soundex(s: &str) -> Option<String> {
    Soundex::apply(s)
}

/// `normalize_name(s)`.
pub fn normalize_name(s: &str) -> Option<String> {
    NormalizeName::apply(s)
}

/// `normalize_email(s)`.
pub fn normalize_email(s: &str) -> Option<String> {
    NormalizeEmail::apply(s)
}
