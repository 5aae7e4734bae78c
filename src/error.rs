//! The crate's one error type, with each variant's code (`Error::code`); `graphql/errors.rs`
//! turns it into a GraphQL error.
use crate::code::Code;
use std::sync::Arc;

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

/// The path of `field` under `parent` (`address` + `city` → `address.city`); an empty parent
/// is the top: `email` stays `email`.
pub fn field_path(parent: &str, field: &str) -> String {
    match (parent.is_empty(), field.is_empty()) {
        (true, _) => field.to_string(),
        (false, true) => parent.to_string(),
        (false, false) if field.starts_with('[') => format!("{parent}{field}"),
        (false, false) => format!("{parent}.{field}"),
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
    /// A vendor API refused the source's credentials (401, 403): the source is suspended
    /// from its schedule until it is updated.
    UpstreamRefused(String),
    /// A run spent its budget of waiting on a vendor's rate limit (429, 503).
    RateLimited(String),
    /// A run would mark more of a source's records deleted than it may.
    SuspiciousDeletion(String),
    /// A run stopped because the server is shutting down.
    Interrupted(String),
    /// A run of the source is already under way (here or in another process).
    SourceRunning(String),
    /// The database cannot be reached (down, restarting, or every connection busy past the
    /// acquire timeout): the request may succeed if retried.
    Unavailable(Arc<DbErr>),
    /// The database cancelled a statement that ran past the request's time limit
    /// (PostgreSQL's `statement_timeout`, SQLSTATE 57014).
    StatementTimeout,
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

    /// The same error with each failing field's path put under `parent`: the domain names
    /// fields relative to the object it was given (`email`), the caller knows where that
    /// object sat in its request (`input.patch` → `input.patch.email`).
    pub fn under(self, parent: &str) -> Self {
        match self {
            Error::Validation(failures) => Error::Validation(
                failures
                    .into_iter()
                    .map(|f| FieldFailure::new(field_path(parent, &f.field), f.message))
                    .collect(),
            ),
            other => other,
        }
    }

    /// The stable code clients switch on (`extensions.code`).
    pub fn code(&self) -> Code {
        match self {
            Error::Validation(_) => Code::ValidationFailed,
            Error::NotFound(_) => Code::NotFound,
            Error::PreconditionFailed(_) => Code::PreconditionFailed,
            Error::Conflict(_) => Code::Conflict,
            Error::BadPayload(_) => Code::BadPayload,
            Error::Upstream(_) | Error::UpstreamRefused(_) => Code::UpstreamFailed,
            Error::RateLimited(_) => Code::RateLimited,
            Error::SuspiciousDeletion(_) => Code::SuspiciousDeletion,
            Error::Interrupted(_) => Code::Interrupted,
            Error::SourceRunning(_) => Code::SourceRunning,
            Error::Unavailable(_) => Code::ServiceUnavailable,
            Error::StatementTimeout => Code::Timeout,
            Error::Database(_) | Error::Internal(_) => Code::InternalServerError,
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
            | Error::Upstream(msg)
            | Error::UpstreamRefused(msg)
            | Error::RateLimited(msg)
            | Error::SuspiciousDeletion(msg)
            | Error::Interrupted(msg)
            | Error::SourceRunning(msg) => msg.clone(),
            Error::Unavailable(_) => "The database is unavailable; retry in a moment".to_string(),
            Error::StatementTimeout => "The query took longer than the time limit".to_string(),
            Error::Database(_) | Error::Internal(_) => "Internal server error".to_string(),
        }
    }

    /// The full detail, for logs and the command line.
    pub fn detail(&self) -> String {
        match self {
            Error::Database(err) => format!("database error: {}", cause_chain(err.as_ref())),
            Error::Unavailable(err) => {
                format!("database unavailable: {}", cause_chain(err.as_ref()))
            }
            Error::Internal(msg) => format!("internal error: {msg}"),
            other => other.message(),
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            Error::Unavailable(Arc::new(err))
        } else if sqlstate(&err).as_deref() == Some("57014") {
            Error::StatementTimeout
        } else {
            Error::Database(Arc::new(err))
        }
    }
}

/// Whether `err` says the database cannot be reached rather than that a statement failed:
/// no connection could be had from the pool, the connection broke (I/O), or PostgreSQL
/// refuses connections (SQLSTATE class 08, and 57P01–57P03: shutting down or starting up).
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx) = runtime else {
        return matches!(err, DbErr::Conn(_));
    };
    match sqlx.as_ref() {
        Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
        Sqlx::Tls(_) => true,
        Sqlx::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => matches!(err, DbErr::Conn(_)),
    }
}

/// The SQLSTATE of a database's own error.
fn sqlstate(err: &DbErr) -> Option<String> {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx)) => {
            match sqlx.as_ref() {
                sea_orm::sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `err` and its sources, joined by `: `, for logs.
fn cause_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

impl From<Error> for anyhow::Error {
    fn from(err: Error) -> Self {
        anyhow::anyhow!(err.detail())
    }
}
