//! Hostile queries are rejected before any SQL runs, with a clear code, and the server
//! keeps serving.
use contact_gateway::startup::Application;
use serde_json::{Value, json};

use crate::common::{TestApp, single_error, spawn_app};

/// Sends `body`, asserts the rejection `code` and that no SQL ran, then that the server
/// still answers.
async fn assert_rejected(app: &TestApp, body: Value, code: &str) {
    let before = app.sql_statements().await;
    let response: Value = app
        .client
        .post(format!("{}/graphql", app.base_url))
        .json(&body)
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("json");
    single_error(&response, code);
    assert_eq!(
        app.sql_statements().await,
        before,
        "no SQL for a rejected query"
    );
    let alive = app
        .data("{ contacts(first: 1) { totalCount } }", json!({}))
        .await;
    assert!(alive["contacts"]["totalCount"].as_u64().unwrap_or(0) > 0);
}

#[tokio::test]
async fn deep_queries_are_rejected() {
    let app = spawn_app().await;
    let mut query = String::from("__typename");
    for _ in 0..30 {
        query = format!("account {{ contacts(first: 1) {{ nodes {{ {query} }} }} }}");
    }
    let query = format!("{{ contacts(first: 1) {{ nodes {{ {query} }} }} }}");
    assert_rejected(&app, json!({ "query": query }), "QUERY_TOO_DEEP").await;
}

#[tokio::test]
async fn costly_queries_are_rejected() {
    let app = spawn_app().await;
    let bomb = "{ businesses(first: 100) { nodes { tags(first: 100) { nodes { contacts(first: 100) { nodes { name } } } } } } }";
    assert_rejected(&app, json!({ "query": bomb }), "QUERY_TOO_COMPLEX").await;
}

#[tokio::test]
async fn alias_and_directive_floods_are_rejected() {
    let app = spawn_app().await;
    let aliases: String = (0..2000).map(|i| format!("x{i}:__typename ")).collect();
    assert_rejected(
        &app,
        json!({ "query": format!("{{ {aliases}}}") }),
        "TOO_MANY_ALIASES",
    )
    .await;
    let directives = "@skip(if: false) ".repeat(100);
    assert_rejected(
        &app,
        json!({ "query": format!("{{ __typename {directives}}}") }),
        "TOO_MANY_DIRECTIVES",
    )
    .await;
    let flood = "@skip(if:false)".repeat(3000);
    assert_rejected(
        &app,
        json!({ "query": format!("{{ __typename {flood}}}") }),
        "TOO_MANY_DIRECTIVES",
    )
    .await;
    let huge = format!("{{ __typename {} }}", " ".repeat(70_000));
    assert_rejected(&app, json!({ "query": huge }), "QUERY_TOO_LARGE").await;
}

#[tokio::test]
async fn circular_fragments_are_rejected() {
    let app = spawn_app().await;
    let query = "{ contacts { nodes { ...A } } } fragment A on Contact { account { name } ...B } fragment B on Contact { ...A }";
    assert_rejected(&app, json!({ "query": query }), "QUERY_TOO_DEEP").await;
}

#[tokio::test]
async fn huge_strings_and_batches_are_rejected() {
    let app = spawn_app().await;
    let query = "query($s: String) { contacts(filter: { search: $s }) { totalCount } }";
    assert_rejected(
        &app,
        json!({ "query": query, "variables": { "s": "x".repeat(300_000) } }),
        "VALIDATION_FAILED",
    )
    .await;
    let batch: Vec<Value> = (0..500)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    assert_rejected(&app, Value::Array(batch), "BATCH_TOO_LARGE").await;
    let ten: Vec<Value> = (0..10)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let response: Value = app
        .client
        .post(format!("{}/graphql", app.base_url))
        .json(&ten)
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("json");
    assert_eq!(response.as_array().map(Vec::len), Some(10));

    // A body over 1 MB (a 1 MB search string) is refused with HTTP 413.
    let before = app.sql_statements().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.base_url))
        .json(&json!({ "query": query, "variables": { "s": "x".repeat(1024 * 1024) } }))
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 413);
    assert_eq!(app.sql_statements().await, before);
}

#[tokio::test]
async fn production_mode_hides_the_schema_and_graphiql() {
    let app = spawn_app().await;
    let mut config = crate::common::test_config(&app.database_url);
    config.production = true;
    let production = Application::build(&config).await.expect("app");
    assert!(production.demo_key().is_none(), "no demo key in production");
    let url = format!("http://{}/graphql", production.address());
    tokio::spawn(production.run_until_stopped());
    let client = crate::common::client_with_key(&app.key);

    let introspection: Value = client
        .post(&url)
        .json(&json!({ "query": "{ __schema { types { name } } }" }))
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("json");
    assert_eq!(
        introspection["data"]["__schema"],
        Value::Null,
        "{introspection}"
    );
    let dev = app.data("{ __schema { types { name } } }", json!({})).await;
    assert!(
        dev["__schema"]["types"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );

    let typo: Value = client
        .post(&url)
        .json(&json!({ "query": "{ contact(id: \"x\") { emai } }" }))
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("json");
    let message = typo["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(!message.contains("Did you mean"), "{message}");

    let page = client
        .get(&url)
        .header("accept", "text/html")
        .send()
        .await
        .expect("response")
        .text()
        .await
        .expect("text");
    assert!(!page.contains("graphiql"), "no GraphiQL in production");

    // The development server still suggests.
    let dev = app
        .graphql("{ contact(id: \"x\") { emai } }", json!({}))
        .await;
    let hint = dev["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(hint.contains("Did you mean"), "{dev}");
}

#[tokio::test]
async fn requests_over_the_time_limit_are_cut_off_and_write_nothing() {
    use sea_orm::{EntityTrait, QuerySelect};
    let app = crate::common::spawn_app_with(|c| c.limits.request_timeout_secs = 1).await;
    let contact = app.all_contacts().await.remove(0);
    let before = crate::common::snapshot(&app).await;
    // Hold the contact's write lock (a row lock on PostgreSQL, the writer lock on SQLite), so
    // that the update below must wait longer than the limit.
    let (txn, lock) = contact_gateway::db::begin_write(&app.db)
        .await
        .expect("write transaction");
    entity::prelude::Contact::find_by_id(contact.id)
        .lock_exclusive()
        .one(&txn)
        .await
        .expect("locked row");
    let update = app.graphql(
        "mutation($id: ID!) { updateContact(input: { id: $id, patch: { role: \"late\" } }) { contact { role } } }",
        json!({ "id": contact.id.to_string() }),
    );
    // Without the server's limit the update would wait for the lock as long as we hold it.
    let response = tokio::time::timeout(std::time::Duration::from_secs(5), update)
        .await
        .expect("the server cut the request off after its 1 s limit");
    single_error(&response, "TIMEOUT");
    drop(txn);
    drop(lock);
    assert_eq!(
        crate::common::snapshot(&app).await,
        before,
        "the cut-off update wrote nothing"
    );
    let alive = app
        .data("{ contacts(first: 1) { totalCount } }", json!({}))
        .await;
    assert!(alive["contacts"]["totalCount"].as_u64().unwrap_or(0) > 0);
}
