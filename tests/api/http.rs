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
async fn a_browser_gets_graphiql() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/graphql", app.base_url))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("response");
    assert!(response.status().is_success());
    let body = response.text().await.expect("text");
    assert!(body.contains("graphiql"), "{body}");
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
    let metrics = app
        .client
        .get(format!("{}/metrics", app.base_url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
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
