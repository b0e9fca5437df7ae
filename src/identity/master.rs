//! Stable master customer ids.
//!
//! A cluster keeps the id its members had last run. When a cluster now holds members of
//! several earlier ids (two people found to be one), it keeps the oldest id and the others
//! become aliases of it. A cluster with no earlier id gets the next unused number. So re-running
//! on unchanged input changes no id, and a new record joins the id of the cluster it lands in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A profile's key: (source, source customer id).
pub type Key = (String, String);

/// The ids of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Master id of each record, in record order.
    pub ids: Vec<String>,
    /// `(alias, master)`: earlier ids merged into an older one in this run.
    pub aliases: Vec<(String, String)>,
    pub new_ids: usize,
}

/// Ids look like `M00000042`; the number orders them by age.
pub fn format_id(n: u64) -> String {
    format!("M{n:08}")
}

fn number(id: &str) -> Option<u64> {
    id.strip_prefix('M')?.parse().ok()
}

/// Assigns ids to `clusters` (cluster number per record) given each record's earlier id.
pub fn assign(keys: &[Key], clusters: &[u32], previous: &HashMap<Key, String>) -> Assignment {
    let mut members: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (i, c) in clusters.iter().enumerate() {
        members.entry(*c).or_default().push(i);
    }
    let mut next = previous.values().filter_map(|id| number(id)).max().map_or(1, |n| n + 1);
    // Clusters in the order of their smallest key, so new ids are handed out reproducibly.
    let mut groups: Vec<Vec<usize>> = members.into_values().collect();
    groups.sort_by(|a, b| a.iter().map(|&i| &keys[i]).min().cmp(&b.iter().map(|&i| &keys[i]).min()));

    let mut ids = vec![String::new(); keys.len()];
    let mut aliases = Vec::new();
    let mut new_ids = 0;
    for group in groups {
        let earlier: BTreeSet<&String> = group.iter().filter_map(|&i| previous.get(&keys[i])).collect();
        let oldest = earlier.iter().min_by_key(|id| number(id).unwrap_or(u64::MAX)).map(|id| id.to_string());
        let id = oldest.unwrap_or_else(|| {
            new_ids += 1;
            next += 1;
            format_id(next - 1)
        });
        for alias in earlier.into_iter().filter(|e| **e != id) {
            aliases.push((alias.clone(), id.clone()));
        }
        for i in group {
            ids[i] = id.clone();
        }
    }
    Assignment { ids, aliases, new_ids }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        ("web".to_string(), s.to_string())
    }

    #[test]
    fn ids_are_stable_new_records_join_and_merges_keep_the_oldest() {
        let keys = vec![key("a"), key("b"), key("c")];
        let first = assign(&keys, &[0, 0, 2], &HashMap::new());
        assert_eq!(first.ids, vec!["M00000001", "M00000001", "M00000002"]);
        let previous: HashMap<Key, String> = keys.iter().cloned().zip(first.ids.clone()).collect();
        // Same input, same ids.
        assert_eq!(assign(&keys, &[0, 0, 2], &previous).ids, first.ids);
        // A new record joining c's cluster takes c's id; a new loner gets the next number.
        let more = vec![key("a"), key("b"), key("c"), key("d"), key("e")];
        let second = assign(&more, &[0, 0, 2, 2, 4], &previous);
        assert_eq!(second.ids, vec!["M00000001", "M00000001", "M00000002", "M00000002", "M00000003"]);
        assert_eq!(second.new_ids, 1);
        // a's and c's clusters found to be one person: the older id survives, the other is an alias.
        let merged = assign(&keys, &[0, 0, 0], &previous);
        assert_eq!(merged.ids, vec!["M00000001"; 3]);
        assert_eq!(merged.aliases, vec![("M00000002".to_string(), "M00000001".to_string())]);
    }
}
