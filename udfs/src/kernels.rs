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

/// The edit distance of `a` and `b` (Damerau-Levenshtein with `transpositions`, else
/// Levenshtein, in characters after NFC) when it is at most `k`, else `None`. Much cheaper than
/// the full distance when most pairs are far apart or `k` is 1, which is what a resolver asks:
/// "the same but for one typo?".
pub fn edit_distance_within(a: &str, b: &str, k: usize, transpositions: bool) -> Option<usize> {
    let (a, b) = (nfc(a), nfc(b));
    if a == b {
        return Some(0);
    }
    if a.is_ascii() && b.is_ascii() {
        return within(a.as_bytes(), b.as_bytes(), k, transpositions, || distance(&a, &b, transpositions));
    }
    let (ca, cb): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    within(&ca, &cb, k, transpositions, || distance(&a, &b, transpositions))
}

fn distance(a: &str, b: &str, transpositions: bool) -> usize {
    if transpositions { strsim::damerau_levenshtein(a, b) } else { strsim::levenshtein(a, b) }
}

/// `a != b`. Lengths differing by more than `k` need more than `k` edits; at `k = 1`, with the
/// common prefix and suffix taken off, one edit leaves one character against one or none, or
/// (with transpositions) two swapped ones.
fn within<T: PartialEq>(a: &[T], b: &[T], k: usize, transpositions: bool, full: impl FnOnce() -> usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > k || k == 0 {
        return None;
    }
    if k > 1 {
        let d = full();
        return (d <= k).then_some(d);
    }
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a.iter().rev().zip(b.iter().rev()).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    let one = match (a.len(), b.len()) {
        (1, 1) | (1, 0) | (0, 1) => true,
        (2, 2) => transpositions && a[0] == b[1] && a[1] == b[0],
        _ => false,
    };
    one.then_some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_within_agrees_with_strsim() {
        // Every pair of strings up to length 4 over a 3-letter alphabet (plus one non-ASCII
        // letter), against strsim's full distances.
        let letters = ['a', 'b', 'é'];
        let mut words = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = words.iter().flat_map(|w| letters.iter().map(move |c| format!("{w}{c}"))).collect();
            words.extend(longer);
        }
        words.sort();
        words.dedup();
        for a in &words {
            for b in &words {
                for transpositions in [false, true] {
                    let d = distance(a, b, transpositions);
                    for k in 0..3 {
                        assert_eq!(edit_distance_within(a, b, k, transpositions), (d <= k).then_some(d), "{a:?} {b:?} k={k} t={transpositions}");
                    }
                }
            }
        }
    }
}
