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

/// An instant, written as RFC 3339 in UTC with exactly milliseconds
/// (`2026-02-10T14:30:00.000Z`). Input accepts any RFC 3339 offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Milliseconds since the Unix epoch, UTC.
    pub fn millis(self) -> i64 {
        self.0
    }
}

/// The GraphQL `DateTime` scalar.
#[async_graphql::Scalar(name = "DateTime")]
impl async_graphql::ScalarType for Timestamp {
    fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
        match &value {
            async_graphql::Value::String(s) => DateTime::parse_from_rfc3339(s)
                .map(|dt| Timestamp(dt.timestamp_millis()))
                .map_err(|_| {
                    async_graphql::InputValueError::custom(format!(
                        "\"{s}\" is not an RFC 3339 date-time such as 2026-02-10T14:30:00.000Z"
                    ))
                }),
            _ => Err(async_graphql::InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::String(format_millis(self.0))
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
}
