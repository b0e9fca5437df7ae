//! Fellegi-Sunter scoring: each compared field of a pair falls into an agreement level; each
//! level has a probability m (among true matches) and u (among non-matches); a pair's score is
//! log2(prior odds) + the sum of log2(m/u) over the fields both profiles have.
//!
//! u is estimated from random profile pairs (almost all non-matches); m and the prior by
//! expectation-maximisation over the candidate pairs, so nothing is tuned to a data set.
//! A pair's levels are packed into one `u64` pattern (4 bits a field), so EM runs over the few
//! thousand distinct patterns with their counts rather than over millions of pairs.

use std::collections::HashMap;

use persona_udfs::kernels;

use super::profiles::Profiles;
use super::rules::{Comparison, Method};

/// Agreement levels of one pair, 4 bits per comparison; [`MISSING`] when either side is NULL.
pub type Pattern = u64;
pub const MISSING: u64 = 0xF;

/// Level of one field: 0 = different, `thresholds.len() + 1` = identical, and in between the
/// first threshold the pair's similarity reaches (or edit distance stays within).
fn level(c: &Comparison, thresholds: &[f64], a: &str, b: &str) -> u64 {
    let top = thresholds.len() as u64 + 1;
    if a == b {
        return top;
    }
    let (score, similarity) = match c.method {
        Method::Exact => return 0,
        Method::JaroWinkler => (kernels::jaro_winkler(a, b), true),
        Method::Jaro => (kernels::jaro(a, b), true),
        Method::Levenshtein => (kernels::levenshtein(a, b) as f64, false),
        Method::DamerauLevenshtein => (kernels::damerau_levenshtein(a, b) as f64, false),
    };
    thresholds
        .iter()
        .position(|&t| if similarity { score >= t } else { score <= t })
        .map_or(0, |k| top - 1 - k as u64)
}

/// Compares profiles field by field.
pub struct Comparator {
    thresholds: Vec<Vec<f64>>,
}

impl Comparator {
    pub fn new(p: &Profiles) -> Self {
        Self { thresholds: p.comparisons.iter().map(Comparison::thresholds).collect() }
    }

    pub fn pattern(&self, p: &Profiles, i: u32, j: u32) -> Pattern {
        let mut pattern = 0;
        for (f, c) in p.comparisons.iter().enumerate() {
            let l = match (p.field(f, i), p.field(f, j)) {
                (Some(a), Some(b)) => level(c, &self.thresholds[f], a, b),
                _ => MISSING,
            };
            pattern |= l << (4 * f);
        }
        pattern
    }
}

/// Level of field `f` in a pattern, `None` when missing.
fn level_of(pattern: Pattern, f: usize) -> Option<usize> {
    let l = (pattern >> (4 * f)) & 0xF;
    (l != MISSING).then_some(l as usize)
}

/// Distinct patterns with how often each occurs.
pub fn counts(patterns: impl Iterator<Item = Pattern>) -> Vec<(Pattern, f64)> {
    let mut map: HashMap<Pattern, f64> = HashMap::new();
    for p in patterns {
        *map.entry(p).or_default() += 1.0;
    }
    let mut v: Vec<_> = map.into_iter().collect();
    v.sort_unstable_by_key(|(p, _)| *p);
    v
}

#[derive(Debug, Clone)]
pub struct Model {
    m: Vec<Vec<f64>>,
    u: Vec<Vec<f64>>,
    /// Share of candidate pairs that match.
    pub prior: f64,
}

impl Model {
    /// u from `random` pattern counts, then m and the prior by EM over `candidates`; what
    /// `fixed` gives is used as it is.
    pub fn fit(comparisons: &[Comparison], fixed: &Fixed, random: &[(Pattern, f64)], candidates: &[(Pattern, f64)], iterations: usize) -> Self {
        let levels: Vec<usize> = comparisons.iter().map(Comparison::level_count).collect();
        let mut u: Vec<Vec<f64>> = comparisons
            .iter()
            .enumerate()
            .map(|(f, c)| match &c.u {
                Some(u) => by_level(u),
                None => frequencies(levels[f], random.iter().map(|(p, n)| (level_of(*p, f), *n))),
            })
            .collect();
        // Start from "matches mostly agree exactly"; EM moves it to what the data says.
        let mut m: Vec<Vec<f64>> = comparisons
            .iter()
            .map(|c| match &c.m {
                Some(m) => by_level(m),
                None => {
                    let n = c.level_count();
                    (0..n).map(|l| if l + 1 == n { 0.9 } else { 0.1 / (n - 1) as f64 }).collect()
                }
            })
            .collect();
        let mut prior = fixed.prior.unwrap_or(0.1);
        let total: f64 = candidates.iter().map(|(_, n)| n).sum();
        let mut weights = vec![0.0; candidates.len()];
        for _ in 0..iterations {
            let model = Model { m: m.clone(), u: u.clone(), prior };
            for (w, (p, _)) in weights.iter_mut().zip(candidates) {
                *w = model.probability(*p);
            }
            for (f, mf) in m.iter_mut().enumerate().filter(|(f, _)| comparisons[*f].m.is_none()) {
                *mf = frequencies(levels[f], candidates.iter().zip(&weights).map(|((p, n), w)| (level_of(*p, f), n * w)));
            }
            // u among the candidates too: non-matching pairs that share a blocking key agree on
            // its fields far more often than random pairs do, and without this EM explains that
            // agreement by calling nearly every candidate a match.
            // The random pairs stay in the estimate, so a handful of candidates cannot swing it.
            for (f, uf) in u.iter_mut().enumerate().filter(|(f, _)| comparisons[*f].u.is_none()) {
                let among_candidates = candidates.iter().zip(&weights).map(|((p, n), w)| (level_of(*p, f), n * (1.0 - w)));
                let among_random = random.iter().map(|(p, n)| (level_of(*p, f), *n));
                *uf = frequencies(levels[f], among_candidates.chain(among_random));
            }
            if fixed.prior.is_none() {
                let matched: f64 = candidates.iter().zip(&weights).map(|((_, n), w)| n * w).sum();
                prior = (matched / total.max(1.0)).clamp(1e-6, 1.0 - 1e-6);
            }
        }
        Model { m, u, prior }
    }

    /// log2 of the odds that a pair with this pattern matches.
    pub fn score(&self, pattern: Pattern) -> f64 {
        let mut s = (self.prior / (1.0 - self.prior)).log2();
        for f in 0..self.m.len() {
            if let Some(l) = level_of(pattern, f) {
                s += (self.m[f][l] / self.u[f][l]).log2();
            }
        }
        s
    }

    pub fn probability(&self, pattern: Pattern) -> f64 {
        let odds = self.score(pattern).exp2();
        odds / (1.0 + odds)
    }
}

/// What the user fixed instead of letting EM learn it (per-comparison m and u live on the
/// comparisons themselves).
#[derive(Debug, Clone, Copy, Default)]
pub struct Fixed {
    pub prior: Option<f64>,
}

/// Declared probabilities (most agreeing level first) in level order (0 = different).
fn by_level(declared: &[f64]) -> Vec<f64> {
    declared.iter().rev().copied().collect()
}

/// Weighted level frequencies of one field, smoothed so no level has probability zero.
fn frequencies(levels: usize, values: impl Iterator<Item = (Option<usize>, f64)>) -> Vec<f64> {
    let mut counts = vec![1e-3; levels];
    for (level, weight) in values {
        if let Some(l) = level {
            counts[l] += weight;
        }
    }
    let total: f64 = counts.iter().sum();
    counts.into_iter().map(|c| c / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_thresholds() {
        let jw = Comparison { name: "n".into(), sql: None, method: Method::JaroWinkler, levels: None, m: None, u: None };
        let t = jw.thresholds();
        assert_eq!(level(&jw, &t, "martha", "martha"), 3);
        // Jaro-Winkler("martha", "marhta") = 0.9611 (the textbook example): the >= 0.94 level.
        assert_eq!(level(&jw, &t, "martha", "marhta"), 2);
        // Jaro-Winkler("dixon", "dicksonx") = 0.8133: below both floors.
        assert_eq!(level(&jw, &t, "dixon", "dicksonx"), 0);
        let dl = Comparison { name: "d".into(), sql: None, method: Method::DamerauLevenshtein, levels: Some(vec![1.0, 2.0]), m: None, u: None };
        let t = dl.thresholds();
        assert_eq!(level(&dl, &t, "19750214", "19750241"), 2, "one transposition");
        assert_eq!(level(&dl, &t, "19750214", "19570241"), 1, "two transpositions");
        assert_eq!(level(&dl, &t, "19750214", "20011130"), 0);
    }

    #[test]
    fn em_separates_matches_from_non_matches() {
        // One field, 2 levels. Random pairs agree 1% of the time; among candidates, 300 agree
        // (matches) and 700 do not. The fitted model must score agreement far above disagreement.
        let random = vec![(1, 10.0), (0, 990.0)];
        let candidates = vec![(1, 300.0), (0, 700.0)];
        let c = [Comparison { name: "e".into(), sql: None, method: Method::Exact, levels: None, m: None, u: None }];
        let model = Model::fit(&c, &Fixed::default(), &random, &candidates, 25);
        assert!(model.probability(1) > 0.9, "{model:?}");
        assert!(model.probability(0) < 0.1, "{model:?}");
    }

    #[test]
    fn declared_weights_are_used_as_given() {
        // m = 0.9 / 0.1 and u = 0.01 / 0.99 for exact / different, prior 0.1: agreement has odds
        // (0.1 / 0.9) * (0.9 / 0.01) = 10, so probability 10 / 11, whatever the pairs say.
        let c = [Comparison { name: "e".into(), sql: None, method: Method::Exact, levels: None, m: Some(vec![0.9, 0.1]), u: Some(vec![0.01, 0.99]) }];
        let model = Model::fit(&c, &Fixed { prior: Some(0.1) }, &[(0, 5.0)], &[(0, 100.0), (1, 1.0)], 25);
        assert!((model.probability(1) - 10.0 / 11.0).abs() < 1e-12, "{model:?}");
        assert!((model.probability(0) - (0.1 / 0.9) * (0.1 / 0.99) / (1.0 + (0.1 / 0.9) * (0.1 / 0.99))).abs() < 1e-12);
    }
}
