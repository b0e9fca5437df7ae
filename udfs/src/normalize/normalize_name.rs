//! `normalize_name(str)`: a person's name reduced to comparable words.

use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::{StringMap, unary_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct NormalizeName;

/// Titles that say nothing about who a person is (compared after punctuation is removed).
const HONORIFICS: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "rev", "herr", "frau", "mme",
    "mlle",
];

impl StringMap for NormalizeName {
    const NAME: &'static str = "normalize_name";

    fn apply(value: &str) -> Option<String> {
        let mut cleaned = String::with_capacity(value.len());
        let mut base = ' ';
        for c in value.nfkd() {
            if is_combining_mark(c) {
                // Accents on Latin and Greek letters are spelling variants (é, ά); elsewhere a
                // mark is part of the letter (Cyrillic й, Devanagari vowel signs) and stays.
                if !has_optional_accents(base) {
                    cleaned.push(c);
                }
                continue;
            }
            base = c;
            for c in c.to_lowercase() {
                push_normalized(&mut cleaned, c);
            }
        }
        let words: Vec<&str> = cleaned
            .split_whitespace()
            .filter(|word| !HONORIFICS.contains(word))
            .collect();
        // Marks were kept decomposed and NFKD split Hangul syllables into jamo: recompose.
        Some(words.join(" ").nfc().collect())
    }

    fn documentation() -> &'static Documentation {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            unary_doc(
                "A name reduced for comparison: NFKD; accents of Latin and Greek letters \
                 removed (marks that belong to a letter in other scripts, like Cyrillic й or \
                 Devanagari vowel signs, are kept); letters without a decomposition folded (ß \
                 ss, æ ae, œ oe, ø o, ł l, đ ð d, þ th, ı i); lowercase; apostrophes and periods \
                 deleted (O'Brien obrien), other punctuation turned into spaces; honorifics (mr, \
                 mrs, ms, miss, mx, dr, prof, sir, dame, rev, herr, frau, mme, mlle) removed; \
                 whitespace collapsed; NFC. An empty result is ''; NULL gives NULL.",
                "normalize_name(str)",
                "normalize_name('Dr. José  O''Brien-Núñez')",
                "jose obrien nunez",
            )
        });
        &DOC
    }
}

fn has_optional_accents(base: char) -> bool {
    base.is_ascii_alphabetic() || ('\u{0370}'..='\u{03FF}').contains(&base)
}

fn push_normalized(cleaned: &mut String, c: char) {
    match c {
        // Joining punctuation: "O'Brien" is one name, "J.R.R." one set of initials.
        '\'' | '’' | 'ʼ' | '`' | '´' | '.' => {}
        c if c.is_alphanumeric() => match fold_letter(c) {
            Some(folded) => cleaned.push_str(folded),
            None => cleaned.push(c),
        },
        // Separating punctuation ("Smith-Jones", "Smith, John") and whitespace.
        _ => cleaned.push(' '),
    }
}

/// Latin letters that are distinct code points rather than a base letter plus a mark, so NFKD
/// leaves them alone.
fn fold_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        'ø' => "o",
        'ł' => "l",
        'đ' | 'ð' => "d",
        'þ' => "th",
        'ı' => "i",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        NormalizeName::apply(s).unwrap()
    }

    #[test]
    fn accents_case_punctuation_and_titles() {
        assert_eq!(n("Dr. José  O'Brien-Núñez"), "jose obrien nunez");
        assert_eq!(n("MRS. Zoë Saldaña"), "zoe saldana");
        assert_eq!(n("Smith, John"), "smith john");
        assert_eq!(n("J.R.R. Tolkien"), "jrr tolkien");
        assert_eq!(n("Prof Dr Jürgen Groß"), "jurgen gross");
        assert_eq!(n("Søren Kierkegaard"), "soren kierkegaard");
        assert_eq!(n("Łukasz Żółć"), "lukasz zolc");
        // NFC and NFD spellings agree
        assert_eq!(n("Ame\u{301}lie"), n("Amélie"));
        // compatibility forms: full-width letters, the "ﬁ" ligature
        assert_eq!(n("ＪＯＨＮ ﬁnn"), "john finn");
    }

    #[test]
    fn other_scripts_are_kept() {
        assert_eq!(n("  张  伟 "), "张 伟");
        assert_eq!(n("김민준"), "김민준");
        assert_eq!(n("Дмитрий Иванов"), "дмитрий иванов");
        assert_eq!(n("राहुल शर्मा"), "राहुल शर्मा");
        assert_eq!(n("Αλέξανδρος"), "αλεξανδρος");
        assert_eq!(n("Mr."), "");
        assert_eq!(n(""), "");
    }
}
