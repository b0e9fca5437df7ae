//! Identity resolution: which profiles, from any number of source systems, are one person.
//!
//! Layout: `rules.rs` (comparisons and blocking rules, declared as SQL), `profiles.rs` (the
//! rules evaluated by DataFusion into string columns), `blocking.rs` (candidate pairs),
//! `model.rs` (Fellegi-Sunter weights learnt by EM), `cluster.rs` (pairs -> people),
//! `master.rs` (stable master ids), `job.rs` (`persona resolve`: profiles in, Delta identity
//! tables out), `febrl.rs` (accuracy on the FEBRL benchmark data with ground truth).

pub mod blocking;
pub mod cluster;
pub mod febrl;
pub mod job;
pub mod master;
pub mod model;
pub mod profiles;
pub mod rules;

use std::collections::HashMap;

use crate::error::Result;
use blocking::{Pair, unpack};
use model::{Comparator, Model, Pattern};
use profiles::Profiles;
use rules::{BlockingRule, Comparison, IdentityConfig};

/// Settings of one resolution run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Pairs whose match probability reaches this are linked.
    pub threshold: f64,
    /// Only link records of different sources (each source already deduplicated).
    pub link_only: bool,
    /// No cluster grows past this many records; weaker links are dropped instead.
    pub max_cluster_size: usize,
    /// A blocking key shared by more profiles than this pairs none of them.
    pub max_block_size: usize,
    /// A blocking rule that pairs more candidates than this per profile is too coarse for the
    /// data (birth dates among a million people) and is skipped, with a warning.
    pub max_pairs_per_profile: f64,
    /// Random record pairs used to estimate how often non-matches agree.
    pub random_pairs: usize,
    /// Values that never link records (compared as trimmed lower case).
    pub blocked_values: Vec<String>,
    /// Fixed probability that two random profiles are one person; estimated when `None`.
    pub prior: Option<f64>,
    pub comparisons: Vec<Comparison>,
    pub blocking: Vec<BlockingRule>,
    /// Declared by the user: then a comparison or rule that does not apply is an error rather
    /// than skipped.
    pub strict_comparisons: bool,
    pub strict_blocking: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            threshold: 0.9,
            link_only: false,
            max_cluster_size: 20,
            max_block_size: 100,
            max_pairs_per_profile: 10.0,
            random_pairs: 1_000_000,
            blocked_values: rules::DEFAULT_BLOCKED_VALUES.iter().map(|v| v.to_string()).collect(),
            prior: None,
            comparisons: rules::default_comparisons(None),
            blocking: rules::default_blocking(None),
            strict_comparisons: false,
            strict_blocking: false,
        }
    }
}

impl Settings {
    /// The defaults, overridden by what `[identity]` declares.
    pub fn from_config(cfg: &IdentityConfig) -> Result<Self> {
        let d = Self::default();
        let cc = cfg.phone_country_code.as_deref();
        if let Some(code) = cc {
            let digits = code.trim_start_matches('+');
            if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(crate::error::PersonaError::Config(format!(
                    "identity.phone_country_code must be 1 to 3 digits such as \"44\", got {code:?}"
                )));
            }
        }
        let s = Self {
            threshold: cfg.threshold.unwrap_or(d.threshold),
            max_cluster_size: cfg.max_cluster_size.unwrap_or(d.max_cluster_size),
            max_block_size: cfg.max_block_size.unwrap_or(d.max_block_size),
            max_pairs_per_profile: cfg.max_pairs_per_profile.unwrap_or(d.max_pairs_per_profile),
            blocked_values: cfg.blocked_values.clone().unwrap_or(d.blocked_values),
            prior: cfg.prior,
            strict_comparisons: cfg.comparisons.is_some(),
            strict_blocking: cfg.blocking.is_some(),
            comparisons: cfg.comparisons.clone().unwrap_or_else(|| rules::default_comparisons(cc)),
            blocking: cfg.blocking.clone().unwrap_or_else(|| rules::default_blocking(cc)),
            ..d
        };
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<()> {
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(crate::error::PersonaError::Config(format!(
                "identity.threshold must be a probability between 0 and 1 (exclusive), got {}",
                self.threshold
            )));
        }
        if self.prior.is_some_and(|p| !(p > 0.0 && p < 1.0)) {
            return Err(crate::error::PersonaError::Config(format!(
                "identity.prior must be a probability between 0 and 1 (exclusive), got {}",
                self.prior.unwrap_or_default()
            )));
        }
        if !(self.max_pairs_per_profile > 0.0) {
            return Err(crate::error::PersonaError::Config(format!(
                "identity.max_pairs_per_profile must be above 0, got {}",
                self.max_pairs_per_profile
            )));
        }
        if self.max_cluster_size < 2 || self.max_block_size < 2 {
            return Err(crate::error::PersonaError::Config(
                "identity.max_cluster_size and identity.max_block_size must be at least 2".into(),
            ));
        }
        rules::validate(&self.comparisons, &self.blocking)
    }
}

/// A linked pair: two profile rows, their match probability, the blocking rule that paired them.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    pub i: u32,
    pub j: u32,
    pub probability: f64,
    pub rule: usize,
}

/// The outcome: scored links and one cluster number per profile.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub candidate_pairs: usize,
    pub links: Vec<Link>,
    /// `clusters[i]` is the cluster of profile `i`: the smallest profile index in it.
    pub clusters: Vec<u32>,
    pub model: Model,
}

pub fn resolve(p: &Profiles, settings: &Settings) -> Resolution {
    let started = std::time::Instant::now();
    let blocked = blocking::block(p, settings.link_only, settings.max_block_size, settings.max_pairs_per_profile);
    let pairs = &blocked.pairs;
    tracing::debug!(pairs = pairs.len(), seconds = started.elapsed().as_secs_f64(), "identity candidate pairs");
    let comparator = Comparator::new(p);
    let (patterns, sessions) = compare_all(p, &comparator, &blocked);
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "identity pairs compared");
    let random: Vec<Pair> = random_pairs(p, settings).map(|(i, j)| blocking::pack(i, j)).collect();
    let random: Vec<Pattern> = on_all_cores(&random, |part| part.iter().map(|&pair| comparator.pattern(p, pair)).collect::<Vec<_>>())
        .into_iter()
        .flatten()
        .collect();
    let candidate_counts = model::counts(patterns.iter().copied());
    let evidence = model::Evidence {
        random: &model::counts(random.into_iter()),
        sessions: &sessions,
        candidates: &candidate_counts,
        all_pairs: possible_pairs(p, settings.link_only),
    };
    let fixed = model::Fixed { prior: settings.prior };
    let fitted = Model::fit(&p.comparisons, &fixed, &evidence, 25);
    tracing::debug!(model = ?fitted, seconds = started.elapsed().as_secs_f64(), "identity model fitted");
    // Score each distinct pattern once.
    let probability: std::collections::HashMap<Pattern, f64> =
        candidate_counts.iter().map(|(pat, _)| (*pat, fitted.probability(*pat))).collect();
    let links: Vec<Link> = pairs
        .iter()
        .zip(&patterns)
        .filter_map(|(&pair, pat)| {
            let probability = probability[pat];
            let (i, j) = unpack(pair);
            (probability >= settings.threshold)
                .then(|| Link { i, j, probability, rule: blocking::first_rule(p, &blocked, i, j).unwrap_or(0) })
        })
        .collect();
    let clusters = cluster::connected(p.len, &links, settings.max_cluster_size);
    tracing::debug!(links = links.len(), seconds = started.elapsed().as_secs_f64(), "identity clustered");
    Resolution { candidate_pairs: pairs.len(), links, clusters, model: fitted }
}

/// Profile pairs that could be one person: all of them, or with `link_only` those of two
/// different sources.
fn possible_pairs(p: &Profiles, link_only: bool) -> f64 {
    let n = p.len as f64;
    if !link_only {
        return n * (n - 1.0) / 2.0;
    }
    let mut per_source: std::collections::HashMap<u32, f64> = std::collections::HashMap::new();
    for s in &p.source {
        *per_source.entry(*s).or_default() += 1.0;
    }
    (n * n - per_source.values().map(|k| k * k).sum::<f64>()) / 2.0
}

/// The agreement pattern of every pair, and per blocking rule the patterns of the pairs it
/// pairs (its own key fields masked), computed on all cores. A pair counts for a rule when the
/// rule would have paired it itself: not for a skipped rule, nor under a key shared by too
/// many profiles (pairs another rule found there are not a sample of that rule's pairs).
fn compare_all(p: &Profiles, comparator: &Comparator, blocked: &blocking::Blocked) -> (Vec<Pattern>, Vec<model::Session>) {
    let pairs = &blocked.pairs;
    let learns: Vec<Vec<bool>> = p.overlaps.iter().map(|o| o.iter().map(|x| !x).collect()).collect();
    let parts = on_all_cores(pairs, |part| {
        let mut by_rule: Vec<HashMap<Pattern, f64>> = vec![HashMap::new(); p.rules.len()];
        let patterns = part
            .iter()
            .map(|&pair| {
                let pattern = comparator.pattern(p, pair);
                let (i, j) = unpack(pair);
                for (k, counts) in by_rule.iter_mut().enumerate() {
                    if matches!((p.key(k, i), p.key(k, j)), (Some(a), Some(b)) if a == b && blocked.pairs_under(k, a)) {
                        *counts.entry(model::masked(pattern, &learns[k])).or_default() += 1.0;
                    }
                }
                pattern
            })
            .collect::<Vec<_>>();
        (patterns, by_rule)
    });
    let mut patterns = Vec::with_capacity(pairs.len());
    let mut by_rule: Vec<HashMap<Pattern, f64>> = vec![HashMap::new(); p.rules.len()];
    for (part, counts) in parts {
        patterns.extend(part);
        for (total, c) in by_rule.iter_mut().zip(counts) {
            for (pattern, n) in c {
                *total.entry(pattern).or_default() += n;
            }
        }
    }
    let sessions = by_rule
        .into_iter()
        .zip(learns)
        .map(|(counts, learns)| {
            let mut counts: Vec<_> = counts.into_iter().collect();
            counts.sort_unstable_by_key(|(p, _)| *p);
            model::Session { learns: learns.clone(), counts }
        })
        .collect();
    (patterns, sessions)
}

/// `work` over `items` cut into one slice per core, results in order.
fn on_all_cores<R: Send>(items: &[Pair], work: impl Fn(&[Pair]) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let work = &work;
    std::thread::scope(|s| {
        let workers: Vec<_> = items.chunks(chunk).map(|part| s.spawn(move || work(part))).collect();
        workers.into_iter().map(|w| w.join().expect("identity worker panicked")).collect()
    })
}

/// A fixed pseudo-random sample of profile pairs (the same every run, so results repeat).
fn random_pairs<'a>(p: &'a Profiles, settings: &Settings) -> impl Iterator<Item = (u32, u32)> + 'a {
    let n = p.len as u64;
    let link_only = settings.link_only;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: fast, deterministic, good enough to pick pairs.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let distinct_sources = p.source.iter().any(|s| Some(s) != p.source.first());
    let take = if n < 2 || (link_only && !distinct_sources) { 0 } else { settings.random_pairs };
    std::iter::repeat_with(move || ((next() % n.max(1)) as u32, (next() % n.max(1)) as u32))
        .filter(move |&(i, j)| i != j && (!link_only || p.source[i as usize] != p.source[j as usize]))
        .take(take)
}
