//! Timestamps: stored as UTC milliseconds since the epoch, shown as RFC 3339 with exactly
//! three fractional digits and a `Z` (`2026-02-10T14:30:00.000Z`), so that they compare
//! correctly as strings.
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Now, in UTC milliseconds.
pub fn now_millis() -> i64 {
    Utc::now().timestamp_millis()
}

/// The UTC date-time of `millis`.
pub fn from_millis(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// `millis` in the API's text form.
pub fn format_millis(millis: i64) -> String {
    from_millis(millis).to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Epoch milliseconds of an RFC 3339 / ISO 8601 date-time (any offset), e.g. the vendors'
/// `2023-11-07T05:31:56Z`.
pub fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|dt| dt.timestamp_millis())
}

/// The `updated_at` of a row changed now whose previous one was `previous`: now, or one
/// millisecond later when the clock has not moved past it, so that every change moves it
/// forward (clients compare it for `expectedUpdatedAt`, syncs as a watermark).
pub fn next_updated_at(previous: i64) -> i64 {
    now_millis().max(previous + 1)
}

/// An instant, written as RFC 3339 in UTC with exactly milliseconds
/// (`2026-02-10T14:30:00.000Z`). Input accepts any RFC 3339 offset and any number of
/// fractional digits; what lies below the millisecond is kept as whether there is any, so
/// that a range bound compares exactly against stored (millisecond) instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    /// Milliseconds since the Unix epoch, UTC, rounded down.
    millis: i64,
    /// Whether the instant lies strictly after `millis` (it had digits below the ms).
    past_millis: bool,
}

impl Timestamp {
    /// The instant `millis` milliseconds after the Unix epoch.
    pub fn from_millis(millis: i64) -> Self {
        Self {
            millis,
            past_millis: false,
        }
    }

    /// Milliseconds since the Unix epoch, UTC, rounded down (what is stored).
    pub fn millis(self) -> i64 {
        self.millis
    }

    /// Milliseconds since the Unix epoch, rounded up: the first stored instant at or after
    /// this one.
    pub fn ceil_millis(self) -> i64 {
        self.millis + i64::from(self.past_millis)
    }

    /// Parses RFC 3339 with any offset and fractional digits.
    pub fn parse(text: &str) -> Option<Self> {
        let instant = DateTime::parse_from_rfc3339(text.trim()).ok()?;
        Some(Self {
            millis: instant.timestamp_millis(),
            past_millis: instant.timestamp_subsec_nanos() % 1_000_000 != 0,
        })
    }
}

/// From JSON: an RFC 3339 string, as [`Timestamp::parse`] reads it.
impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "\"{text}\" is not an RFC 3339 date-time such as 2026-02-10T14:30:00.000Z"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_exact_milliseconds_and_z() {
        assert_eq!(format_millis(1_770_733_800_000), "2026-02-10T14:30:00.000Z");
        assert_eq!(format_millis(1_770_733_800_007), "2026-02-10T14:30:00.007Z");
    }

    #[test]
    fn digits_below_the_millisecond_round_each_way() {
        let exact = Timestamp::parse("2026-02-10T14:30:00.007Z").unwrap();
        assert_eq!(
            (exact.millis(), exact.ceil_millis()),
            (1_770_733_800_007, 1_770_733_800_007)
        );
        let finer = Timestamp::parse("2026-02-10T14:30:00.0070001Z").unwrap();
        assert_eq!(
            (finer.millis(), finer.ceil_millis()),
            (1_770_733_800_007, 1_770_733_800_008)
        );
        let before_epoch = Timestamp::parse("1969-12-31T23:59:59.9995Z").unwrap();
        assert_eq!((before_epoch.millis(), before_epoch.ceil_millis()), (-1, 0));
    }
}
