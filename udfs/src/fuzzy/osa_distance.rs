//! `osa_distance(str1, str2)`: optimal string alignment (restricted Damerau-Levenshtein).

use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;

use super::{PairMetric, pair_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct OsaDistance;

impl PairMetric for OsaDistance {
    const NAME: &'static str = "osa_distance";
    type Output = i64;

    fn compute(a: &str, b: &str) -> Option<i64> {
        i64::try_from(strsim::osa_distance(a, b)).ok()
    }

    fn documentation() -> &'static Documentation {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            pair_doc(
                "Optimal string alignment distance: like damerau_levenshtein (insertions, \
                 deletions, substitutions, adjacent transpositions) but no substring is edited \
                 twice, so osa_distance('ca', 'abc') is 3, not 2. Counts Unicode characters \
                 after NFC normalization. NULL if either argument is NULL.",
                "osa_distance(str1, str2)",
                "osa_distance('ca', 'abc')",
                "3",
            )
        });
        &DOC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_transpositions() {
        assert_eq!(OsaDistance::compute("ca", "abc"), Some(3));
        assert_eq!(OsaDistance::compute("jonh", "john"), Some(1));
        assert_eq!(OsaDistance::compute("", ""), Some(0));
        assert_eq!(OsaDistance::compute("😀😃", "😃😀"), Some(1));
    }
}
