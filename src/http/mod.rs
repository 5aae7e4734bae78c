//! HTTP routes: GraphQL over HTTP (POST and GET), GraphiQL for browsers, health and metrics;
//! and the layers every request passes: request id, trace span, metrics, body limit.
mod auth_rejection;
pub mod graphiql;
pub mod graphql_http;
pub mod server;
pub mod websocket;
pub mod websocket_upgrade;

use crate::code::Code;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::BatchRequest;
use axum::Router;
use axum::extract::{FromRequestParts, MatchedPath, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::Principal;
use crate::graphql::limits::coded_error;
use crate::graphql::{Loaders, pipeline};
use crate::metrics::RequestLabels;
use crate::startup::AppState;
use graphql_http::{MediaType, Outcome};

/// The application's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphiql/{file}", get(graphiql::asset))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            track_requests,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            check_request_size,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Millis),
                ),
        )
        // Outermost: every request has an id (the client's `x-request-id`, or a new UUID)
        // before its span opens, and the response carries it back.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// The span of one request: method, path and request id, on every log line inside it.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
    )
}

/// `POST /graphql`: one operation or a batch, as GraphQL over HTTP asks.
async fn graphql_post(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let media = match graphql_http::negotiate(&parts.headers) {
        Ok(media) => media,
        Err(rejection) => return rejection.into_response(MediaType::Json),
    };
    let principal = match Principal::from_request_parts(&mut parts, &state).await {
        Ok(principal) => principal,
        Err(rejection) => {
            state.metrics.record_operation("-", "unauthenticated", 0.0);
            return rejection.into_response();
        }
    };
    // The body must arrive within the request's time limit (a client that stops sending,
    // or sends less than its Content-Length, would otherwise hold the connection).
    let read = axum::body::to_bytes(body, state.limits.max_body_bytes);
    let body =
        match tokio::time::timeout(Duration::from_secs(state.limits.timeout_secs), read).await {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => return body_too_large(state.limits.max_body_bytes),
            Err(_) => {
                return error_response(
                    StatusCode::REQUEST_TIMEOUT,
                    Code::RequestTimeout,
                    &format!(
                        "the request body did not arrive within {} s",
                        state.limits.timeout_secs
                    ),
                );
            }
        };
    let batch = match graphql_http::read_post(&parts.headers, &body) {
        Ok(batch) => batch,
        Err(rejection) => return request_rejected(&state, media, rejection),
    };
    match batch {
        BatchRequest::Single(request) => {
            let (outcome, response) = execute(&state, &principal, request).await;
            graphql_http::single_response(media, outcome, response)
        }
        BatchRequest::Batch(operations) => {
            if operations.len() > state.limits.max_batch {
                let error = coded_error(
                    Code::BatchTooLarge,
                    format!(
                        "the batch has {} operations; at most {} are allowed",
                        operations.len(),
                        state.limits.max_batch
                    ),
                );
                let response = async_graphql::Response::from_errors(vec![error]);
                return graphql_http::single_response(media, Outcome::RequestError, response);
            }
            let mut responses = Vec::with_capacity(operations.len());
            for request in operations {
                responses.push(execute(&state, &principal, request).await.1);
            }
            graphql_http::batch_response(media, async_graphql::BatchResponse::Batch(responses))
        }
    }
}

/// `GET /graphql`: GraphiQL for a browser asking for HTML without a query, otherwise a query
/// (never a mutation) in the URL.
async fn graphql_get(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    if websocket_upgrade::is_requested(request.headers()) {
        let (mut parts, _) = request.into_parts();
        return websocket::upgrade(state, &mut parts);
    }
    let headers = request.headers();
    if wants_graphiql(headers, query.as_deref()) && !state.production {
        let authorization = state.graphiql_key.as_ref().map(|k| format!("Bearer {k}"));
        return graphiql::page("/graphql", authorization.as_deref()).into_response();
    }
    let media = match graphql_http::negotiate(headers) {
        Ok(media) => media,
        Err(rejection) => return rejection.into_response(MediaType::Json),
    };
    let (mut parts, _) = request.into_parts();
    let principal = match Principal::from_request_parts(&mut parts, &state).await {
        Ok(principal) => principal,
        Err(rejection) => {
            state.metrics.record_operation("-", "unauthenticated", 0.0);
            return rejection.into_response();
        }
    };
    let request = match graphql_http::read_get(query.as_deref()) {
        Ok(request) => request,
        Err(rejection) => return request_rejected(&state, media, rejection),
    };
    let (outcome, response) = execute(&state, &principal, request).await;
    graphql_http::single_response(media, outcome, response)
}

/// A browser (HTML first in `Accept`) opening `/graphql` without a query.
fn wants_graphiql(headers: &HeaderMap, query: Option<&str>) -> bool {
    let accepts_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let has_query = query
        .is_some_and(|q| url::form_urlencoded::parse(q.as_bytes()).any(|(key, _)| key == "query"));
    accepts_html && !has_query
}

fn request_rejected(
    state: &AppState,
    media: MediaType,
    rejection: graphql_http::Rejection,
) -> Response {
    state
        .metrics
        .record_operation("-", Outcome::RequestError.as_str(), 0.0);
    tracing::info!(status = %rejection.status, reason = %rejection.message, "graphql request refused");
    rejection.into_response(media)
}

/// Runs one operation for `principal` within the time limit ([`pipeline`]); logs and
/// counts it.
async fn execute(
    state: &AppState,
    principal: &Principal,
    mut request: async_graphql::Request,
) -> (Outcome, async_graphql::Response) {
    let started = Instant::now();
    let limits = &state.limits;
    let parsed = pipeline::Parsed::parse(&request.query, limits);
    let operation = operation_name(&request, parsed.as_ref().ok());
    let prepared = parsed.and_then(|parsed| {
        parsed.prepare(
            &request.variables,
            request.operation_name.as_deref(),
            principal,
            limits,
        )
    });
    let (outcome, response) = match prepared {
        Err(error) => (
            Outcome::RequestError,
            async_graphql::Response::from_errors(vec![error]),
        ),
        Ok(prepared) => {
            let shape = prepared.shape;
            request.set_parsed_query(prepared.document);
            let loaders = Arc::new(Loaders::new(&state.db, principal.tenant));
            let request = request.data(principal.clone()).data(loaders);
            let timeout = Duration::from_secs(limits.timeout_secs);
            match tokio::time::timeout(timeout, state.schema.execute(request)).await {
                Ok(mut response) => {
                    pipeline::finish(&mut response, &shape, limits);
                    (Outcome::of(&response), response)
                }
                Err(_) => (
                    Outcome::Timeout,
                    async_graphql::Response::from_errors(vec![coded_error(
                        Code::Timeout,
                        format!("the request took longer than {} s", timeout.as_secs()),
                    )]),
                ),
            }
        }
    };
    let elapsed = started.elapsed();
    state
        .metrics
        .record_operation(&operation, outcome.as_str(), elapsed.as_secs_f64());
    tracing::info!(
        operation = %operation,
        outcome = outcome.as_str(),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        errors = response.errors.len(),
        "graphql operation"
    );
    (outcome, response)
}

/// The operation's name, for logs and metrics: `operationName`, or the name of the
/// document's only operation, or `anonymous`.
fn operation_name(request: &async_graphql::Request, parsed: Option<&pipeline::Parsed>) -> String {
    if let Some(name) = &request.operation_name {
        return name.chars().take(64).collect();
    }
    parsed
        .and_then(pipeline::Parsed::only_operation_name)
        .map_or_else(|| "anonymous".to_string(), str::to_string)
}

/// How long `/healthz` waits for the database before it answers 503.
const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// `GET /healthz`: 200 when the database answers within 800 ms, else 503 (with
/// `Retry-After`), the cause logged.
async fn healthz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(HEALTH_CHECK_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok").into_response(),
        Ok(Err(err)) => {
            tracing::error!(error = %crate::error::Error::from(err).detail(), "health check failed");
            unavailable_response("database unavailable")
        }
        Err(_) => {
            tracing::error!("health check failed: the database did not answer within 800 ms");
            unavailable_response("database unavailable")
        }
    }
}

/// A GraphQL-shaped error body with one error of `code`, for answers made outside GraphQL
/// execution (authentication, body and header limits).
pub fn error_response(status: StatusCode, code: Code, message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] });
    (status, axum::Json(body)).into_response()
}

/// HTTP 503 `SERVICE_UNAVAILABLE` with `Retry-After`: the database cannot be reached.
pub fn unavailable_response(message: &str) -> Response {
    let mut response = error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        Code::ServiceUnavailable,
        message,
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_static(graphql_http::RETRY_AFTER_SECS),
    );
    response
}

/// Most request headers accepted (more: HTTP 431).
pub const MAX_HEADERS: usize = 100;

/// Most bytes of request headers (names and values) accepted (more: HTTP 431).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Refuses, with a GraphQL error body, a request whose headers are too many or too long
/// (431 `REQUEST_HEADERS_TOO_LARGE`) or whose declared body is too long (413
/// `REQUEST_TOO_LARGE`; a body that turns out longer than declared is refused as it is read).
async fn check_request_size(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Code::RequestHeadersTooLarge,
            &format!(
                "the request has more than {MAX_HEADERS} headers or more than {MAX_HEADER_BYTES} bytes of them"
            ),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.limits.max_body_bytes as u64) {
        return body_too_large(state.limits.max_body_bytes);
    }
    next.run(request).await
}

/// HTTP 413 `REQUEST_TOO_LARGE`: the body is longer than `--max-body-bytes`.
fn body_too_large(limit: usize) -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        Code::RequestTooLarge,
        &format!("the request body is longer than {limit} bytes"),
    )
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let (in_use, idle) = crate::db::pool_connections(&state.db);
    state.metrics.set_pool(in_use, idle);

    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Counts requests and records their latency by route, method and status.
async fn track_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let method = request.method().to_string();
    let response = next.run(request).await;
    let labels = RequestLabels {
        route,
        method,
        status: response.status().as_u16(),
    };
    state.metrics.http_requests.get_or_create(&labels).inc();
    state
        .metrics
        .http_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_by_operation_name_or_their_only_name() {
        let limits = crate::config::Limits::default();
        let name = |request: &async_graphql::Request| {
            let parsed = pipeline::Parsed::parse(&request.query, &limits).ok();
            operation_name(request, parsed.as_ref())
        };
        let named = async_graphql::Request::new("query Contacts { __typename }");
        assert_eq!(name(&named), "Contacts");
        let chosen = async_graphql::Request::new("query A { __typename } query B { __typename }")
            .operation_name("B");
        assert_eq!(name(&chosen), "B");
        let anonymous = async_graphql::Request::new("{ __typename }");
        assert_eq!(name(&anonymous), "anonymous");
    }
}
