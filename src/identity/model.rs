//! Fellegi-Sunter scoring: each compared field of a pair falls into an agreement level; each
//! level has a probability m (among true matches) and u (among non-matches); a pair's score is
//! log2(prior odds) + the sum of log2(m/u) over the fields both profiles have.
//!
//! The three are learnt the way the record-linkage literature (and Splink) does, so that the
//! blocking rules only decide which pairs get scored and never what they score:
//! - u from random profile pairs, which are almost all non-matches;
//! - m by expectation-maximisation, once per blocking rule over the pairs that rule found, with
//!   the fields its key is computed from left out (every pair a rule on date of birth finds
//!   agrees on date of birth, match or not); each field's m is the median over the rules that
//!   could learn it;
//! - the prior, the probability that two random profiles are one person, as the fixed point of
//!   "expected matches among the candidates / all pairs" (pairs no rule found count as
//!   non-matches).
//! Learning u or the prior from the candidates instead lets EM split them by blocking rule:
//! at a million profiles, 22 million pairs that share only a birth date outvote the rest.
//! A pair's levels are packed into one `u64` pattern (4 bits a field), so EM runs over the few
//! thousand distinct patterns with their counts rather than over millions of pairs.

use std::collections::HashMap;

use persona_udfs::kernels;

use super::blocking::{Pair, unpack};
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
        Method::Levenshtein | Method::DamerauLevenshtein => {
            // Only "within the largest ceiling, and by how much" matters.
            let ceiling = thresholds.last().map_or(0, |&t| t as usize);
            match kernels::edit_distance_within(a, b, ceiling, c.method == Method::DamerauLevenshtein) {
                Some(d) => (d as f64, false),
                None => return 0,
            }
        }
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

    pub fn pattern(&self, p: &Profiles, pair: Pair) -> Pattern {
        let (i, j) = unpack(pair);
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
    /// Probability that two profiles picked at random are the same person.
    pub prior: f64,
}

/// The pairs one blocking rule found, as pattern counts with the fields its key is computed
/// from masked as missing; `learns[f]` says whether field `f` can be learnt from them.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub learns: Vec<bool>,
    pub counts: Vec<(Pattern, f64)>,
}

/// What the model is learnt from.
pub struct Evidence<'a> {
    /// Pattern counts of random profile pairs.
    pub random: &'a [(Pattern, f64)],
    /// One per blocking rule.
    pub sessions: &'a [Session],
    /// Pattern counts of every candidate pair.
    pub candidates: &'a [(Pattern, f64)],
    /// How many profile pairs could match at all, compared or not.
    pub all_pairs: f64,
}

impl Model {
    /// u from the random pairs, m by EM per blocking rule, then the prior; what the user
    /// declared (per-comparison m and u, a fixed prior) is used as it is.
    pub fn fit(comparisons: &[Comparison], fixed: &Fixed, evidence: &Evidence, iterations: usize) -> Self {
        let levels: Vec<usize> = comparisons.iter().map(Comparison::level_count).collect();
        let u: Vec<Vec<f64>> = comparisons
            .iter()
            .enumerate()
            .map(|(f, c)| match &c.u {
                Some(u) => by_level(u),
                None => frequencies(levels[f], evidence.random.iter().map(|(p, n)| (level_of(*p, f), *n))),
            })
            .collect();
        // Start from "matches mostly agree exactly"; EM moves it to what the data says.
        let start: Vec<Vec<f64>> = comparisons
            .iter()
            .map(|c| match &c.m {
                Some(m) => by_level(m),
                None => {
                    let n = c.level_count();
                    (0..n).map(|l| if l + 1 == n { 0.9 } else { 0.1 / (n - 1) as f64 }).collect()
                }
            })
            .collect();
        // Each field's m from every rule that could learn it.
        let mut learnt: Vec<Vec<Vec<f64>>> = vec![Vec::new(); comparisons.len()];
        for session in evidence.sessions {
            let learn: Vec<usize> = (0..comparisons.len()).filter(|&f| session.learns[f] && comparisons[f].m.is_none()).collect();
            if learn.is_empty() || session.counts.is_empty() {
                continue;
            }
            let (mut m, matched) = session_em(&start, &u, &levels, &learn, &session.counts, iterations);
            tracing::debug!(pairs = session.counts.iter().map(|(_, n)| n).sum::<f64>(), matched, ?m, "identity EM over one blocking rule's pairs");
            for &f in &learn {
                learnt[f].push(std::mem::take(&mut m[f]));
            }
        }
        // The median (by the share agreeing exactly) rather than the mean: a rule whose key
        // goes with other fields among strangers too (e-mail addresses made of names) finds
        // strangers that agree on those fields, and EM over its pairs takes them for matches.
        // One such rule moves a mean, not a median.
        let m = start
            .into_iter()
            .zip(learnt)
            .map(|(start, mut found)| {
                if found.is_empty() {
                    return start;
                }
                found.sort_by(|a, b| a[a.len() - 1].total_cmp(&b[b.len() - 1]));
                let middle = found.len() / 2;
                found.swap_remove(middle)
            })
            .collect();
        let mut model = Model { m, u, prior: 0.5 };
        model.prior = match fixed.prior {
            Some(prior) => prior,
            None => model.random_pair_prior(evidence.candidates, evidence.all_pairs),
        };
        model
    }

    /// The prior at which the expected number of matches among the candidates, over all pairs,
    /// gives the prior back. Started from "every candidate matches", it falls to that point.
    fn random_pair_prior(&mut self, candidates: &[(Pattern, f64)], all_pairs: f64) -> f64 {
        let total: f64 = candidates.iter().map(|(_, n)| n).sum();
        let all_pairs = all_pairs.max(1.0);
        let mut prior = (total / all_pairs).clamp(1e-15, 0.5);
        for _ in 0..200 {
            self.prior = prior;
            let expected: f64 = candidates.iter().map(|(p, n)| n * self.probability(*p)).sum();
            let next = (expected / all_pairs).clamp(1e-15, 0.5);
            let settled = (next - prior).abs() <= 1e-9 * prior;
            prior = next;
            if settled {
                break;
            }
        }
        prior
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

/// EM over one blocking rule's pairs with u held fixed: m of the `learn` fields and the share
/// of the rule's pairs that match. Returns m and the expected number of matches.
fn session_em(start: &[Vec<f64>], u: &[Vec<f64>], levels: &[usize], learn: &[usize], counts: &[(Pattern, f64)], iterations: usize) -> (Vec<Vec<f64>>, f64) {
    let total: f64 = counts.iter().map(|(_, n)| n).sum();
    let mut model = Model { m: start.to_vec(), u: u.to_vec(), prior: 0.1 };
    let mut weights = vec![0.0; counts.len()];
    for _ in 0..iterations {
        for (w, (p, _)) in weights.iter_mut().zip(counts) {
            *w = model.probability(*p);
        }
        for &f in learn {
            model.m[f] = frequencies(levels[f], counts.iter().zip(&weights).map(|((p, n), w)| (level_of(*p, f), n * w)));
        }
        let matched: f64 = counts.iter().zip(&weights).map(|((_, n), w)| n * w).sum();
        model.prior = (matched / total.max(1.0)).clamp(1e-6, 1.0 - 1e-6);
    }
    let matched = counts.iter().map(|(p, n)| n * model.probability(*p)).sum();
    (model.m, matched)
}

/// Pattern `p` with the fields not in `keep` marked missing.
pub fn masked(p: Pattern, keep: &[bool]) -> Pattern {
    keep.iter().enumerate().fold(p, |p, (f, &k)| if k { p } else { p | (MISSING << (4 * f)) })
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

    fn exact(name: &str) -> Comparison {
        Comparison { name: name.into(), sql: None, method: Method::Exact, levels: None, m: None, u: None }
    }

    #[test]
    fn em_recovers_the_weights_that_generated_the_pairs() {
        // Three exact fields with known m and u; 10 million pairs of which 2,000 match (prior
        // 2e-4). One rule blocks on field 2, another on field 0. Counts are the exact expected
        // counts of each pattern, so the fit must give the generating values back.
        let (m, u) = ([0.9, 0.8, 0.95], [0.01, 0.02, 0.001]);
        let (all_pairs, matches) = (1e7, 2000.0);
        let share = |p: &[f64; 3], a: [u64; 3]| (0..3).map(|f| if a[f] == 1 { p[f] } else { 1.0 - p[f] }).product::<f64>();
        let patterns: Vec<[u64; 3]> = (0..8).map(|b| [b & 1, (b >> 1) & 1, (b >> 2) & 1]).collect();
        let pack = |a: [u64; 3]| a[0] | (a[1] << 4) | (a[2] << 8);
        let both = |a: [u64; 3]| matches * share(&m, a) + (all_pairs - matches) * share(&u, a);
        let random: Vec<(Pattern, f64)> = patterns.iter().map(|&a| (pack(a), 1e6 * share(&u, a))).collect();
        let candidates: Vec<(Pattern, f64)> = patterns.iter().filter(|a| a[0] == 1 || a[2] == 1).map(|&a| (pack(a), both(a))).collect();
        let session = |key: usize| {
            let learns: Vec<bool> = (0..3).map(|f| f != key).collect();
            let counts = counts(patterns.iter().filter(|a| a[key] == 1).map(|&a| masked(pack(a), &learns)));
            // `counts` tallies one per distinct pattern; weight each by its expected count.
            let counts = counts
                .into_iter()
                .map(|(p, _)| (p, patterns.iter().filter(|a| a[key] == 1 && masked(pack(**a), &learns) == p).map(|&a| both(a)).sum()))
                .collect();
            Session { learns, counts }
        };
        let sessions = [session(2), session(0)];
        let c = [exact("a"), exact("b"), exact("c")];
        let evidence = Evidence { random: &random, sessions: &sessions, candidates: &candidates, all_pairs };
        let model = Model::fit(&c, &Fixed::default(), &evidence, 50);
        for f in 0..3 {
            assert!((model.m[f][1] - m[f]).abs() < 0.02, "m of field {f}: {model:?}");
            assert!((model.u[f][1] - u[f]).abs() < 1e-4, "u of field {f}: {model:?}");
        }
        assert!((model.prior / 2e-4 - 1.0).abs() < 0.1, "{model:?}");
        // 100,000 non-matches share field 0's key; agreeing on it alone is no match.
        assert!(model.probability(pack([1, 0, 0])) < 0.01, "{model:?}");
        assert!(model.probability(pack([1, 1, 1])) > 0.99, "{model:?}");
        // Posteriors by hand from the generating values: agreeing on fields 0 and 2 only,
        // 2000 * 0.9 * 0.2 * 0.95 = 342 matches against 1e7 * 0.01 * 0.98 * 0.001 = 98
        // non-matches (0.78); on 0 and 1 only, 2000 * 0.9 * 0.8 * 0.05 = 72 against 1998 (0.035).
        let p = model.probability(pack([1, 0, 1]));
        assert!((0.70..0.85).contains(&p), "{p} {model:?}");
        let p = model.probability(pack([1, 1, 0]));
        assert!((0.02..0.06).contains(&p), "{p} {model:?}");
    }

    #[test]
    fn declared_weights_are_used_as_given() {
        // m = 0.9 / 0.1 and u = 0.01 / 0.99 for exact / different, prior 0.1: agreement has odds
        // (0.1 / 0.9) * (0.9 / 0.01) = 10, so probability 10 / 11, whatever the pairs say.
        let c = [Comparison { m: Some(vec![0.9, 0.1]), u: Some(vec![0.01, 0.99]), ..exact("e") }];
        let evidence = Evidence { random: &[(0, 5.0)], sessions: &[], candidates: &[(0, 100.0), (1, 1.0)], all_pairs: 1e4 };
        let model = Model::fit(&c, &Fixed { prior: Some(0.1) }, &evidence, 25);
        assert!((model.probability(1) - 10.0 / 11.0).abs() < 1e-12, "{model:?}");
        assert!((model.probability(0) - (0.1 / 0.9) * (0.1 / 0.99) / (1.0 + (0.1 / 0.9) * (0.1 / 0.99))).abs() < 1e-12);
    }
}
