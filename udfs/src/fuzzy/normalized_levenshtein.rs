//! `normalized_levenshtein(str1, str2)`: Levenshtein distance scaled to a similarity.

use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;

use super::{PairMetric, pair_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct NormalizedLevenshtein;

impl PairMetric for NormalizedLevenshtein {
    const NAME: &'static str = "normalized_levenshtein";
    type Output = f64;

    fn compute(a: &str, b: &str) -> Option<f64> {
        // 1 - distance / max(char lengths); strsim counts chars and maps ("", "") to 1.0.
        Some(strsim::normalized_levenshtein(a, b))
    }

    fn documentation() -> &'static Documentation {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            pair_doc(
                "Levenshtein similarity: 1 - levenshtein(str1, str2) / max(length(str1), \
                 length(str2)), from 0.0 to 1.0, over Unicode characters after NFC \
                 normalization. Two empty strings score 1.0. NULL if either argument is NULL.",
                "normalized_levenshtein(str1, str2)",
                "normalized_levenshtein('kitten', 'sitting')",
                "0.5714285714285714",
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
        assert!(
            (NormalizedLevenshtein::compute("kitten", "sitting").unwrap() - 4.0 / 7.0).abs()
                < 1e-12
        );
        assert_eq!(NormalizedLevenshtein::compute("", ""), Some(1.0));
        assert_eq!(NormalizedLevenshtein::compute("", "abc"), Some(0.0));
        // 3 characters (6 bytes) with one substitution
        assert!((NormalizedLevenshtein::compute("äöü", "äöx").unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }
}
