//! What a source is, checked: the fields a tenant sets through `createSource`/`updateSource`,
//! the CLI or the sources file, and the one function that validates them all at once.
//!
//! Durations are written in humantime form (`"15m"`, `"1d"`, `"90s"`), the same in TOML and
//! GraphQL.
use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Error, FieldFailure, Result};
use crate::write_back::config::{WriteBack, WriteBackDraft};

use super::Format;

/// Default time between scheduled runs.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Default time between FULL runs (deletion detection for formats read incrementally).
pub const DEFAULT_FULL_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
/// Default overlap of an incremental run with the last one, before the watermark.
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(5 * 60);
/// The shortest schedule accepted (`interval`, `fullEvery`).
pub const MIN_INTERVAL: Duration = Duration::from_secs(30);
/// The longest duration accepted (`interval`, `fullEvery`, `overlap`).
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 60 * 60);
/// Longest name; names are also metric labels and CLI arguments.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest bearer token accepted.
pub const MAX_TOKEN_CHARS: usize = 4096;

/// A source as given, before validation: every field as the caller wrote it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceDraft {
    pub name: String,
    /// A [`Format`] name, e.g. `client-contacts`.
    pub format: String,
    pub url: String,
    pub accounts: Vec<String>,
    pub businesses: Vec<String>,
    /// (name, value), in the order given; a name twice is a failure.
    pub headers: Vec<(String, String)>,
    /// Humantime, e.g. `15m`; `None` for [`DEFAULT_INTERVAL`].
    pub interval: Option<String>,
    /// Humantime; `None` for [`DEFAULT_FULL_EVERY`].
    pub full_every: Option<String>,
    /// Humantime; `None` for [`DEFAULT_OVERLAP`].
    pub overlap: Option<String>,
    pub max_requests_per_minute: Option<i64>,
    /// `None` for enabled.
    pub enabled: Option<bool>,
    /// How changes are written back; `None`: the source is read-only.
    pub write: Option<WriteBackDraft>,
}

/// A source's settings, valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSettings {
    pub name: String,
    pub format: Format,
    pub url: String,
    pub accounts: Vec<String>,
    pub businesses: Vec<String>,
    pub headers: BTreeMap<String, String>,
    pub interval: Duration,
    pub full_every: Duration,
    pub overlap: Duration,
    pub max_requests_per_minute: Option<u32>,
    pub enabled: bool,
    /// How changes are written back; `None`: the source is read-only.
    pub write: Option<WriteBack>,
}

impl SourceSettings {
    /// The same settings as a draft (durations in humantime), for a patch to change.
    pub fn to_draft(&self) -> SourceDraft {
        SourceDraft {
            name: self.name.clone(),
            format: self.format.name().to_string(),
            url: self.url.clone(),
            accounts: self.accounts.clone(),
            businesses: self.businesses.clone(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            interval: Some(format_duration(self.interval)),
            full_every: Some(format_duration(self.full_every)),
            overlap: Some(format_duration(self.overlap)),
            max_requests_per_minute: self.max_requests_per_minute.map(i64::from),
            enabled: Some(self.enabled),
            write: self.write.as_ref().map(WriteBack::to_draft),
        }
    }
}

/// `d` in humantime form (`15m`, `1day`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// Parses a format name (`client-contacts`).
pub fn parse_format(name: &str) -> Option<Format> {
    [
        Format::AccountContacts,
        Format::BusinessContacts,
        Format::ClientContacts,
        Format::PipelineContacts,
    ]
    .into_iter()
    .find(|f| f.name() == name)
}

fn duration(
    failures: &mut Vec<FieldFailure>,
    field: &str,
    text: Option<&str>,
    default: Duration,
    min: Duration,
) -> Duration {
    let Some(text) = text else {
        return default;
    };
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d < min || d > MAX_DURATION => {
            failures.push(FieldFailure::new(
                field,
                format!(
                    "must be {} to {}",
                    format_duration(min),
                    format_duration(MAX_DURATION)
                ),
            ));
            default
        }
        Ok(d) => d,
        Err(err) => {
            failures.push(FieldFailure::new(
                field,
                format!("not a duration such as \"15m\" or \"1d\": {err}"),
            ));
            default
        }
    }
}

impl SourceDraft {
    /// Checks every field and returns the valid settings, or `VALIDATION_FAILED` naming every
    /// failing field (camelCase, as in GraphQL: `fullEvery`, `headers[0].name`).
    pub fn validate(&self) -> Result<SourceSettings> {
        let mut failures = Vec::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            failures.push(FieldFailure::new(
                "name",
                format!("must be 1 to {MAX_NAME_CHARS} characters"),
            ));
        } else if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            failures.push(FieldFailure::new(
                "name",
                "may hold only letters, digits, '-', '_' and '.'",
            ));
        }
        let format = parse_format(&self.format);
        if format.is_none() {
            failures.push(FieldFailure::new(
                "format",
                "unknown format; one of account-contacts, business-contacts, client-contacts, \
                 pipeline-contacts",
            ));
        }
        let url = self.url.trim().to_string();
        let filled = url.replace("{accountId}", "a").replace("{businessId}", "b");
        match url::Url::parse(&filled) {
            Ok(parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
                failures.push(FieldFailure::new(
                    "url",
                    "must not hold credentials: set the bearer token with `token`",
                ));
            }
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {}
            _ => failures.push(FieldFailure::new("url", "must be an http or https URL")),
        }
        if url.contains("{accountId}") && self.accounts.is_empty() {
            failures.push(FieldFailure::new(
                "accounts",
                "the url has {accountId}: list the accounts to fetch",
            ));
        }
        if url.contains("{businessId}") && self.businesses.is_empty() {
            failures.push(FieldFailure::new(
                "businesses",
                "the url has {businessId}: list the businesses to fetch",
            ));
        }
        if format == Some(Format::AccountContacts) && !url.contains("{accountId}") {
            failures.push(FieldFailure::new(
                "url",
                "account-contacts needs {accountId} in its url",
            ));
        }
        for (i, value) in self.accounts.iter().enumerate() {
            if value.trim().is_empty() {
                failures.push(FieldFailure::new(format!("accounts[{i}]"), "is empty"));
            }
        }
        for (i, value) in self.businesses.iter().enumerate() {
            if value.trim().is_empty() {
                failures.push(FieldFailure::new(format!("businesses[{i}]"), "is empty"));
            }
        }
        let mut header_names = std::collections::HashSet::new();
        for (i, (header, value)) in self.headers.iter().enumerate() {
            let field = format!("headers[{i}]");
            if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                failures.push(FieldFailure::new(
                    format!("{field}.name"),
                    "not a valid header name",
                ));
            } else if ["authorization", "proxy-authorization", "cookie"]
                .iter()
                .any(|reserved| header.eq_ignore_ascii_case(reserved))
            {
                failures.push(FieldFailure::new(
                    format!("{field}.name"),
                    "set the bearer token with `token`, which is stored encrypted",
                ));
            } else if !header_names.insert(header.to_ascii_lowercase()) {
                failures.push(FieldFailure::new(format!("{field}.name"), "given twice"));
            }
            if reqwest::header::HeaderValue::from_str(value).is_err() {
                failures.push(FieldFailure::new(
                    format!("{field}.value"),
                    "not a valid header value",
                ));
            }
        }
        let interval = duration(
            &mut failures,
            "interval",
            self.interval.as_deref(),
            DEFAULT_INTERVAL,
            MIN_INTERVAL,
        );
        let full_every = duration(
            &mut failures,
            "fullEvery",
            self.full_every.as_deref(),
            DEFAULT_FULL_EVERY,
            MIN_INTERVAL,
        );
        let overlap = duration(
            &mut failures,
            "overlap",
            self.overlap.as_deref(),
            DEFAULT_OVERLAP,
            Duration::ZERO,
        );
        let max_requests_per_minute = match self.max_requests_per_minute {
            None => None,
            Some(n) => match u32::try_from(n) {
                Ok(n) if (1..=60_000).contains(&n) => Some(n),
                _ => {
                    failures.push(FieldFailure::new(
                        "maxRequestsPerMinute",
                        "must be 1 to 60000",
                    ));
                    None
                }
            },
        };
        let write = match (format, &self.write) {
            (Some(format), Some(draft)) => Some(draft.validate(format, &url, &mut failures)),
            _ => None,
        };
        match format {
            Some(format) if failures.is_empty() => Ok(SourceSettings {
                name,
                format,
                url,
                accounts: self.accounts.iter().map(|a| a.trim().to_string()).collect(),
                businesses: self
                    .businesses
                    .iter()
                    .map(|b| b.trim().to_string())
                    .collect(),
                headers: self.headers.iter().cloned().collect(),
                interval,
                full_every,
                overlap,
                max_requests_per_minute,
                enabled: self.enabled.unwrap_or(true),
                write,
            }),
            _ => Err(Error::Validation(failures)),
        }
    }
}

/// Checks a bearer token: not blank, at most [`MAX_TOKEN_CHARS`], a valid header value.
pub fn check_token(token: &str) -> Result<()> {
    if token.trim().is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        return Err(Error::invalid(
            "token",
            format!("must be 1 to {MAX_TOKEN_CHARS} characters"),
        ));
    }
    if reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
        return Err(Error::invalid("token", "not a valid header value"));
    }
    Ok(())
}

/// Tokens shorter than this show no last four characters (they would give too much away).
pub const MIN_CHARS_FOR_LAST4: usize = 16;

/// The last four characters of a token, to tell tokens apart without showing them; `None`
/// for a token shorter than [`MIN_CHARS_FOR_LAST4`].
pub fn last4(token: &str) -> Option<String> {
    let chars: Vec<char> = token.chars().collect();
    (chars.len() >= MIN_CHARS_FOR_LAST4).then(|| chars[chars.len() - 4..].iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> SourceDraft {
        SourceDraft {
            name: "crm".into(),
            format: "client-contacts".into(),
            url: "https://crm.example.com/api/contacts".into(),
            ..Default::default()
        }
    }

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::Validation(failures) => failures.into_iter().map(|f| f.field).collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let settings = draft().validate().expect("valid");
        assert_eq!(settings.format, Format::ClientContacts);
        assert_eq!(settings.interval, DEFAULT_INTERVAL);
        assert_eq!(settings.full_every, DEFAULT_FULL_EVERY);
        assert_eq!(settings.overlap, DEFAULT_OVERLAP);
        assert!(settings.enabled);
        assert_eq!(
            settings.to_draft().validate().expect("round trip"),
            settings
        );
    }

    #[test]
    fn durations_read_humantime() {
        let mut d = draft();
        d.interval = Some("90s".into());
        d.full_every = Some("1d".into());
        d.overlap = Some("0s".into());
        let settings = d.validate().expect("valid");
        assert_eq!(settings.interval, Duration::from_secs(90));
        assert_eq!(settings.full_every, Duration::from_secs(86_400));
        assert_eq!(settings.overlap, Duration::ZERO);
    }

    #[test]
    fn every_failing_field_is_named() {
        let d = SourceDraft {
            name: "bad name".into(),
            format: "csv".into(),
            url: "ftp://x/{accountId}".into(),
            interval: Some("10s".into()),
            full_every: Some("soon".into()),
            max_requests_per_minute: Some(0),
            headers: vec![("Authorization".into(), "Bearer x".into())],
            ..Default::default()
        };
        assert_eq!(
            fields(d.validate().expect_err("invalid")),
            [
                "name",
                "format",
                "url",
                "accounts",
                "headers[0].name",
                "interval",
                "fullEvery",
                "maxRequestsPerMinute"
            ]
        );
    }

    #[test]
    fn credentials_stay_out_of_urls_and_headers_and_durations_are_bounded() {
        let mut d = draft();
        d.url = "https://user:secret@crm.example.com/api".into();
        d.headers = vec![
            ("Cookie".into(), "s=1".into()),
            ("X-Api-Version".into(), "2".into()),
        ];
        d.interval = Some("400d".into());
        assert_eq!(
            fields(d.validate().expect_err("invalid")),
            ["url", "headers[0].name", "interval"]
        );
    }

    #[test]
    fn list_placeholders_need_their_lists() {
        let mut d = draft();
        d.format = "account-contacts".into();
        assert_eq!(fields(d.validate().expect_err("no placeholder")), ["url"]);
        d.url = "http://127.0.0.1:9/api/accounts/{accountId}/contacts".into();
        assert_eq!(fields(d.validate().expect_err("no accounts")), ["accounts"]);
        d.accounts = vec!["acc-1".into()];
        assert!(d.validate().is_ok());
    }

    #[test]
    fn tokens_are_checked_and_shown_by_their_last_four() {
        assert!(check_token("").is_err());
        assert!(check_token("line\nbreak").is_err());
        assert!(check_token("sk-live-abcd1234").is_ok());
        assert_eq!(last4("sk-live-abcd1234").as_deref(), Some("1234"));
        assert_eq!(last4("short-token"), None);
    }
}
