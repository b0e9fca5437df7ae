//! Fellegi-Sunter scoring: each field of a pair falls into an agreement level; each level has
//! a probability m (among true matches) and u (among non-matches); a pair's score is
//! log2(prior odds) + sum of log2(m/u) over the fields both records have.
//!
//! u is estimated from random record pairs (almost all non-matches); m and the prior by
//! expectation-maximisation over the candidate pairs, so nothing is tuned to a data set.

use persona_udfs::kernels;

use super::record::{FIELDS, Record};

/// How a field's agreement is graded.
#[derive(Debug, Clone, Copy)]
enum Grade {
    /// exact / Jaro-Winkler >= 0.94 / >= 0.88 / else
    Fuzzy,
    /// exact / one edit (Damerau) / else
    Edit,
    /// exact / else
    Exact,
}

const GRADES: [Grade; FIELDS.len()] = [
    Grade::Fuzzy, // given_name
    Grade::Fuzzy, // surname
    Grade::Exact, // street_number
    Grade::Fuzzy, // address_1
    Grade::Fuzzy, // address_2
    Grade::Fuzzy, // suburb
    Grade::Edit,  // postcode
    Grade::Exact, // state
    Grade::Edit,  // date_of_birth
    Grade::Edit,  // soc_sec_id
    Grade::Exact, // email
];

const LEVELS: usize = 4;

/// The agreement level of one field (`None` when either record lacks it); higher agrees more.
fn level(grade: Grade, a: &str, b: &str) -> usize {
    if a == b {
        return 3;
    }
    match grade {
        Grade::Fuzzy => {
            let s = kernels::jaro_winkler(a, b);
            if s >= 0.94 { 2 } else if s >= 0.88 { 1 } else { 0 }
        }
        Grade::Edit => {
            if kernels::damerau_levenshtein(a, b) <= 1 { 2 } else { 0 }
        }
        Grade::Exact => 0,
    }
}

/// The comparison vector of a pair.
pub type Vector = [Option<u8>; FIELDS.len()];

pub fn compare(a: &Record, b: &Record) -> Vector {
    let mut v = [None; FIELDS.len()];
    for (f, grade) in GRADES.iter().enumerate() {
        if let (Some(x), Some(y)) = (a.fields[f].as_deref(), b.fields[f].as_deref()) {
            v[f] = Some(level(*grade, x, y) as u8);
        }
    }
    v
}

#[derive(Debug, Clone)]
pub struct Model {
    m: [[f64; LEVELS]; FIELDS.len()],
    u: [[f64; LEVELS]; FIELDS.len()],
    /// Share of candidate pairs that match.
    pub prior: f64,
}

impl Model {
    /// u from `random` comparisons, then m and the prior by EM over `candidates`.
    pub fn fit(random: &[Vector], candidates: &[Vector], iterations: usize) -> Self {
        let mut u = [[0.0; LEVELS]; FIELDS.len()];
        for f in 0..FIELDS.len() {
            u[f] = frequencies(random.iter().map(|v| (v[f], 1.0)));
        }
        // Start from "matches mostly agree exactly"; EM moves it to what the data says.
        let mut m = [[0.02, 0.03, 0.05, 0.9]; FIELDS.len()];
        let mut prior = 0.1;
        let mut weights = vec![0.0; candidates.len()];
        for _ in 0..iterations {
            let model = Model { m, u, prior };
            for (w, v) in weights.iter_mut().zip(candidates) {
                *w = model.probability(v);
            }
            for f in 0..FIELDS.len() {
                m[f] = frequencies(candidates.iter().zip(&weights).map(|(v, w)| (v[f], *w)));
            }
            prior = (weights.iter().sum::<f64>() / candidates.len().max(1) as f64).clamp(1e-6, 1.0 - 1e-6);
        }
        Model { m, u, prior }
    }

    /// log2 of the odds that the pair matches.
    pub fn score(&self, v: &Vector) -> f64 {
        let mut s = (self.prior / (1.0 - self.prior)).log2();
        for (f, level) in v.iter().enumerate() {
            if let Some(l) = level {
                s += (self.m[f][*l as usize] / self.u[f][*l as usize]).log2();
            }
        }
        s
    }

    pub fn probability(&self, v: &Vector) -> f64 {
        let odds = self.score(v).exp2();
        odds / (1.0 + odds)
    }
}

/// Weighted level frequencies of one field, smoothed so no level has probability zero.
fn frequencies(values: impl Iterator<Item = (Option<u8>, f64)>) -> [f64; LEVELS] {
    let mut counts = [1e-3; LEVELS];
    for (level, weight) in values {
        if let Some(l) = level {
            counts[l as usize] += weight;
        }
    }
    let total: f64 = counts.iter().sum();
    counts.map(|c| c / total)
}
