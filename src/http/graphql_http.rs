//! The GraphQL-over-HTTP protocol (the GraphQL Foundation's spec, checked in CI by the
//! `graphql-http` audit): reading a request from a GET URL or a POST body, choosing the
//! response's media type from `Accept`, and the status code each kind of failure gets.
//!
//! | failure | `application/graphql-response+json` | `application/json` |
//! |---|---|---|
//! | body not JSON, bad parameters | 400 | 400 |
//! | document does not parse or validate, bad variables | 400, no `data` | 200, no `data` |
//! | errors while executing (`data` present) | 200 | 200 |
//! | mutation over GET | 405 | 405 |
//! | POST without a JSON content type | 415 | 415 |
//! | `Accept` allows neither media type | 406 | 406 |
use crate::code::Code;
use crate::graphql::limits::selected_operation;
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Variables};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// The media type of a GraphQL response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MediaType {
    /// `application/graphql-response+json`: status codes tell request errors apart.
    GraphQLResponseJson,
    /// `application/json`: the legacy type; well-formed requests always get 200.
    Json,
}

impl MediaType {
    /// The `Content-Type` header value.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::GraphQLResponseJson => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        }
    }
}

/// A request the server refuses before executing anything, with its status and message.
#[derive(Debug)]
pub struct Rejection {
    /// The HTTP status.
    pub status: StatusCode,
    /// What was wrong, for the client.
    pub message: String,
}

impl Rejection {
    fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// The rejection as a response of `media` type. Codes: `BAD_REQUEST`,
    /// `METHOD_NOT_ALLOWED`, `UNSUPPORTED_MEDIA_TYPE`, `NOT_ACCEPTABLE`.
    pub fn into_response(self, media: MediaType) -> Response {
        let code = match self.status {
            StatusCode::METHOD_NOT_ALLOWED => Code::MethodNotAllowed.as_str(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Code::UnsupportedMediaType.as_str(),
            StatusCode::NOT_ACCEPTABLE => Code::NotAcceptable.as_str(),
            _ => Code::BadRequest.as_str(),
        };
        let body =
            json!({ "errors": [{ "message": self.message, "extensions": { "code": code } }] });
        let mut response = json_response(self.status, media, body.to_string());
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }
}

/// The response media type the `Accept` header asks for: the most preferred of the two
/// GraphQL types (`*/*`, `application/*` and no header at all mean `application/json`).
pub fn negotiate(headers: &HeaderMap) -> Result<MediaType, Rejection> {
    let Some(accept) = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
    else {
        return Ok(MediaType::Json);
    };
    let mut best: Option<(f32, MediaType)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let media = match essence.as_str() {
            "application/graphql-response+json" => MediaType::GraphQLResponseJson,
            "application/json" | "application/*" | "*/*" => MediaType::Json,
            _ => continue,
        };
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, media));
        }
    }
    best.map(|(_, media)| media).ok_or_else(|| Rejection {
        status: StatusCode::NOT_ACCEPTABLE,
        message: "Accept allows neither application/graphql-response+json nor application/json"
            .to_string(),
    })
}

/// Reads a POST body: `Content-Type` must be `application/json` (UTF-8, the default), the
/// body one request object or a batch (an array of them).
pub fn read_post(headers: &HeaderMap, body: &[u8]) -> Result<BatchRequest, Rejection> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let charset_ok = parts
        .filter_map(|p| p.trim().strip_prefix("charset="))
        .all(|c| c.trim_matches('"').eq_ignore_ascii_case("utf-8"));
    if essence != "application/json" || !charset_ok {
        return Err(Rejection {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "POST /graphql takes a body of Content-Type application/json (UTF-8)"
                .to_string(),
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Rejection::bad_request("the request has no body"));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| Rejection::bad_request(format!("the body is not valid JSON: {err}")))?;
    match value {
        Value::Array(items) if items.is_empty() => Err(Rejection::bad_request(
            "a batch needs at least one operation",
        )),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => request_from_map(map, false),
                _ => Err(Rejection::bad_request(
                    "each operation of a batch must be a JSON object",
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(BatchRequest::Batch),
        Value::Object(map) => request_from_map(map, false).map(BatchRequest::Single),
        _ => Err(Rejection::bad_request(
            "the body must be a JSON object (or an array of them)",
        )),
    }
}

/// Reads a GET request's URL parameters (`query`, `operationName`, and `variables` and
/// `extensions` as JSON text). A mutation is refused with 405: GET must not change anything.
pub fn read_get(raw_query: Option<&str>) -> Result<async_graphql::Request, Rejection> {
    let mut map = Map::new();
    for (key, value) in url::form_urlencoded::parse(raw_query.unwrap_or_default().as_bytes()) {
        map.insert(key.into_owned(), Value::String(value.into_owned()));
    }
    let request = request_from_map(map, true)?;
    if operation_type(&request) == Some(OperationType::Mutation) {
        return Err(Rejection {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "mutations are only accepted over POST".to_string(),
        });
    }
    Ok(request)
}

/// The type of the operation `request` would run (the one named, or the document's only
/// one, named or not), when its document parses.
fn operation_type(request: &async_graphql::Request) -> Option<OperationType> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    selected_operation(&document, request.operation_name.as_deref()).map(|op| op.ty)
}

/// One request from its parameters. `from_url`: `variables` and `extensions` arrive as JSON
/// text.
fn request_from_map(
    mut map: Map<String, Value>,
    from_url: bool,
) -> Result<async_graphql::Request, Rejection> {
    let query = match map.remove("query") {
        Some(Value::String(query)) => query,
        None | Some(Value::Null) => {
            return Err(Rejection::bad_request("the `query` parameter is missing"));
        }
        Some(_) => return Err(Rejection::bad_request("`query` must be a string")),
    };
    let operation_name = match map.remove("operationName") {
        Some(Value::String(name)) if !(from_url && name.is_empty()) => Some(name),
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(_) => return Err(Rejection::bad_request("`operationName` must be a string")),
    };
    let variables = object_parameter(map.remove("variables"), "variables", from_url)?;
    let extensions = object_parameter(map.remove("extensions"), "extensions", from_url)?;
    let mut request = async_graphql::Request::new(query);
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = variables {
        request = request.variables(Variables::from_json(Value::Object(variables)));
    }
    if let Some(extensions) = extensions {
        for (key, value) in extensions {
            let value = async_graphql::Value::from_json(value)
                .map_err(|err| Rejection::bad_request(format!("`extensions`: {err}")))?;
            request.extensions.insert(key, value);
        }
    }
    Ok(request)
}

/// A parameter that must be a JSON object (or absent or null); in a URL, JSON text of one.
fn object_parameter(
    value: Option<Value>,
    name: &str,
    from_url: bool,
) -> Result<Option<Map<String, Value>>, Rejection> {
    let value = match value {
        Some(Value::String(text)) if from_url => {
            if text.trim().is_empty() {
                return Ok(None);
            }
            serde_json::from_str(&text).map_err(|err| {
                Rejection::bad_request(format!("`{name}` is not valid JSON: {err}"))
            })?
        }
        Some(value) => value,
        None => return Ok(None),
    };
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => Ok(Some(map)),
        _ => Err(Rejection::bad_request(format!(
            "`{name}` must be a JSON object"
        ))),
    }
}

/// How a request ended, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Executed without errors.
    Ok,
    /// Executed; some fields failed (`errors` beside `data`).
    FieldErrors,
    /// Refused before execution: not parsed, not valid, bad variables, bad HTTP request.
    RequestError,
    /// Ran out of time.
    Timeout,
    /// The database was unavailable (`SERVICE_UNAVAILABLE`): HTTP 503 with `Retry-After`.
    Unavailable,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::FieldErrors => "field_errors",
            Self::RequestError => "request_error",
            Self::Timeout => "timeout",
            Self::Unavailable => "unavailable",
        }
    }

    /// Classifies an executed response: errors without `data` and outside any field are
    /// request errors (parse, validation, variables), the rest field errors.
    pub fn of(response: &async_graphql::Response) -> Self {
        if response.errors.is_empty() {
            Self::Ok
        } else if response
            .errors
            .iter()
            .any(|e| error_code(e) == Some(Code::ServiceUnavailable.as_str()))
        {
            Self::Unavailable
        } else if response.data == async_graphql::Value::Null
            && response.errors.iter().all(|e| e.path.is_empty())
        {
            Self::RequestError
        } else {
            Self::FieldErrors
        }
    }
}

/// The body of a request error: no `data` entry at all.
#[derive(serde::Serialize)]
struct RequestErrorBody<'a> {
    errors: &'a [async_graphql::ServerError],
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    extensions: &'a std::collections::BTreeMap<String, async_graphql::Value>,
}

/// The HTTP response for one executed operation.
pub fn single_response(
    media: MediaType,
    outcome: Outcome,
    response: async_graphql::Response,
) -> Response {
    let mut http = if matches!(outcome, Outcome::RequestError | Outcome::Timeout) {
        let status = match (media, outcome) {
            (MediaType::Json, _) => StatusCode::OK,
            (MediaType::GraphQLResponseJson, Outcome::Timeout) => StatusCode::SERVICE_UNAVAILABLE,
            (MediaType::GraphQLResponseJson, _) => StatusCode::BAD_REQUEST,
        };
        let body = RequestErrorBody {
            errors: &response.errors,
            extensions: &response.extensions,
        };
        json_response(status, media, encode(&body))
    } else {
        json_response(StatusCode::OK, media, encode(&response))
    };
    if outcome == Outcome::Unavailable {
        *http.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        http.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECS),
        );
    }
    http.headers_mut().extend(response.http_headers);
    http
}

/// What `Retry-After` says when the database is unavailable, in seconds.
pub const RETRY_AFTER_SECS: &str = "1";

/// The `extensions.code` of an error, if it has one.
pub fn error_code(error: &async_graphql::ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

/// The HTTP response for a batch: 200 with one result per operation.
pub fn batch_response(media: MediaType, response: BatchResponse) -> Response {
    json_response(StatusCode::OK, media, encode(&response))
}

/// JSON text, fields in the order the query selected them (the spec asks for it; a
/// `serde_json::Value` would sort them).
fn encode(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|err| {
        json!({ "errors": [{ "message": format!("could not encode the response: {err}") }] })
            .to_string()
    })
}

fn json_response(status: StatusCode, media: MediaType, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, media.content_type())], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_str(value).expect("header"),
        );
        headers
    }

    #[test]
    fn accept_picks_the_most_preferred_graphql_media_type() {
        assert_eq!(negotiate(&HeaderMap::new()).ok(), Some(MediaType::Json));
        assert_eq!(negotiate(&accept("*/*")).ok(), Some(MediaType::Json));
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            ))
            .ok(),
            Some(MediaType::GraphQLResponseJson)
        );
        assert_eq!(
            negotiate(&accept(
                "application/graphql-response+json;q=0.5, application/json"
            ))
            .ok(),
            Some(MediaType::Json)
        );
        let refused = negotiate(&accept("text/plain")).err().map(|r| r.status);
        assert_eq!(refused, Some(StatusCode::NOT_ACCEPTABLE));
    }

    #[test]
    fn url_parameters_are_json_text_and_mutations_are_refused() {
        let request = read_get(Some("query=%7B+__typename+%7D&variables=%7B%22a%22%3A1%7D"))
            .expect("request");
        assert_eq!(request.query, "{ __typename }");
        let mutation = read_get(Some("query=mutation+%7B+__typename+%7D"))
            .err()
            .map(|r| r.status);
        assert_eq!(mutation, Some(StatusCode::METHOD_NOT_ALLOWED));
        // A document's only operation runs without `operationName`, named or not.
        let named = read_get(Some("query=mutation+M+%7B+__typename+%7D"))
            .err()
            .map(|r| r.status);
        assert_eq!(named, Some(StatusCode::METHOD_NOT_ALLOWED));
        let bad = read_get(Some("query=%7B+a+%7D&variables=%5B1%5D"))
            .err()
            .map(|r| r.status);
        assert_eq!(bad, Some(StatusCode::BAD_REQUEST));
    }
}
