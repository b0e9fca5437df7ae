//! Blocking: which profile pairs are compared at all.
//!
//! A pair is a candidate when the two profiles have the same non-NULL key under at least one
//! blocking rule. A key that more than `max_block_size` profiles share (a placeholder, a common
//! surname in one postcode) pairs none of them: it would explode the comparisons and, being
//! shared by strangers, it is no evidence of identity.

use std::collections::{HashMap, HashSet};

use super::profiles::Profiles;

/// A candidate pair `(i, j)`, `i < j`, packed as `i << 32 | j` so a million pairs sort and
/// deduplicate as plain integers.
pub type Pair = u64;

pub fn pack(i: u32, j: u32) -> Pair {
    (u64::from(i.min(j)) << 32) | u64::from(i.max(j))
}

pub fn unpack(p: Pair) -> (u32, u32) {
    ((p >> 32) as u32, p as u32)
}

/// What blocking found.
#[derive(Debug, Clone, Default)]
pub struct Blocked {
    /// Candidate pairs, sorted and distinct.
    pub pairs: Vec<Pair>,
    /// Per rule: `None` when the rule was skipped as too coarse, else the keys it shares by
    /// more than `max_block_size` profiles (which paired nobody).
    pub rules: Vec<Option<HashSet<String>>>,
}

impl Blocked {
    /// Whether rule `k` would itself have paired two profiles sharing `key` under it.
    pub fn pairs_under(&self, k: usize, key: &str) -> bool {
        self.rules[k].as_ref().is_some_and(|oversized| !oversized.contains(key))
    }
}

/// Candidate pairs, sorted and distinct; with `link_only`, only pairs from different sources.
pub fn candidate_pairs(p: &Profiles, link_only: bool, max_block_size: usize, max_pairs_per_profile: f64) -> Vec<Pair> {
    block(p, link_only, max_block_size, max_pairs_per_profile).pairs
}

/// The candidate pairs and what each rule did. Rules run on separate threads; a rule that
/// pairs more than `max_pairs_per_profile` per profile is left out with a warning: at that
/// density its key is shared by strangers as a rule (a birth date among a million people) and
/// comparing its pairs costs more than it finds.
pub fn block(p: &Profiles, link_only: bool, max_block_size: usize, max_pairs_per_profile: f64) -> Blocked {
    let budget = max_pairs_per_profile * p.len as f64;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(p.rules.len()).max(1);
    let mut rules: Vec<Option<HashSet<String>>> = vec![None; p.rules.len()];
    let parts: Vec<(Vec<Pair>, Vec<(usize, Option<HashSet<String>>)>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    let mut outcome = Vec::new();
                    for k in (t..p.rules.len()).step_by(threads) {
                        let before = out.len();
                        let oversized = rule_pairs(p, k, link_only, max_block_size, &mut out);
                        let found = out.len() - before;
                        if found as f64 > budget {
                            out.truncate(before);
                            tracing::warn!(
                                "identity blocking rule `{}` skipped: it pairs {found} candidates, {:.1} per profile, above identity.max_pairs_per_profile = {max_pairs_per_profile}; its finer rules still run",
                                p.rules[k].name,
                                found as f64 / p.len.max(1) as f64
                            );
                            outcome.push((k, None));
                        } else {
                            outcome.push((k, Some(oversized)));
                        }
                    }
                    (out, outcome)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("blocking worker panicked")).collect()
    });
    let mut pairs = Vec::new();
    for (found, outcome) in parts {
        pairs.extend(found);
        for (k, o) in outcome {
            rules[k] = o;
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    Blocked { pairs, rules }
}

/// Appends the pairs rule `k` finds; returns the keys shared by too many profiles to pair.
fn rule_pairs(p: &Profiles, k: usize, link_only: bool, max_block_size: usize, out: &mut Vec<Pair>) -> HashSet<String> {
    let mut blocks: HashMap<&str, Vec<u32>> = HashMap::new();
    for row in 0..p.len as u32 {
        if let Some(key) = p.key(k, row) {
            blocks.entry(key).or_default().push(row);
        }
    }
    let mut oversized = HashSet::new();
    for (key, members) in &blocks {
        if members.len() > max_block_size {
            oversized.insert(key.to_string());
            continue;
        }
        for (a, &i) in members.iter().enumerate() {
            for &j in &members[a + 1..] {
                if !link_only || p.source[i as usize] != p.source[j as usize] {
                    out.push(pack(i, j));
                }
            }
        }
    }
    oversized
}

/// The first rule that paired `i` and `j`: what made them a candidate pair.
pub fn first_rule(p: &Profiles, blocked: &Blocked, i: u32, j: u32) -> Option<usize> {
    (0..p.rules.len()).find(|&k| matches!((p.key(k, i), p.key(k, j)), (Some(a), Some(b)) if a == b && blocked.pairs_under(k, a)))
}
