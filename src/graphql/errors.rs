//! How a domain [`Error`] reaches a GraphQL client: its message, `extensions.code` and, for
//! validation, `extensions.failures` (`[{ field, message }]`, every failing field).
use async_graphql::{ErrorExtensions, Name, Value};

use crate::error::Error;

impl From<Error> for async_graphql::Error {
    fn from(err: Error) -> Self {
        match err {
            Error::Database(_) | Error::Internal(_) => {
                tracing::error!(error = %err.detail(), "request failed")
            }
            Error::Unavailable(_) => tracing::warn!(error = %err.detail(), "request failed"),
            _ => {}
        }
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", err.code().as_str());
            if let Error::Validation(failures) = &err {
                let list: Vec<Value> = failures
                    .iter()
                    .map(|f| {
                        let mut obj = async_graphql::indexmap::IndexMap::new();
                        obj.insert(Name::new("field"), Value::from(f.field.clone()));
                        obj.insert(Name::new("message"), Value::from(f.message.clone()));
                        Value::Object(obj)
                    })
                    .collect();
                ext.set("failures", list);
            }
        })
    }
}
