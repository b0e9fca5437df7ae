//! `jaro(str1, str2)`: Jaro similarity.

use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;

use super::{PairMetric, pair_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Jaro;

impl PairMetric for Jaro {
    const NAME: &'static str = "jaro";
    type Output = f64;

    fn compute(a: &str, b: &str) -> Option<f64> {
        // strsim walks `chars()`, so characters, not bytes, are matched; two empty strings are
        // identical and score 1.0 (as rapidfuzz does; jellyfish says 0.0).
        Some(strsim::jaro(a, b))
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
}
