//! The HTTP surface besides POST /graphql.
use serde_json::Value;

use crate::common::spawn_app;

#[tokio::test]
async fn get_runs_a_query_from_the_url() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/graphql", app.base_url))
        .query(&[(
            "query",
            "{ contacts(first: 2) { totalCount nodes { id } } }",
        )])
        .send()
        .await
        .expect("response");
    assert!(response.status().is_success());
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["data"]["contacts"]["nodes"].as_array().map(Vec::len),
        Some(2)
    );
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let app = spawn_app().await;
    let health = app
        .client
        .get(format!("{}/healthz", app.base_url))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    app.data(
        "{ contacts(first: 1) { totalCount } }",
        serde_json::json!({}),
    )
    .await;
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("contact_gateway_sql_statements_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"contact_gateway_http_requests_total{route="/graphql",method="POST",status="200"}"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains("contact_gateway_http_request_duration_seconds_bucket"));
}

/// POSTs `body` with `content_type` and `accept`; returns status, content type and body text.
async fn post_raw(
    app: &crate::common::TestApp,
    content_type: Option<&str>,
    accept: &str,
    body: &str,
) -> (u16, String, String) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.base_url))
        .header("accept", accept)
        .body(body.to_string());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = request.send().await.expect("response");
    let status = response.status().as_u16();
    let media = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, media, response.text().await.expect("text"))
}

#[tokio::test]
async fn graphql_over_http_status_codes_follow_the_media_type() {
    let app = spawn_app().await;
    let modern = "application/graphql-response+json";
    let json = "application/json";

    let (status, media, body) =
        post_raw(&app, Some(json), modern, r#"{"query":"{ __typename }"}"#).await;
    assert_eq!((status, media.starts_with(modern)), (200, true), "{body}");

    // A document that does not validate: 400 without `data` for the new media type, 200 for
    // the legacy one; the error is coded either way.
    let invalid = r#"{"query":"{ noSuchField }"}"#;
    let (status, _, body) = post_raw(&app, Some(json), modern, invalid).await;
    let parsed: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(status, 400);
    assert!(parsed.get("data").is_none(), "{body}");
    assert_eq!(
        parsed["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    let (status, media, _) = post_raw(&app, Some(json), json, invalid).await;
    assert_eq!((status, media.starts_with(json)), (200, true));

    // Not JSON, no content type, a query that is not a string: refused before execution.
    assert_eq!(post_raw(&app, Some(json), json, "{ nope").await.0, 400);
    assert_eq!(
        post_raw(&app, None, json, r#"{"query":"{ __typename }"}"#)
            .await
            .0,
        415
    );
    assert_eq!(
        post_raw(&app, Some(json), json, r#"{"query":{"a":1}}"#)
            .await
            .0,
        400
    );
    assert_eq!(
        post_raw(
            &app,
            Some(json),
            "text/csv",
            r#"{"query":"{ __typename }"}"#
        )
        .await
        .0,
        406
    );

    // A field error keeps `data` and status 200.
    let (status, _, body) = post_raw(
        &app,
        Some(json),
        modern,
        r#"{"query":"{ contacts(first: 1000) { totalCount } }"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        serde_json::from_str::<Value>(&body)
            .expect("json")
            .get("data")
            .is_some()
    );
}

#[tokio::test]
async fn get_never_runs_a_mutation() {
    let app = spawn_app().await;
    let before = app.all_contacts().await.len();
    let response = app
        .client
        .get(format!("{}/graphql", app.base_url))
        .query(&[(
            "query",
            r#"mutation { createContact(input: { contact: { firstName: "Via GET" } }) { contact { id } } }"#,
        )])
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 405);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert_eq!(app.all_contacts().await.len(), before);
}

#[tokio::test]
async fn response_fields_keep_the_order_of_the_query() {
    let app = spawn_app().await;
    for (query, first, second) in [
        (
            "{ contacts(first: 1) { totalCount nodes { id } } }",
            "totalCount",
            "nodes",
        ),
        (
            "{ contacts(first: 1) { nodes { id } totalCount } }",
            "nodes",
            "totalCount",
        ),
    ] {
        let body = serde_json::json!({ "query": query }).to_string();
        let (_, _, text) =
            post_raw(&app, Some("application/json"), "application/json", &body).await;
        let a = text.find(first).expect("first field");
        let b = text.find(second).expect("second field");
        assert!(a < b, "{text}");
    }
}

#[tokio::test]
async fn graphiql_is_served_from_the_binary_with_the_demo_key() {
    let app = spawn_app().await;
    let page = app.graphiql_page().await;
    assert!(page.contains("graphiql"), "{page}");
    assert!(page.contains(&format!("Bearer {}", app.key)));
    assert!(
        !page.contains("https://"),
        "the page must not load anything from outside"
    );
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        assert!(page.contains(&format!("/graphiql/{asset}")));
        let response = app
            .client
            .get(format!("{}/graphiql/{asset}", app.base_url))
            .send()
            .await
            .expect("asset");
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.bytes().await.expect("bytes").len() > 1000);
    }
}
