//! `normalize_email(str)`: the canonical mailbox an address delivers to.

use std::sync::LazyLock;

use datafusion::logical_expr::Documentation;
use unicode_normalization::UnicodeNormalization;

use super::{StringMap, unary_doc};

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct NormalizeEmail;

/// Domains whose mailboxes ignore dots in the local part, and the domain they deliver to.
const DOTLESS_DOMAINS: &[(&str, &str)] =
    &[("gmail.com", "gmail.com"), ("googlemail.com", "gmail.com")];

/// Characters RFC 5322 only allows in quoted local parts, which customer data never needs; an
/// address containing one is far more likely a typo or two addresses pasted together.
const FORBIDDEN_IN_LOCAL: &[char] = &['"', '(', ')', ',', ':', ';', '<', '>', '[', ']', '\\', '@'];

impl StringMap for NormalizeEmail {
    const NAME: &'static str = "normalize_email";

    fn apply(value: &str) -> Option<String> {
        let value = value.trim();
        let value = match value.get(..7) {
            Some(prefix) if prefix.eq_ignore_ascii_case("mailto:") => &value[7..],
            _ => value,
        };
        // "Jane Doe <jane@example.com>": keep what is inside the angle brackets.
        let value = match (value.rfind('<'), value.strip_suffix('>')) {
            (Some(open), Some(inner)) => &inner[open + 1..],
            _ => value,
        }
        .trim();
        let lowered: String = value.nfc().flat_map(char::to_lowercase).collect();
        let (local, domain) = lowered.split_once('@')?;
        if !valid_local(local) || !valid_domain(domain) {
            return None;
        }
        // Sub-addressing: "jane+newsletter@" delivers to "jane@".
        let local = local.split('+').next().unwrap_or_default();
        let (local, domain) = match DOTLESS_DOMAINS.iter().find(|(d, _)| *d == domain) {
            Some((_, canonical)) => (local.replace('.', ""), *canonical),
            None => (local.to_string(), domain),
        };
        (!local.is_empty()).then(|| format!("{local}@{domain}"))
    }

    fn documentation() -> &'static Documentation {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            unary_doc(
                "Canonical form of an email address: trimmed, 'mailto:' and a 'Name <...>' \
                 wrapper removed, NFC and lowercase, '+tag' sub-address removed, and for \
                 gmail.com / googlemail.com (both become gmail.com) the dots of the local part \
                 removed. NULL when the text is not a single plausible address (no or several \
                 '@', empty local part, spaces, a domain without a dot or with empty labels), and \
                 for NULL.",
                "normalize_email(str)",
                "normalize_email(' John.Smith+news@GoogleMail.com ')",
                "johnsmith@gmail.com",
            )
        });
        &DOC
    }
}

fn valid_local(local: &str) -> bool {
    !local.is_empty()
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || FORBIDDEN_IN_LOCAL.contains(&c))
}

/// A host name of at least two labels whose top-level label has a letter (so IP addresses and
/// "localhost" are rejected: neither is a customer's mailbox).
fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.chars().count() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().any(char::is_alphabetic))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Option<String> {
        NormalizeEmail::apply(s)
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(
            n(" John.Smith+news@GoogleMail.com "),
            Some("johnsmith@gmail.com".into())
        );
        assert_eq!(n("j.o.h.n@gmail.com"), Some("john@gmail.com".into()));
        // dots matter elsewhere
        assert_eq!(
            n("John.Smith+x@Example.co.uk"),
            Some("john.smith@example.co.uk".into())
        );
        assert_eq!(
            n("mailto:Jane@Example.com"),
            Some("jane@example.com".into())
        );
        assert_eq!(
            n("Jane Doe <Jane.Doe@Example.com>"),
            Some("jane.doe@example.com".into())
        );
        assert_eq!(n("JÖRG@Müller.de"), Some("jörg@müller.de".into()));
        // NFD input comes out composed
        assert_eq!(n("jo\u{308}rg@example.de"), Some("jörg@example.de".into()));
    }

    #[test]
    fn not_an_address_is_null() {
        for bad in [
            "",
            "   ",
            "john",
            "john@",
            "@example.com",
            "john@example",
            "a@b@example.com",
            "john smith@example.com",
            "john@exa mple.com",
            "john@example..com",
            "john@.example.com",
            "john@-example.com",
            "+news@example.com",
            "...@gmail.com",
            "john@127.0.0.1",
            ".john@example.com",
            "jo..hn@example.com",
            "john,jane@example.com",
        ] {
            assert_eq!(n(bad), None, "{bad:?}");
        }
    }
}
