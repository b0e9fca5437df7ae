//! Identity resolution: which profiles, from any number of source systems, are one person.
//!
//! Layout: `record.rs` (normalized person records), `blocking.rs` (candidate pairs),
//! `model.rs` (Fellegi-Sunter weights learnt by EM), `cluster.rs` (pairs -> people),
//! `master.rs` (stable master ids), `job.rs` (`persona resolve`: profiles in, Delta identity
//! tables out), `febrl.rs` (accuracy on the FEBRL benchmark data with ground truth).

pub mod blocking;
pub mod cluster;
pub mod febrl;
pub mod job;
pub mod master;
pub mod model;
pub mod record;

use record::Record;

/// Settings of one resolution run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Pairs whose match probability reaches this are linked.
    pub threshold: f64,
    /// Only link records of different sources (each source already deduplicated).
    pub link_only: bool,
    /// No cluster grows past this many records; weaker links are dropped instead.
    pub max_cluster_size: usize,
    /// Random record pairs used to estimate how often non-matches agree.
    pub random_pairs: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self { threshold: 0.9, link_only: false, max_cluster_size: 20, random_pairs: 200_000 }
    }
}

/// The outcome: scored links and one cluster number per record.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub candidate_pairs: usize,
    /// Linked pairs `(i, j, match probability)`.
    pub links: Vec<(u32, u32, f64)>,
    /// `clusters[i]` is the cluster of record `i`: the smallest record index in it.
    pub clusters: Vec<u32>,
}

pub fn resolve(records: &[Record], settings: &Settings) -> Resolution {
    let pairs = blocking::candidate_pairs(records, settings.link_only);
    let vectors: Vec<model::Vector> =
        pairs.iter().map(|&(i, j)| model::compare(&records[i as usize], &records[j as usize])).collect();
    let random: Vec<model::Vector> = random_pairs(records, settings)
        .map(|(i, j)| model::compare(&records[i], &records[j]))
        .collect();
    let fitted = model::Model::fit(&random, &vectors, 25);
    let links: Vec<(u32, u32, f64)> = pairs
        .iter()
        .zip(&vectors)
        .map(|(&(i, j), v)| (i, j, fitted.probability(v)))
        .filter(|(_, _, p)| *p >= settings.threshold)
        .collect();
    let clusters = cluster::connected(records.len(), &links, settings.max_cluster_size);
    Resolution { candidate_pairs: pairs.len(), links, clusters }
}

/// A fixed pseudo-random sample of record pairs (the same every run, so results repeat).
fn random_pairs<'a>(records: &'a [Record], settings: &Settings) -> impl Iterator<Item = (usize, usize)> + 'a {
    let n = records.len() as u64;
    let link_only = settings.link_only;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // xorshift64*: fast, deterministic, good enough to pick pairs.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    std::iter::repeat_with(move || ((next() % n.max(1)) as usize, (next() % n.max(1)) as usize))
        .filter(move |&(i, j)| i != j && (!link_only || records[i].source != records[j].source))
        .take(if n < 2 { 0 } else { settings.random_pairs })
}
