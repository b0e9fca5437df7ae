//! `sorensen_dice(str1, str2)`: Sørensen-Dice coefficient of character bigrams.
//!
//! strsim's `sorensen_dice` builds bigrams from `char`s but divides by the byte lengths, so any
//! non-ASCII text scores too low (and can never reach 1.0 unless identical). This implementation
//! keeps strsim's definition and counts characters throughout.

use std::collections::HashMap;
use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;

use super::{PairMetric, pair_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SorensenDice;

impl PairMetric for SorensenDice {
    const NAME: &'static str = "sorensen_dice";
    type Output = f64;

    fn compute(a: &str, b: &str) -> Option<f64> {
        // Whitespace is dropped (as strsim does) so "de la cruz" and "dela cruz" compare equal.
        let a: Vec<char> = a.chars().filter(|c| !c.is_whitespace()).collect();
        let b: Vec<char> = b.chars().filter(|c| !c.is_whitespace()).collect();
        if a == b {
            return Some(1.0);
        }
        if a.len() < 2 || b.len() < 2 {
            return Some(0.0);
        }
        let mut a_bigrams: HashMap<(char, char), usize> = HashMap::new();
        for pair in a.windows(2) {
            *a_bigrams.entry((pair[0], pair[1])).or_default() += 1;
        }
        let mut shared = 0_usize;
        for pair in b.windows(2) {
            if let Some(count) = a_bigrams.get_mut(&(pair[0], pair[1]))
                && *count > 0
            {
                *count -= 1;
                shared += 1;
            }
        }
        Some((2 * shared) as f64 / (a.len() - 1 + b.len() - 1) as f64)
    }

    fn documentation() -> &'static Documentation {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            pair_doc(
                "Sørensen-Dice similarity of the character bigrams of two strings: \
                 2 * |shared bigrams| / (|bigrams(str1)| + |bigrams(str2)|), from 0.0 to 1.0, \
                 counting bigrams as a multiset. Whitespace is ignored; strings equal after that \
                 score 1.0, otherwise a string shorter than 2 characters scores 0.0. Unicode \
                 characters after NFC normalization. NULL if either argument is NULL.",
                "sorensen_dice(str1, str2)",
                "sorensen_dice('feris', 'ferris')",
                "0.8888888888888888",
            )
        });
        &DOC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigram_multisets() {
        // fe er ri is / fe er rr ri is: 4 shared of 4 + 5
        assert_eq!(SorensenDice::compute("feris", "ferris"), Some(8.0 / 9.0));
        assert_eq!(SorensenDice::compute("", ""), Some(1.0));
        assert_eq!(SorensenDice::compute("a", "ab"), Some(0.0));
        assert_eq!(SorensenDice::compute("de la cruz", "dela cruz"), Some(1.0));
        // "aaa" has bigrams {aa, aa}, "aa" has {aa}: one shared
        assert_eq!(SorensenDice::compute("aaa", "aa"), Some(2.0 / 3.0));
    }

    #[test]
    fn non_ascii_counts_characters_where_strsim_counts_bytes() {
        // jürgen/jurgen share "rg ge en" of 5 + 5 bigrams: 6/10.
        assert_eq!(SorensenDice::compute("jürgen", "jurgen"), Some(0.6));
        // strsim divides by bytes (7 + 6 - 2 = 11) and so disagrees.
        assert!((strsim::sorensen_dice("jürgen", "jurgen") - 6.0 / 11.0).abs() < 1e-12);
        // Emoji: 😀😃😄 vs 😀😃: one shared bigram of 2 + 1.
        assert_eq!(SorensenDice::compute("😀😃😄", "😀😃"), Some(2.0 / 3.0));
    }
}
