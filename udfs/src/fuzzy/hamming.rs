//! `hamming(str1, str2)`: positions at which two equally long strings differ.

use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;

use super::{PairMetric, pair_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Hamming;

impl PairMetric for Hamming {
    const NAME: &'static str = "hamming";
    type Output = i64;

    fn compute(a: &str, b: &str) -> Option<i64> {
        // Hamming distance is undefined for strings of different lengths. NULL rather than an
        // error, so one odd row does not abort a scoring query over millions of pairs.
        strsim::hamming(a, b)
            .ok()
            .and_then(|d| i64::try_from(d).ok())
    }

    fn documentation() -> &'static Documentation {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            pair_doc(
                "Hamming distance: the number of positions at which two strings of the same \
                 length (in Unicode characters, after NFC normalization) differ. NULL when the \
                 lengths differ, or if either argument is NULL.",
                "hamming(str1, str2)",
                "hamming('karolin', 'kathrin')",
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
    fn equal_lengths_only() {
        assert_eq!(Hamming::compute("karolin", "kathrin"), Some(3));
        assert_eq!(Hamming::compute("", ""), Some(0));
        assert_eq!(Hamming::compute("abc", "ab"), None);
        // 'ö' is 2 bytes and 'o' 1; by characters the lengths are equal
        assert_eq!(Hamming::compute("köln", "koln"), Some(1));
    }
}
