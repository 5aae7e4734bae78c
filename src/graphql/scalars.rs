//! Scalars: how domain values are written and read as GraphQL values.
use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

use crate::time::{Timestamp, format_millis};

/// The GraphQL `DateTime` scalar.
#[Scalar(name = "DateTime")]
impl ScalarType for Timestamp {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => Timestamp::parse(s).ok_or_else(|| {
                InputValueError::custom(format!(
                    "\"{s}\" is not an RFC 3339 date-time such as 2026-02-10T14:30:00.000Z"
                ))
            }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    /// Checked during validation, so that a malformed date-time (in the query or in
    /// `variables`) is a request error like any other wrong type.
    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::String(s) if Timestamp::parse(s).is_some())
    }

    fn to_value(&self) -> Value {
        Value::String(format_millis(self.millis()))
    }
}
