//! `jaro_winkler(str1, str2)`: Jaro similarity boosted by a shared prefix.

use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;

use super::{PairMetric, pair_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct JaroWinkler;

impl PairMetric for JaroWinkler {
    const NAME: &'static str = "jaro_winkler";
    type Output = f64;

    fn compute(a: &str, b: &str) -> Option<f64> {
        // Winkler's standard parameters, as rapidfuzz and jellyfish use them: prefix scale 0.1,
        // at most 4 prefix characters, boost only when the Jaro similarity exceeds 0.7.
        let sim = super::jaro::similarity(a, b);
        if sim <= 0.7 {
            return Some(sim);
        }
        let prefix = a.chars().zip(b.chars()).take(4).take_while(|(x, y)| x == y).count();
        Some(sim + 0.1 * prefix as f64 * (1.0 - sim))
    }

    fn documentation() -> &'static Documentation {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            pair_doc(
                "Jaro-Winkler similarity of two strings, from 0.0 to 1.0: the Jaro similarity \
                 raised by 0.1 per shared leading character (up to 4) when it exceeds 0.7. \
                 Unicode characters after NFC normalization; two empty strings score 1.0. \
                 NULL if either argument is NULL.",
                "jaro_winkler(str1, str2)",
                "jaro_winkler('martha', 'marhta')",
                "0.9611111111111111",
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
        // martha/marhta: jaro 0.9444.., prefix "mar" (3): j + 0.3 * (1 - j)
        let j = (2.0 + 5.0 / 6.0) / 3.0;
        assert!(
            (JaroWinkler::compute("martha", "marhta").unwrap() - (j + 0.3 * (1.0 - j))).abs()
                < 1e-12
        );
        // below the 0.7 threshold a shared prefix earns nothing: abc/axy has m=1, jaro 5/9
        assert!((JaroWinkler::compute("abc", "axy").unwrap() - 5.0 / 9.0).abs() < 1e-12);
        assert_eq!(JaroWinkler::compute("", ""), Some(1.0));
    }

    #[test]
    fn gives_strsim_bits() {
        for (a, b) in [("martha", "marhta"), ("dixon", "dicksonx"), ("", ""), ("a", ""), ("jessica", "jesica"), ("zoë", "zoe"), ("abcd", "abcd")] {
            assert_eq!(JaroWinkler::compute(a, b).unwrap().to_bits(), strsim::jaro_winkler(a, b).to_bits(), "{a:?} {b:?}");
        }
    }
}
