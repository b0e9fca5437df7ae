//! `jaro(str1, str2)`: Jaro similarity.

use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;

use super::{PairMetric, pair_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Jaro;

/// Jaro similarity, exactly as `strsim::jaro` computes it (same matches, same arithmetic, so
/// the same bits). Names, e-mails and postcodes are short ASCII, where the match flags fit in
/// two `u64`s and nothing is allocated; anything else goes to strsim, which walks `chars()`.
pub(crate) fn similarity(a: &str, b: &str) -> f64 {
    if a.len() <= 64 && b.len() <= 64 && a.is_ascii() && b.is_ascii() {
        ascii(a.as_bytes(), b.as_bytes())
    } else {
        strsim::jaro(a, b)
    }
}

fn ascii(a: &[u8], b: &[u8]) -> f64 {
    let (la, lb) = (a.len(), b.len());
    if la == 0 && lb == 0 {
        return 1.0;
    }
    if la == 0 || lb == 0 {
        return 0.0;
    }
    // Characters match when equal and at most `range` positions apart, each used once.
    let range = (la.max(lb) / 2).saturating_sub(1);
    let (mut a_flags, mut b_flags) = (0u64, 0u64);
    let mut matches = 0usize;
    for (i, &x) in a.iter().enumerate() {
        let (lo, hi) = (i.saturating_sub(range), (i + range + 1).min(lb));
        if let Some(j) = (lo..hi).find(|&j| b_flags & (1 << j) == 0 && b[j] == x) {
            a_flags |= 1 << i;
            b_flags |= 1 << j;
            matches += 1;
        }
    }
    if matches == 0 {
        return 0.0;
    }
    // Matched characters out of order, in pairs.
    let mut transpositions = 0usize;
    let mut j = 0;
    for (i, &x) in a.iter().enumerate() {
        if a_flags & (1 << i) != 0 {
            while b_flags & (1 << j) == 0 {
                j += 1;
            }
            transpositions += usize::from(x != b[j]);
            j += 1;
        }
    }
    transpositions /= 2;
    ((matches as f64 / la as f64) + (matches as f64 / lb as f64) + ((matches - transpositions) as f64 / matches as f64)) / 3.0
}

impl PairMetric for Jaro {
    const NAME: &'static str = "jaro";
    type Output = f64;

    fn compute(a: &str, b: &str) -> Option<f64> {
        // Characters, not bytes, are matched; two empty strings are identical and score 1.0
        // (as rapidfuzz does; jellyfish says 0.0).
        Some(similarity(a, b))
    }

    fn documentation() -> &'static Documentation {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            pair_doc(
                "Jaro similarity of two strings, from 0.0 (nothing in common) to 1.0 (identical), \
                 over Unicode characters after NFC normalization. Two empty strings score 1.0; \
                 an empty and a non-empty string 0.0. NULL if either argument is NULL.",
                "jaro(str1, str2)",
                "jaro('martha', 'marhta')",
                "0.9444444444444445",
            )
        });
        &DOC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_values() {
        // Jaro (1989) / Winkler (1990) worked examples: m = matches, t = half transpositions.
        // martha/marhta: m=6, t=1 -> (1 + 1 + 5/6) / 3
        assert!(
            (Jaro::compute("martha", "marhta").unwrap() - (2.0 + 5.0 / 6.0) / 3.0).abs() < 1e-12
        );
        // dixon/dicksonx: m=4 -> (4/5 + 4/8 + 1) / 3
        assert!(
            (Jaro::compute("dixon", "dicksonx").unwrap() - (0.8 + 0.5 + 1.0) / 3.0).abs() < 1e-12
        );
        assert_eq!(Jaro::compute("", ""), Some(1.0));
        assert_eq!(Jaro::compute("", "a"), Some(0.0));
    }

    #[test]
    fn counts_characters_not_bytes() {
        // 'é' is two bytes; as characters "été"/"ete" match only in the middle: m=1, t=0.
        assert!(
            (Jaro::compute("été", "ete").unwrap() - (1.0 / 3.0 + 1.0 / 3.0 + 1.0) / 3.0).abs()
                < 1e-12
        );
    }

    #[test]
    fn the_ascii_path_gives_strsim_bits() {
        // Every pair of words up to length 4 over 3 letters, and longer words built from them
        // (up to 64 bytes, the ASCII path's limit, and past it).
        let mut words = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = words.iter().flat_map(|w| ['a', 'b', 'c'].map(|c| format!("{w}{c}"))).collect();
            words.extend(longer);
        }
        words.sort();
        words.dedup();
        let long: Vec<String> = (0..40).map(|i| words[(i * 37) % words.len()].repeat(i % 17 + 1)).collect();
        for a in words.iter().chain(&long) {
            for b in words.iter().step_by(3).chain(&long) {
                assert_eq!(similarity(a, b).to_bits(), strsim::jaro(a, b).to_bits(), "{a:?} {b:?}");
            }
        }
    }
}
