//! GraphiQL, served from the binary itself: its assets (GraphiQL 3, React 18 and the
//! `graphql-ws` client that runs subscriptions over WebSocket, vendored into `assets/graphiql/`
//! by `e2e/scripts/vendor-graphiql.mjs`) are embedded at build time, so the page works on a
//! network without internet.
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

/// The query the page opens with.
pub const DEFAULT_QUERY: &str = "# Welcome to contact-gateway. Run this with the ▶ button or Ctrl-Enter;\n\
# the book icon on the left opens the schema's documentation.\n\
query Contacts {\n  contacts(first: 10) {\n    totalCount\n    pageInfo { hasNextPage endCursor }\n    nodes {\n      id\n      name\n      email\n      phone\n      account { name }\n      tags { name }\n    }\n  }\n}\n";

const PAGE: &str = include_str!("../../assets/graphiql/index.html");

/// The embedded files under `/graphiql/`, with their content types.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
    (
        "graphql-ws.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/graphiql/graphql-ws.min.js"),
    ),
];

/// The GraphiQL page for `endpoint`, its headers editor pre-filled with `authorization`.
pub fn page(endpoint: &str, authorization: Option<&str>) -> Html<String> {
    let headers = authorization.map(|value| {
        serde_json::to_string_pretty(&json!({ "Authorization": value })).unwrap_or_default()
    });
    let config = json!({
        "endpoint": endpoint,
        "defaultQuery": DEFAULT_QUERY,
        "headers": headers,
    })
    .to_string()
    // Inside <script>, `</` could close the element early.
    .replace("</", "<\\/");
    Html(PAGE.replace("{{CONFIG}}", &config))
}

/// `GET /graphiql/{file}`: an embedded asset, cached by browsers for a day.
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such GraphiQL asset").into_response(),
    }
}
