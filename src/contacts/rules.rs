//! Business rules of contact writes, as plain functions: validation, normalisation and
//! name splitting. Every failure is collected (never just the first).
use chrono_tz::Tz;

use crate::error::{FieldFailure, field_path};

/// Longest email address (seed 003).
pub const MAX_EMAIL: usize = 150;
/// Longest first or last name (seed 003).
pub const MAX_NAME: usize = 100;
/// Longest role (seed 003).
pub const MAX_ROLE: usize = 75;
/// Longest website or LinkedIn URL (seed 003).
pub const MAX_LINK: usize = 250;
/// Longest free text (description, notes).
pub const MAX_TEXT: usize = 10_000;
/// Longest other short text (company, status, address parts, ...).
pub const MAX_SHORT: usize = 255;
/// Most secondary emails, secondary phones or assignees.
pub const MAX_LIST: usize = 50;

/// Settings that change how input is read.
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteSettings {
    /// Region for phone numbers written without a country code; without one they are
    /// rejected.
    pub default_region: Option<phonenumber::country::Id>,
}

/// Collects failures while normalising one input.
pub struct Checker<'a> {
    path: &'a str,
    settings: WriteSettings,
    /// The failures so far.
    pub failures: Vec<FieldFailure>,
}

impl<'a> Checker<'a> {
    /// A checker for fields under `path` (e.g. `patch`).
    pub fn new(path: &'a str, settings: WriteSettings) -> Self {
        Self {
            path,
            settings,
            failures: Vec::new(),
        }
    }

    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.failures
            .push(FieldFailure::new(field_path(self.path, field), message));
    }

    /// Trimmed text of at most `max` characters; empty text becomes `None`.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> Option<String> {
        let value = value.trim();
        if value.chars().count() > max {
            self.fail(field, format!("must be at most {max} characters"));
            return None;
        }
        (!value.is_empty()).then(|| value.to_string())
    }

    /// A lower-cased, syntactically valid email address.
    pub fn email(&mut self, field: &str, value: &str) -> Option<String> {
        let value = self.text(field, value, MAX_EMAIL)?;
        if email_address::EmailAddress::parse_with_options(
            &value,
            email_address::Options::default().without_display_text(),
        )
        .is_err()
        {
            self.fail(field, "not a valid email address");
            return None;
        }
        Some(value.to_lowercase())
    }

    /// A phone number in E.164.
    pub fn phone(&mut self, field: &str, value: &str) -> Option<String> {
        let value = self.text(field, value, MAX_SHORT)?;
        match super::phone::to_e164(&value, self.settings.default_region) {
            Some(e164) => Some(e164),
            None => {
                let hint = if self.settings.default_region.is_none() && !value.starts_with('+') {
                    "not a phone number; write it with its country code, e.g. +4915123456789"
                } else {
                    "not a valid phone number"
                };
                self.fail(field, hint);
                None
            }
        }
    }

    /// An http(s) URL of at most [`MAX_LINK`] characters.
    pub fn url(&mut self, field: &str, value: &str) -> Option<String> {
        let value = self.text(field, value, MAX_LINK)?;
        match url::Url::parse(&value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(value)
            }
            _ => {
                self.fail(field, "not an http(s) URL");
                None
            }
        }
    }

    /// An IANA time zone name such as `Europe/Berlin`.
    pub fn timezone(&mut self, field: &str, value: &str) -> Option<String> {
        let value = self.text(field, value, MAX_SHORT)?;
        match value.parse::<Tz>() {
            Ok(tz) => Some(tz.name().to_string()),
            Err(_) => {
                self.fail(field, "not an IANA time zone such as Europe/Berlin");
                None
            }
        }
    }

    /// A list checked item by item (`field[i]`), at most [`MAX_LIST`] long, without
    /// duplicates.
    pub fn list(
        &mut self,
        field: &str,
        values: &[String],
        mut item: impl FnMut(&mut Self, &str, &str) -> Option<String>,
    ) -> Vec<String> {
        if values.len() > MAX_LIST {
            self.fail(field, format!("must have at most {MAX_LIST} items"));
            return Vec::new();
        }
        let mut out: Vec<String> = Vec::new();
        for (i, value) in values.iter().enumerate() {
            if let Some(v) = item(self, &format!("{field}[{i}]"), value)
                && !out.contains(&v)
            {
                out.push(v);
            }
        }
        out
    }
}

/// Splits a full name (seed 001's `name`) into first and last name: the last word is the
/// last name and everything before it the first name (`Henrik B. Larsen` → `Henrik B.` +
/// `Larsen`); a single word is a first name with no last name.
pub fn split_name(full: &str) -> (Option<String>, Option<String>) {
    let words: Vec<&str> = full.split_whitespace().collect();
    match words.as_slice() {
        [] => (None, None),
        [one] => (Some((*one).to_string()), None),
        [first @ .., last] => (Some(first.join(" ")), Some((*last).to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_names_on_the_last_word() {
        assert_eq!(
            split_name("Henrik B. Larsen"),
            (Some("Henrik B.".into()), Some("Larsen".into()))
        );
        assert_eq!(split_name("  Cher "), (Some("Cher".into()), None));
        assert_eq!(split_name("   "), (None, None));
        assert_eq!(
            split_name("Jan  Mueller"),
            (Some("Jan".into()), Some("Mueller".into()))
        );
    }

    #[test]
    fn collects_every_failure() {
        let mut check = Checker::new("patch", WriteSettings::default());
        assert_eq!(check.email("email", "not-an-email"), None);
        assert_eq!(check.phone("phone", "0151 2345"), None);
        assert_eq!(check.url("website", "ftp://example.com"), None);
        assert_eq!(check.timezone("timezone", "Mars/Olympus"), None);
        assert_eq!(check.text("role", &"x".repeat(76), MAX_ROLE), None);
        let fields: Vec<&str> = check.failures.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "patch.email",
                "patch.phone",
                "patch.website",
                "patch.timezone",
                "patch.role"
            ]
        );
    }

    #[test]
    fn normalises_what_it_accepts() {
        let mut check = Checker::new("patch", WriteSettings::default());
        assert_eq!(
            check
                .email("email", " Jan.Mueller@Acme-Customer.de ")
                .as_deref(),
            Some("jan.mueller@acme-customer.de")
        );
        assert_eq!(
            check.phone("phone", "+49 151 2345 6789").as_deref(),
            Some("+4915123456789")
        );
        assert_eq!(
            check.timezone("timezone", "America/New_York").as_deref(),
            Some("America/New_York")
        );
        assert_eq!(check.text("notes", "   ", MAX_TEXT), None);
        assert!(check.failures.is_empty());
        let mut de = Checker::new(
            "patch",
            WriteSettings {
                default_region: Some(phonenumber::country::Id::DE),
            },
        );
        assert_eq!(
            de.phone("phone", "0151 23456789").as_deref(),
            Some("+4915123456789")
        );
    }
}
