//! [`Change`]: what a patch says about one field, in the three states of seed 001's PATCH:
//! a field left out is kept, `null` clears it, a value replaces it.
use serde::{Deserialize, Deserializer};

/// One field of a patch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Change<T> {
    /// Left out: the stored value stays.
    #[default]
    Keep,
    /// Sent as `null`: the stored value is cleared.
    Clear,
    /// Sent with a value: it replaces the stored one (after validation).
    Set(T),
}

impl<T> Change<T> {
    /// Whether the field was left out.
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }

    /// The same change with its value converted.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Change<U> {
        match self {
            Change::Keep => Change::Keep,
            Change::Clear => Change::Clear,
            Change::Set(value) => Change::Set(f(value)),
        }
    }
}

/// From JSON: `null` clears, a value sets; a field left out is [`Change::Keep`] through
/// `#[serde(default)]` on the struct.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Change<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            None => Change::Clear,
            Some(value) => Change::Set(value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Patch {
        a: Change<String>,
        b: Change<String>,
        c: Change<String>,
    }

    #[test]
    fn absent_null_and_value_are_three_changes() {
        let patch: Patch = serde_json::from_str(r#"{ "b": null, "c": "x" }"#).expect("json");
        assert_eq!(patch.a, Change::Keep);
        assert_eq!(patch.b, Change::Clear);
        assert_eq!(patch.c, Change::Set("x".to_string()));
        assert_eq!(patch.c.map(|s| s.len()), Change::Set(1));
    }
}
