//! `normalize_phone(phone [, default_country_code])`: E.164 form, '+' and digits.

use std::borrow::Cow;
use std::sync::LazyLock;

use arrow::datatypes::DataType;
use datafusion::common::exec_err;
use datafusion::common::types::{NativeType, logical_string};
use datafusion::error::Result;
use datafusion::logical_expr::{
    Coercion, ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature,
    TypeSignature, TypeSignatureClass, Volatility,
};
use unicode_normalization::UnicodeNormalization;

use super::DOC_SECTION;
use crate::common::{
    Shape, StringArg, decode_dictionaries, string_array, string_coercion, string_return_type,
};

const NAME: &str = "normalize_phone";

/// E.164 allows at most 15 digits, country code included; the shortest real numbers (small
/// island states) have 7.
const DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// A national number written without a country code is at least this long: shorter ones are
/// extensions, short codes or typos, not a customer's phone.
const MIN_NATIONAL_DIGITS: usize = 6;

/// Countries whose national numbers keep their leading 0 after the country code (Italy, San
/// Marino, Vatican), unlike the trunk prefix 0 dropped everywhere else.
const KEEPS_LEADING_ZERO: &[&str] = &["39", "378", "379"];

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct NormalizePhone {
    signature: Signature,
}

impl NormalizePhone {
    pub(crate) fn new() -> Self {
        // The country code may be written as a number (44) as well as a string ('44', '+44').
        let country = Coercion::new_implicit(
            TypeSignatureClass::Native(logical_string()),
            vec![TypeSignatureClass::Integer],
            NativeType::String,
        );
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Coercible(vec![string_coercion()]),
                    TypeSignature::Coercible(vec![string_coercion(), country]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for NormalizePhone {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(input) => Ok(string_return_type(input)),
            None => exec_err!("{NAME} takes 1 or 2 arguments, got none"),
        }
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let shape = Shape::of(&args.args, args.number_rows);
        let return_type = args.return_type().clone();
        let args = decode_dictionaries(args.args)?;
        let (phone, country) = match args.as_slice() {
            [phone] => (StringArg::try_new(phone, NAME)?, None),
            [phone, country] => (
                StringArg::try_new(phone, NAME)?,
                Some(StringArg::try_new(country, NAME)?),
            ),
            _ => return exec_err!("{NAME} takes 1 or 2 arguments, got {}", args.len()),
        };
        let values = (0..shape.rows)
            .map(|row| {
                let Some(phone) = phone.get(row) else {
                    return Ok(None);
                };
                let country = match &country {
                    None => None,
                    Some(arg) => match arg.get(row) {
                        None => return Ok(None),
                        Some(code) => Some(country_code(code)?),
                    },
                };
                Ok(normalize_phone(phone, country.as_deref()))
            })
            .collect::<Result<Vec<_>>>()?;
        shape.finish(string_array(&return_type, values))
    }

    fn documentation(&self) -> Option<&Documentation> {
        static DOC: LazyLock<Documentation> = LazyLock::new(|| {
            Documentation::builder(
                DOC_SECTION,
                "Phone number in E.164 form: '+', country code, national number, digits only. \
                 Spaces, dashes, dots, slashes and parentheses are ignored and a trailing \
                 extension (from the first letter or '#' after the number) is dropped, as is a \
                 label before it ('Tel: '). A number starting with \
                 '+' or the international prefix '00' keeps its own country code (a '(0)' after \
                 it is dropped). Any other number is national: without default_country_code it \
                 gives NULL; with it, one trunk prefix '0' is dropped (not for Italy 39, San \
                 Marino 378, Vatican 379, which keep it) and so is a leading '1' of an 11-digit \
                 number under code 1; a national number shorter than 6 digits gives NULL. NULL \
                 if the result has fewer than 7 or more than 15 digits. default_country_code is \
                 1 to 3 digits, optionally after '+' or '00'; anything else is an error.",
                "normalize_phone(phone[, default_country_code])",
            )
            .with_sql_example(
                "```sql\n> SELECT normalize_phone('020 7946 0958', '44');\n+442079460958\n```",
            )
            .with_argument("phone", "Phone number as written (any string type).")
            .with_argument(
                "default_country_code",
                "Country code for national numbers, e.g. '44' or 44.",
            )
            .build()
        });
        Some(&DOC)
    }
}

/// The digits of a country code written as "44", "+44" or "0044".
fn country_code(code: &str) -> Result<String> {
    let trimmed = code.trim();
    let digits = trimmed
        .strip_prefix('+')
        .or_else(|| trimmed.strip_prefix("00"))
        .unwrap_or(trimmed);
    if (1..=3).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
    {
        Ok(digits.to_string())
    } else {
        exec_err!(
            "{NAME}: default_country_code '{code}' is not a country calling code (1 to 3 digits, not starting with 0)"
        )
    }
}

pub(crate) fn normalize_phone(phone: &str, default_country: Option<&str>) -> Option<String> {
    // NFKC turns full-width digits and '＋' (common in CJK input) into ASCII.
    let phone: Cow<'_, str> = if phone.is_ascii() {
        Cow::Borrowed(phone)
    } else {
        Cow::Owned(phone.nfkc().collect())
    };
    // A label before the number ("Tel: ") is skipped; an extension after it ("ext. 12", "x12",
    // "#12") is cut off, as it is not part of what E.164 identifies.
    let start = phone.find(|c: char| c.is_ascii_digit() || c == '+' || c == '(')?;
    let number = phone[start..]
        .split(|c: char| c.is_alphabetic() || c == '#')
        .next()
        .unwrap_or_default()
        .trim();
    let plus = number.starts_with('+');
    let digits_of = |text: &str| {
        text.chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
    };
    let mut digits = digits_of(number);
    if plus || digits.starts_with("00") {
        // "+44 (0)20 ...": the bracketed trunk prefix is for national dialling only.
        digits = digits_of(&number.replacen("(0)", "", 1));
        if !plus {
            digits = digits.strip_prefix("00")?.to_string();
        }
    } else {
        let country = default_country?;
        // One trunk prefix goes: '1' in the North American plan (1-555-123-4567), '0' almost
        // everywhere else.
        let nanp_trunk = country == "1" && digits.len() == 11 && digits.starts_with('1');
        let zero_trunk = !KEEPS_LEADING_ZERO.contains(&country) && digits.starts_with('0');
        let national = if nanp_trunk || zero_trunk {
            &digits[1..]
        } else {
            &digits[..]
        };
        if national.len() < MIN_NATIONAL_DIGITS {
            return None;
        }
        digits = format!("{country}{national}");
    }
    (DIGITS.contains(&digits.len()) && !digits.starts_with('0')).then(|| format!("+{digits}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(phone: &str, country: Option<&str>) -> Option<String> {
        normalize_phone(phone, country)
    }

    #[test]
    fn national_numbers_take_the_default_country() {
        assert_eq!(n("020 7946 0958", Some("44")), Some("+442079460958".into()));
        assert_eq!(n("(555) 123-4567", Some("1")), Some("+15551234567".into()));
        assert_eq!(n("1-555-123-4567", Some("1")), Some("+15551234567".into()));
        assert_eq!(
            n("030/123 456 78", Some("49")),
            Some("+493012345678".into())
        );
        // Italy keeps the 0 of its area codes
        assert_eq!(n("06 6982 1234", Some("39")), Some("+390669821234".into()));
        assert_eq!(n("020 7946 0958", None), None);
    }

    #[test]
    fn international_numbers_keep_their_country() {
        assert_eq!(
            n("+44 20 7946 0958", Some("1")),
            Some("+442079460958".into())
        );
        assert_eq!(n("0044 20 7946 0958", None), Some("+442079460958".into()));
        assert_eq!(n("+44 (0)20 7946 0958", None), Some("+442079460958".into()));
        assert_eq!(
            n("0044 (0)20 7946 0958", None),
            Some("+442079460958".into())
        );
        assert_eq!(
            n("＋４４ ２０ ７９４６ ０９５８", None),
            Some("+442079460958".into())
        );
        assert_eq!(
            n("+1 555 123 4567 ext. 89", None),
            Some("+15551234567".into())
        );
        assert_eq!(n("+1 555 123 4567 #89", None), Some("+15551234567".into()));
        assert_eq!(
            n("Tel: +44 20 7946 0958", None),
            Some("+442079460958".into())
        );
    }

    #[test]
    fn implausible_numbers_are_null() {
        assert_eq!(n("", Some("44")), None);
        assert_eq!(n("n/a", Some("44")), None);
        assert_eq!(n("12345", Some("44")), None);
        assert_eq!(n("0 12345", Some("44")), None);
        assert_eq!(n("+290 1234", None), Some("+2901234".into()));
        assert_eq!(n("+1234567890123456", None), None);
        assert_eq!(n("+0 123 456 789", None), None);
    }

    #[test]
    fn country_codes() {
        assert_eq!(country_code(" +44").unwrap(), "44");
        assert_eq!(country_code("0049").unwrap(), "49");
        assert_eq!(country_code("1").unwrap(), "1");
        let err = country_code("UK").unwrap_err().to_string();
        assert!(err.contains("default_country_code 'UK'"), "{err}");
        assert!(country_code("4444").is_err());
        assert!(country_code("").is_err());
    }
}
