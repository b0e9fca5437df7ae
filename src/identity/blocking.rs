//! Blocking: which record pairs are compared at all.
//!
//! A pair is a candidate when the two records agree on at least one blocking key. Keys that
//! many records share (placeholders such as `000000`, a common surname in one postcode) would
//! explode the comparisons and are skipped, which is also the guardrail against blocked values
//! linking unrelated people.

use std::collections::{HashMap, HashSet};

use persona_udfs::kernels;

use super::record::{Field, Record};

/// Values that never link records, whatever field they appear in.
const BLOCKED_VALUES: [&str; 8] = ["0", "00000000", "0000000000", "unknown", "n/a", "none", "test@test.com", "noemail@example.com"];

/// A key value shared by more records than this is not used to pair them.
pub const MAX_BLOCK_SIZE: usize = 100;

type Key = fn(&Record) -> Option<String>;

/// The blocking rules, each a function from a record to its key.
pub const RULES: [(&str, Key); 7] = [
    ("soc_sec_id", |r| exact(r, Field::SocSecId)),
    ("date_of_birth", |r| exact(r, Field::DateOfBirth)),
    ("email", |r| exact(r, Field::Email)),
    ("soundex(surname)+postcode", |r| Some(format!("{}|{}", kernels::soundex(r.get(Field::Surname)?)?, r.get(Field::Postcode)?))),
    ("soundex(given_name)+soundex(surname)", |r| {
        Some(format!("{}|{}", kernels::soundex(r.get(Field::GivenName)?)?, kernels::soundex(r.get(Field::Surname)?)?))
    }),
    ("street_number+address_1", |r| Some(format!("{}|{}", r.get(Field::StreetNumber)?, r.get(Field::Address1)?))),
    ("given_name+suburb", |r| Some(format!("{}|{}", r.get(Field::GivenName)?, r.get(Field::Suburb)?))),
];

fn exact(r: &Record, field: Field) -> Option<String> {
    let v = r.get(field)?;
    (!BLOCKED_VALUES.contains(&v) && !v.chars().all(|c| c == '0')).then(|| v.to_string())
}

/// Candidate pairs `(i, j)` with `i < j`; with `link_only`, only pairs from different sources.
pub fn candidate_pairs(records: &[Record], link_only: bool) -> Vec<(u32, u32)> {
    let mut pairs = HashSet::new();
    for (_, key) in RULES {
        let mut blocks: HashMap<String, Vec<u32>> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            if let Some(k) = key(r) {
                blocks.entry(k).or_default().push(i as u32);
            }
        }
        for members in blocks.values().filter(|m| m.len() > 1 && m.len() <= MAX_BLOCK_SIZE) {
            for (a, &i) in members.iter().enumerate() {
                for &j in &members[a + 1..] {
                    if !link_only || records[i as usize].source != records[j as usize].source {
                        pairs.insert((i.min(j), i.max(j)));
                    }
                }
            }
        }
    }
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort_unstable();
    pairs
}
