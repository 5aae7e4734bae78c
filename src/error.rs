//! The crate's one error type, and its mapping to GraphQL errors (in one place:
//! `From<Error> for async_graphql::Error`).
use std::sync::Arc;

use async_graphql::ErrorExtensions;
use sea_orm::DbErr;
use serde::Serialize;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One input field that failed validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldFailure {
    /// Path of the field in the input, e.g. `filter.search` or `first`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldFailure {
    /// A failure of `field` with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything that can go wrong while serving a request.
///
/// It deliberately does not implement `Display`: that keeps async-graphql's blanket
/// `From<T: Display>` conversion away, so every `?` in a resolver goes through the mapping
/// below and keeps its `extensions.code`.
#[derive(Clone, Debug)]
pub enum Error {
    /// The input is invalid; every failing field is listed.
    Validation(Vec<FieldFailure>),
    /// The thing asked for does not exist in the caller's tenant.
    NotFound(String),
    /// A conditional write found the row changed since the client read it.
    PreconditionFailed(String),
    /// The write would break a rule about related rows (e.g. deleting a non-empty account).
    Conflict(String),
    /// A vendor payload is not valid JSON or not of its format.
    BadPayload(String),
    /// A vendor API refused or failed a sync.
    Upstream(String),
    /// The database failed.
    Database(Arc<DbErr>),
    /// Anything else that is the server's fault.
    Internal(String),
}

impl Error {
    /// A validation error of one field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldFailure::new(field, message)])
    }

    /// The stable code clients switch on (`extensions.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Validation(_) => "VALIDATION_FAILED",
            Error::NotFound(_) => "NOT_FOUND",
            Error::PreconditionFailed(_) => "PRECONDITION_FAILED",
            Error::Conflict(_) => "CONFLICT",
            Error::BadPayload(_) => "BAD_PAYLOAD",
            Error::Upstream(_) => "UPSTREAM_FAILED",
            Error::Database(_) | Error::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// A message for people: what went wrong, without internals.
    pub fn message(&self) -> String {
        match self {
            Error::Validation(failures) => {
                let fields: Vec<String> = failures
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect();
                format!("Invalid input: {}", fields.join("; "))
            }
            Error::NotFound(what) => format!("{what} not found"),
            Error::PreconditionFailed(msg)
            | Error::Conflict(msg)
            | Error::BadPayload(msg)
            | Error::Upstream(msg) => msg.clone(),
            Error::Database(_) | Error::Internal(_) => "Internal server error".to_string(),
        }
    }

    /// The full detail, for logs and the command line.
    pub fn detail(&self) -> String {
        match self {
            Error::Database(err) => format!("database error: {err}"),
            Error::Internal(msg) => format!("internal error: {msg}"),
            other => other.message(),
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        Error::Database(Arc::new(err))
    }
}

impl From<Error> for async_graphql::Error {
    fn from(err: Error) -> Self {
        if matches!(err, Error::Database(_) | Error::Internal(_)) {
            tracing::error!(error = %err.detail(), "request failed");
        }
        async_graphql::Error::new(err.message()).extend_with(|_, ext| {
            ext.set("code", err.code());
            if let Error::Validation(failures) = &err {
                let list: Vec<async_graphql::Value> = failures
                    .iter()
                    .map(|f| {
                        let mut obj = async_graphql::indexmap::IndexMap::new();
                        obj.insert(
                            async_graphql::Name::new("field"),
                            async_graphql::Value::from(f.field.clone()),
                        );
                        obj.insert(
                            async_graphql::Name::new("message"),
                            async_graphql::Value::from(f.message.clone()),
                        );
                        async_graphql::Value::Object(obj)
                    })
                    .collect();
                ext.set("failures", list);
            }
        })
    }
}

impl From<Error> for anyhow::Error {
    fn from(err: Error) -> Self {
        anyhow::anyhow!(err.detail())
    }
}
