//! Phone numbers: parsed with the `phonenumber` crate and written in E.164, with the
//! extension (when the number has one) in RFC 3966's form: `+16502530000;ext=136`.
//!
//! An extension is never dropped: "+1 650 253 0000 x136", "... ext. 136" and
//! "+16502530000;ext=136" are all `+16502530000;ext=136`, so two people on one switchboard
//! stay two phone numbers (in writes, filters, imports and duplicate keys alike).

/// Longest extension kept (digits); longer ones are refused.
const MAX_EXTENSION_DIGITS: usize = 10;

/// `raw` in E.164 (`+4915123456789`), with `;ext=` and the extension's digits when it has
/// one, or `None` when it is not a valid phone number. Without a leading `+`, the number is
/// read in `default_region` (when there is one).
pub fn to_e164(raw: &str, default_region: Option<phonenumber::country::Id>) -> Option<String> {
    let raw = raw.trim();
    // RFC 3966's `;ext=` (also what this function writes) is not read by the parser.
    let (number, written_extension) = match raw.split_once(";ext=") {
        Some((number, extension)) => (number, Some(extension.trim())),
        None => (raw, None),
    };
    let parsed = phonenumber::parse(default_region, number.trim()).ok()?;
    if !phonenumber::is_valid(&parsed) {
        return None;
    }
    let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    let extension = match (written_extension, parsed.extension()) {
        (Some(_), Some(_)) => return None,
        (Some(written), None) => Some(written),
        (None, parsed) => parsed.map(|e| &**e),
    };
    match extension {
        None => Some(e164),
        Some(ext)
            if !ext.is_empty()
                && ext.len() <= MAX_EXTENSION_DIGITS
                && ext.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(format!("{e164};ext={ext}"))
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_international_numbers() {
        assert_eq!(
            to_e164("+49 151 2345 6789", None).as_deref(),
            Some("+4915123456789")
        );
        assert_eq!(
            to_e164("+1 (415) 555-1234", None).as_deref(),
            Some("+14155551234")
        );
    }

    #[test]
    fn keeps_extensions_in_every_spelling() {
        for raw in [
            "+1 650 253 0000 x136",
            "+1 650 253 0000 ext. 136",
            "+16502530000;ext=136",
            " +1-650-253-0000 ;ext=136 ",
        ] {
            assert_eq!(
                to_e164(raw, None).as_deref(),
                Some("+16502530000;ext=136"),
                "{raw}"
            );
        }
        assert_eq!(
            to_e164("+1 650 253 0000 x137", None).as_deref(),
            Some("+16502530000;ext=137")
        );
        assert_eq!(to_e164("+16502530000;ext=", None), None);
        assert_eq!(to_e164("+16502530000;ext=12a", None), None);
        assert_eq!(to_e164("+1 650 253 0000 x1;ext=2", None), None);
    }

    #[test]
    fn needs_a_region_without_country_code() {
        assert_eq!(to_e164("0151 23456789", None), None);
        assert_eq!(
            to_e164("0151 23456789", Some(phonenumber::country::Id::DE)).as_deref(),
            Some("+4915123456789")
        );
        assert_eq!(to_e164("<string>", None), None);
    }
}
