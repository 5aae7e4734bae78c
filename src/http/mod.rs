//! HTTP routes: GraphQL (POST and GET), GraphiQL for browsers, health and metrics.
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::BatchRequest;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLRequest, GraphQLResponse};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::auth::Principal;
use crate::graphql::Loaders;
use crate::graphql::limits::coded_error;
use crate::metrics::RequestLabels;
use crate::startup::AppState;

/// The application's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            track_requests,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(RequestBodyLimitLayer::new(state.limits.max_body_bytes))
        .with_state(state)
}

/// `POST /graphql`: one operation or a batch.
async fn graphql_post(
    State(state): State<AppState>,
    principal: Principal,
    request: GraphQLBatchRequest,
) -> GraphQLResponse {
    let request = request.into_inner();
    if let BatchRequest::Batch(operations) = &request
        && operations.len() > state.limits.max_batch
    {
        let error = coded_error(
            "BATCH_TOO_LARGE",
            format!(
                "the batch has {} operations; at most {} are allowed",
                operations.len(),
                state.limits.max_batch
            ),
        );
        return GraphQLResponse::from(async_graphql::Response::from_errors(vec![error]));
    }
    let loaders = Arc::new(Loaders::new(&state.db, principal.tenant));
    let request = request.data(principal).data(loaders);
    let timeout = Duration::from_secs(state.limits.timeout_secs);
    match tokio::time::timeout(timeout, state.schema.execute_batch(request)).await {
        Ok(response) => response.into(),
        Err(_) => GraphQLResponse::from(timed_out(timeout)),
    }
}

fn timed_out(timeout: Duration) -> async_graphql::Response {
    async_graphql::Response::from_errors(vec![coded_error(
        "TIMEOUT",
        format!("the request took longer than {} s", timeout.as_secs()),
    )])
}

/// `GET /graphql`: GraphiQL for a browser asking for HTML without a query, otherwise a
/// GraphQL query in the URL.
async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    let has_query = request.uri().query().is_some_and(|q| q.contains("query="));
    if wants_html && !has_query && !state.production {
        let authorization = state
            .graphiql_key
            .as_ref()
            .map(|key| format!("Bearer {key}"));
        let mut page = GraphiQLSource::build().endpoint("/graphql");
        if let Some(value) = &authorization {
            page = page.header("Authorization", value);
        }
        return Html(page.finish()).into_response();
    }
    let (mut parts, body) = request.into_parts();
    let principal =
        match <Principal as axum::extract::FromRequestParts<AppState>>::from_request_parts(
            &mut parts, &state,
        )
        .await
        {
            Ok(p) => p,
            Err(rejection) => return rejection.into_response(),
        };
    let request = Request::from_parts(parts, body);
    let graphql = match <GraphQLRequest as axum::extract::FromRequest<AppState>>::from_request(
        request, &state,
    )
    .await
    {
        Ok(r) => r,
        Err(rejection) => return rejection.into_response(),
    };
    let loaders = Arc::new(Loaders::new(&state.db, principal.tenant));
    let request = graphql.into_inner().data(principal).data(loaders);
    let timeout = Duration::from_secs(state.limits.timeout_secs);
    let response = tokio::time::timeout(timeout, state.schema.execute(request))
        .await
        .unwrap_or_else(|_| timed_out(timeout));
    GraphQLResponse::from(response).into_response()
}

/// `GET /healthz`: 200 when the database answers.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok"),
        Err(err) => {
            tracing::error!(%err, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
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
