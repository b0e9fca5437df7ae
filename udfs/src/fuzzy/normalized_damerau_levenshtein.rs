//! `normalized_damerau_levenshtein(str1, str2)`: Damerau-Levenshtein scaled to a similarity.

use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;

use super::{PairMetric, pair_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct NormalizedDamerauLevenshtein;

impl PairMetric for NormalizedDamerauLevenshtein {
    const NAME: &'static str = "normalized_damerau_levenshtein";
    type Output = f64;

    fn compute(a: &str, b: &str) -> Option<f64> {
        Some(strsim::normalized_damerau_levenshtein(a, b))
    }

    fn documentation() -> &'static Documentation {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            pair_doc(
                "Damerau-Levenshtein similarity: 1 - damerau_levenshtein(str1, str2) / \
                 max(length(str1), length(str2)), from 0.0 to 1.0, over Unicode characters \
                 after NFC normalization. Two empty strings score 1.0. NULL if either argument \
                 is NULL.",
                "normalized_damerau_levenshtein(str1, str2)",
                "normalized_damerau_levenshtein('jonh', 'john')",
                "0.75",
            )
        });
        &DOC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_by_the_longer_string() {
        assert_eq!(
            NormalizedDamerauLevenshtein::compute("jonh", "john"),
            Some(0.75)
        );
        assert_eq!(NormalizedDamerauLevenshtein::compute("", ""), Some(1.0));
        assert_eq!(NormalizedDamerauLevenshtein::compute("a", ""), Some(0.0));
        assert!(
            (NormalizedDamerauLevenshtein::compute("ca", "abc").unwrap() - 1.0 / 3.0).abs() < 1e-12
        );
    }
}
