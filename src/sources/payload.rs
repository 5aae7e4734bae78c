//! What is done to a vendor payload's bytes before they are parsed as JSON (files and API
//! pages alike):
//!
//! - a leading UTF-8 byte order mark is dropped (RFC 8259 §8.1 lets a parser ignore it, and
//!   spreadsheet tools write one);
//! - an integer literal outside the 64-bit range (`123456789012345678901`) is read as the
//!   string of its digits: the JSON parser would otherwise turn it into the nearest `f64`,
//!   so that two vendor ids became one. Vendor ids are kept exactly as written.
use std::borrow::Cow;

/// The UTF-8 byte order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `payload` ready to parse: without a BOM, big integers quoted (see the module docs).
/// Borrows when there is nothing to change.
pub fn normalise(payload: &[u8]) -> Cow<'_, [u8]> {
    let payload = payload.strip_prefix(BOM).unwrap_or(payload);
    quote_big_integers(payload)
}

/// Rewrites every integer literal (outside strings) that fits neither `i64` nor `u64` as a
/// JSON string of the same digits.
fn quote_big_integers(json: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < json.len()
                    && matches!(json[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                let number = &json[start..i];
                if is_big_integer(number) {
                    let buffer = out.get_or_insert_with(|| Vec::with_capacity(json.len() + 16));
                    buffer.extend_from_slice(&json[copied..start]);
                    buffer.push(b'"');
                    buffer.extend_from_slice(number);
                    buffer.push(b'"');
                    copied = i;
                }
            }
            _ => i += 1,
        }
    }
    match out {
        None => Cow::Borrowed(json),
        Some(mut buffer) => {
            buffer.extend_from_slice(&json[copied..]);
            Cow::Owned(buffer)
        }
    }
}

/// Whether `number` is an integer literal (digits, maybe a leading `-`) that fits neither
/// `i64` nor `u64`.
fn is_big_integer(number: &[u8]) -> bool {
    let digits = number.strip_prefix(b"-").unwrap_or(number);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    // Up to 18 digits always fit; only longer literals need a closer look.
    if digits.len() < 19 {
        return false;
    }
    let Ok(text) = std::str::from_utf8(number) else {
        return false;
    };
    text.parse::<i64>().is_err() && text.parse::<u64>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(text: &str) -> String {
        String::from_utf8(normalise(text.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        assert_eq!(normalised("\u{feff}[1]"), "[1]");
    }

    #[test]
    fn integers_past_64_bits_become_strings_of_their_digits() {
        assert_eq!(
            normalised(r#"[{"id": 123456789012345678901, "n": 18446744073709551615}]"#),
            r#"[{"id": "123456789012345678901", "n": 18446744073709551615}]"#
        );
        assert_eq!(
            normalised("[-9223372036854775809,-9223372036854775808]"),
            r#"["-9223372036854775809",-9223372036854775808]"#
        );
    }

    #[test]
    fn strings_fractions_and_exponents_are_left_alone() {
        let text = r#"{"s": "123456789012345678901", "f": 1.23456789012345678901, "e": 1e400, "q": "a\"123456789012345678901"}"#;
        assert!(matches!(normalise(text.as_bytes()), Cow::Borrowed(_)));
    }
}
