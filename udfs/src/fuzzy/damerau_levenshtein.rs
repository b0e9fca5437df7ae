//! `damerau_levenshtein(str1, str2)`: unrestricted Damerau-Levenshtein distance.

use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;

use super::{PairMetric, pair_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct DamerauLevenshtein;

impl PairMetric for DamerauLevenshtein {
    const NAME: &'static str = "damerau_levenshtein";
    type Output = i64;

    fn compute(a: &str, b: &str) -> Option<i64> {
        i64::try_from(strsim::damerau_levenshtein(a, b)).ok()
    }

    fn documentation() -> &'static Documentation {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            pair_doc(
                "Damerau-Levenshtein distance: the fewest insertions, deletions, substitutions \
                 and transpositions of adjacent characters turning str1 into str2, where a \
                 substring may be edited more than once (unlike osa_distance). Counts Unicode \
                 characters after NFC normalization. NULL if either argument is NULL.",
                "damerau_levenshtein(str1, str2)",
                "damerau_levenshtein('ca', 'abc')",
                "2",
            )
        });
        &DOC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpositions_and_characters() {
        assert_eq!(DamerauLevenshtein::compute("ca", "abc"), Some(2));
        assert_eq!(DamerauLevenshtein::compute("jonh", "john"), Some(1));
        assert_eq!(DamerauLevenshtein::compute("", "日本"), Some(2));
        assert_eq!(DamerauLevenshtein::compute("müller", "mülelr"), Some(1));
    }
}
