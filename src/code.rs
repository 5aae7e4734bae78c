//! `Code`: every `extensions.code` a client can receive, in one list. Errors of every layer
//! (domain, GraphQL, HTTP, authentication) name their code through it; `docs/api.md` lists
//! the same codes (a test keeps the two equal).

/// Defines [`Code`], its [`Code::ALL`] list and its text from one table.
macro_rules! codes {
    ($( $(#[doc = $doc:expr])+ $variant:ident = $text:literal, )+) => {
        /// A stable error code (`extensions.code`); clients switch on its text.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl Code {
            /// Every code.
            pub const ALL: &'static [Code] = &[$(Code::$variant),+];

            /// The code as clients see it, e.g. `VALIDATION_FAILED`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)+
                }
            }
        }
    };
}

codes! {
    /// Invalid input; `extensions.failures` lists every failing field.
    ValidationFailed = "VALIDATION_FAILED",
    /// A write to an id not in the caller's tenant.
    NotFound = "NOT_FOUND",
    /// `expectedUpdatedAt` is not the stored `updatedAt` (seed 003's 412).
    PreconditionFailed = "PRECONDITION_FAILED",
    /// The change conflicts with other rows (e.g. an account that still has contacts).
    Conflict = "CONFLICT",
    /// A vendor sent a payload that is not of its format.
    BadPayload = "BAD_PAYLOAD",
    /// A vendor API failed or refused the request.
    UpstreamFailed = "UPSTREAM_FAILED",
    /// The source is being synced by another run.
    SourceRunning = "SOURCE_RUNNING",
    /// A sync run spent its budget of waiting on the vendor's rate limit; the next run
    /// resumes at the page it stopped at.
    RateLimited = "RATE_LIMITED",
    /// A FULL run would mark more than the allowed share of a source's records deleted;
    /// nothing was deleted (start it with `allowMassDeletion: true` to go ahead).
    SuspiciousDeletion = "SUSPICIOUS_DELETION",
    /// A sync run stopped because its server shut down (or died); the next run resumes at
    /// the page it stopped at.
    Interrupted = "INTERRUPTED",
    /// The database cannot be reached; retry.
    ServiceUnavailable = "SERVICE_UNAVAILABLE",
    /// The request or one of its statements ran past its time limit.
    Timeout = "TIMEOUT",
    /// The server's fault; the cause is logged, not sent.
    InternalServerError = "INTERNAL_SERVER_ERROR",
    /// No API key, or not a valid one.
    Unauthenticated = "UNAUTHENTICATED",
    /// The API key lacks the scope the operation needs.
    Forbidden = "FORBIDDEN",
    /// The document does not parse.
    GraphqlParseFailed = "GRAPHQL_PARSE_FAILED",
    /// The document does not validate against the schema, or its variables do not.
    GraphqlValidationFailed = "GRAPHQL_VALIDATION_FAILED",
    /// The query text is longer than allowed.
    QueryTooLarge = "QUERY_TOO_LARGE",
    /// The selection or an input value nests deeper than allowed.
    QueryTooDeep = "QUERY_TOO_DEEP",
    /// The query costs more than allowed.
    QueryTooComplex = "QUERY_TOO_COMPLEX",
    /// The query has more aliases than allowed.
    TooManyAliases = "TOO_MANY_ALIASES",
    /// A field has more directives than allowed.
    TooManyDirectives = "TOO_MANY_DIRECTIVES",
    /// A batch has more operations than allowed.
    BatchTooLarge = "BATCH_TOO_LARGE",
    /// More subscriptions at once than allowed, per API key or per connection.
    TooManySubscriptions = "TOO_MANY_SUBSCRIPTIONS",
    /// The HTTP request is not a GraphQL request.
    BadRequest = "BAD_REQUEST",
    /// The body's media type is not one GraphQL over HTTP accepts.
    UnsupportedMediaType = "UNSUPPORTED_MEDIA_TYPE",
    /// An HTTP method other than GET or POST.
    MethodNotAllowed = "METHOD_NOT_ALLOWED",
    /// The client accepts no media type the server can answer in.
    NotAcceptable = "NOT_ACCEPTABLE",
    /// The body is larger than allowed (HTTP 413).
    RequestTooLarge = "REQUEST_TOO_LARGE",
    /// The headers are larger than allowed (HTTP 431).
    RequestHeadersTooLarge = "REQUEST_HEADERS_TOO_LARGE",
    /// The body did not arrive in time (HTTP 408).
    RequestTimeout = "REQUEST_TIMEOUT",
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codes `docs/api.md` lists in its table of error codes.
    fn documented() -> Vec<String> {
        let docs = include_str!("../docs/api.md");
        let section = docs
            .split("## Errors and their codes")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap_or_default();
        let mut codes: Vec<String> = section
            .lines()
            .filter(|line| line.starts_with("| `"))
            .filter_map(|line| line.split('|').nth(1))
            .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_string))
            .collect();
        codes.sort();
        codes
    }

    #[test]
    fn the_docs_list_every_code_and_no_other() {
        let mut all: Vec<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
        all.sort();
        assert_eq!(documented(), all);
    }

    #[test]
    fn codes_are_distinct() {
        let mut texts: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), Code::ALL.len());
    }
}
