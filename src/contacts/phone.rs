//! Phone numbers: parsed with the `phonenumber` crate and written in E.164.

/// `raw` in E.164 (`+4915123456789`), or `None` when it is not a valid phone number.
/// Without a leading `+`, the number is read in `default_region` (when there is one).
pub fn to_e164(raw: &str, default_region: Option<phonenumber::country::Id>) -> Option<String> {
    let parsed = phonenumber::parse(default_region, raw.trim()).ok()?;
    phonenumber::is_valid(&parsed)
        .then(|| parsed.format().mode(phonenumber::Mode::E164).to_string())
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
    fn needs_a_region_without_country_code() {
        assert_eq!(to_e164("0151 23456789", None), None);
        assert_eq!(
            to_e164("0151 23456789", Some(phonenumber::country::Id::DE)).as_deref(),
            Some("+4915123456789")
        );
        assert_eq!(to_e164("<string>", None), None);
    }
}
