//! Webhooks (issue 18) against a stand-in receiver over real HTTP: every change is POSTed
//! once, in order per contact, signed as Standard Webhooks says (checked with the
//! `standardwebhooks` crate's verifier); failures are retried with backoff and a run of
//! them disables the webhook; URLs on private networks are refused in production; another
//! tenant neither sees nor changes a webhook.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestApp, client_with_key, spawn_app_with, tenant_of};
use crate::subscriptions::{create, rename};

/// What the receiver got: headers and body of each request.
#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<(HeaderMap, String)>>>,
    /// Requests to answer 500 before answering 200.
    failures: Arc<Mutex<usize>>,
}

impl Receiver {
    /// Starts the receiver on 127.0.0.1:0; returns its URL.
    async fn start(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    me.received.lock().expect("lock").push((headers, body));
                    let mut failures = me.failures.lock().expect("lock");
                    if *failures > 0 {
                        *failures -= 1;
                        return (StatusCode::INTERNAL_SERVER_ERROR, "try later");
                    }
                    (StatusCode::OK, "ok")
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{address}/hook")
    }

    fn bodies(&self) -> Vec<Value> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null))
            .collect()
    }

    /// Waits (up to 10 s) for `n` requests.
    async fn wait_for(&self, n: usize) -> Vec<(HeaderMap, String)> {
        for _ in 0..500 {
            let received = self.received.lock().expect("lock").clone();
            if received.len() >= n {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "{} requests, not {n}",
            self.received.lock().expect("lock").len()
        );
    }
}

/// A gateway that delivers webhooks, configured further by `configure`.
async fn delivering(configure: impl FnOnce(&mut contact_gateway::config::Config)) -> TestApp {
    spawn_app_with(|c| {
        c.sync.no_webhook_delivery = false;
        configure(c);
    })
    .await
}

async fn create_webhook(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let data = app
        .data(
            "mutation($url: String!, $events: [ContactChangeKind!]) { createWebhook(input: { url: $url, events: $events, description: \"test\" }) { secret webhook { id url events enabled } } }",
            json!({ "url": url, "events": events }),
        )
        .await;
    let created = &data["createWebhook"];
    (
        created["webhook"]["id"].as_str().expect("id").to_string(),
        created["secret"].as_str().expect("secret").to_string(),
    )
}

async fn deliveries(app: &TestApp, webhook: &str) -> Vec<Value> {
    let data = app
        .data(
            "{ webhooks(first: 10) { nodes { id enabled disabledReason failingSince deliveries(first: 50) { totalCount nodes { id kind contactId state attempts statusCode durationMs lastError deliveredAt } } } } }",
            json!({}),
        )
        .await;
    data["webhooks"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|w| w["id"] == webhook)
        .map(|w| {
            w["deliveries"]["nodes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn changes_are_posted_in_order_and_signed_as_standard_webhooks_says() {
    let app = delivering(|_| {}).await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let (webhook, secret) = create_webhook(&app, &url, Value::Null).await;
    assert!(secret.starts_with("whsec_"));
    let id = create(&app, "One").await;
    for name in ["Two", "Three", "Four"] {
        rename(&app, &id, name).await;
    }
    let received = receiver.wait_for(4).await;
    let verifier = standardwebhooks::Webhook::new(&secret).expect("secret");
    for (headers, body) in &received {
        verifier
            .verify(body.as_bytes(), headers)
            .expect("a valid signature");
        assert_eq!(headers["content-type"], "application/json");
    }
    let bodies = receiver.bodies();
    assert_eq!(bodies[0]["type"], "contact.created");
    assert_eq!(bodies[0]["data"]["contactId"], id);
    for body in &bodies[1..] {
        assert_eq!(body["type"], "contact.updated");
        assert_eq!(body["data"]["changedFields"], json!(["lastName"]));
    }
    // In order: the deliveries' ids (UUIDv7) ascend as the changes were made.
    let ids: Vec<String> = received
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap_or_default().to_string())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    // A wrong secret does not verify.
    let other = standardwebhooks::Webhook::new(&contact_gateway::webhooks::store::new_secret())
        .expect("secret");
    assert!(
        other
            .verify(received[0].1.as_bytes(), &received[0].0)
            .is_err()
    );
    // The log has each delivery once, delivered at the first attempt.
    let log = deliveries(&app, &webhook).await;
    assert_eq!(log.len(), 4);
    assert!(
        log.iter()
            .all(|d| d["state"] == "DELIVERED" && d["attempts"] == 1 && d["statusCode"] == 200)
    );
    // The secret is never shown again.
    let listed = app
        .graphql("{ webhooks { nodes { secret } } }", json!({}))
        .await;
    assert!(!listed["errors"].is_null());
}

#[tokio::test]
async fn a_webhook_gets_only_the_events_it_asked_for_and_only_its_tenant_s() {
    let app = delivering(|_| {}).await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    create_webhook(&app, &url, json!(["CREATED"])).await;
    let id = create(&app, "Mine").await;
    rename(&app, &id, "Renamed").await;
    // Another tenant's change is not ours.
    let other = crate::common::other_tenant_client(&app).await;
    let response: Value = other
        .post(format!("{}/graphql", app.base_url))
        .json(&json!({ "query": "mutation { createContact(input: { contact: { lastName: \"Theirs\" } }) { contact { id } } }" }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(response["errors"].is_null(), "{response}");
    let marker = create(&app, "Marker").await;
    receiver.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bodies = receiver.bodies();
    let contacts: Vec<&Value> = bodies.iter().map(|b| &b["data"]["contactId"]).collect();
    assert_eq!(contacts, [&json!(id), &json!(marker)]);
    // The other tenant cannot see, change or delete it.
    let listed: Value = other
        .post(format!("{}/graphql", app.base_url))
        .json(&json!({ "query": "{ webhooks { totalCount } }" }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    // That key lacks webhooks:manage.
    assert_eq!(listed["errors"][0]["extensions"]["code"], "FORBIDDEN");
}

#[tokio::test]
async fn failures_are_retried_and_a_run_of_them_disables_the_webhook() {
    let app = delivering(|_| {}).await;
    let receiver = Receiver::default();
    *receiver.failures.lock().expect("lock") = 2;
    let url = receiver.start().await;
    let (webhook, _) = create_webhook(&app, &url, Value::Null).await;
    create(&app, "Retried").await;
    let received = receiver.wait_for(3).await;
    // The same webhook-id on every attempt.
    let ids: Vec<&str> = received
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap_or_default())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = deliveries(&app, &webhook).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["state"], "DELIVERED");
    assert_eq!(log[0]["attempts"], 3);

    // Failing for longer than allowed (here: at once) disables it.
    let app = delivering(|c| c.sync.webhook_disable_after_secs = 0).await;
    let receiver = Receiver::default();
    *receiver.failures.lock().expect("lock") = 1_000;
    let url = receiver.start().await;
    let (webhook, _) = create_webhook(&app, &url, Value::Null).await;
    create(&app, "Never").await;
    let mut disabled = Value::Null;
    for _ in 0..250 {
        let data = app
            .data(
                "{ webhooks { nodes { id enabled disabledReason } } }",
                json!({}),
            )
            .await;
        disabled = data["webhooks"]["nodes"][0].clone();
        if disabled["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(disabled["id"], webhook);
    assert_eq!(disabled["enabled"], false, "{disabled}");
    assert!(disabled["disabledReason"].is_string());
    let log = deliveries(&app, &webhook).await;
    assert_eq!(log[0]["state"], "FAILED");
    assert_eq!(log[0]["statusCode"], 500);
    // Nothing more is queued while it is disabled.
    create(&app, "Ignored").await;
    assert_eq!(deliveries(&app, &webhook).await.len(), 1);
    // Enabled again and redelivered, it arrives.
    *receiver.failures.lock().expect("lock") = 0;
    app.data(
        "mutation($id: ID!) { updateWebhook(input: { id: $id, enabled: true }) { webhook { enabled failingSince } } }",
        json!({ "id": webhook }),
    )
    .await;
    let before = receiver.received.lock().expect("lock").len();
    app.data(
        "mutation($id: ID!) { redeliverWebhookDelivery(id: $id) { delivery { state } } }",
        json!({ "id": log[0]["id"] }),
    )
    .await;
    receiver.wait_for(before + 1).await;
}

/// A production server on `app`'s database (configured further by `configure`): its URL.
async fn production_server(
    app: &TestApp,
    configure: impl FnOnce(&mut contact_gateway::config::Config),
) -> String {
    let mut config = crate::common::test_config(&app.database_url);
    config.production = true;
    configure(&mut config);
    let server = contact_gateway::startup::Application::build(&config)
        .await
        .expect("app");
    let url = format!("http://{}/graphql", server.address());
    tokio::spawn(server.run_until_stopped());
    url
}

async fn post(url: &str, key: &str, query: &str) -> Value {
    client_with_key(key)
        .post(url)
        .json(&json!({ "query": query }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn in_production_a_url_on_a_private_network_is_refused_unless_allowed() {
    let app = spawn_app_with(|_| {}).await;
    let url = production_server(&app, |_| {}).await;
    let create = |target: &str| {
        format!("mutation {{ createWebhook(input: {{ url: \"{target}\" }}) {{ secret }} }}")
    };
    let response = post(&url, &app.key, &create("http://127.0.0.1:9/hook")).await;
    let error = crate::common::single_error(&response, "VALIDATION_FAILED");
    assert_eq!(crate::common::failing_fields(error), ["input.url"]);
    let response = post(&url, &app.key, &create("ftp://hooks.example.com/")).await;
    crate::common::single_error(&response, "VALIDATION_FAILED");
    let count = app.data("{ webhooks { totalCount } }", json!({})).await;
    assert_eq!(count["webhooks"]["totalCount"], 0, "nothing stored");

    let allowed = production_server(&app, |c| c.sync.webhooks_allow_private_networks = true).await;
    let response = post(&allowed, &app.key, &create("http://127.0.0.1:9/hook")).await;
    assert!(response["errors"].is_null(), "{response}");
    assert!(tenant_of(&app).await.0 != uuid::Uuid::nil());
}

#[tokio::test]
async fn old_events_and_delivered_deliveries_are_removed() {
    use contact_gateway::webhooks::delivery::purge;
    let app = delivering(|_| {}).await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let (webhook, _) = create_webhook(&app, &url, Value::Null).await;
    create(&app, "Kept a while").await;
    receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(deliveries(&app, &webhook).await.len(), 1);
    // Cut-offs in the past keep everything; in the future remove what is old enough.
    assert_eq!(purge(&app.db, 0, 0).await.expect("purge"), (0, 0));
    let far = contact_gateway::time::now_millis() + 60_000;
    let (events, delivered) = purge(&app.db, far, far).await.expect("purge");
    assert!(events >= 1);
    assert_eq!(delivered, 1);
    assert!(deliveries(&app, &webhook).await.is_empty());
}

#[tokio::test]
async fn the_delivery_logs_of_many_webhooks_cost_the_statements_of_one() {
    // The worker is off (no background SQL): deliveries stay queued.
    let app = spawn_app_with(|_| {}).await;
    async fn statements(app: &TestApp) -> (u64, Value) {
        let query = "{ webhooks(first: 10) { nodes { id deliveries(first: 5) { totalCount nodes { id kind } } } } }";
        let before = app.sql_statements().await;
        let data = app.data(query, json!({})).await;
        (app.sql_statements().await - before, data)
    }
    create_webhook(&app, "http://127.0.0.1:9/one", Value::Null).await;
    create(&app, "First").await;
    let (one, data) = statements(&app).await;
    assert_eq!(data["webhooks"]["nodes"][0]["deliveries"]["totalCount"], 1);
    for n in 0..3 {
        create_webhook(&app, &format!("http://127.0.0.1:9/{n}"), Value::Null).await;
    }
    create(&app, "Second").await;
    let (four, data) = statements(&app).await;
    let nodes = data["webhooks"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 4);
    let totals: Vec<&Value> = nodes
        .iter()
        .map(|w| &w["deliveries"]["totalCount"])
        .collect();
    assert_eq!(
        totals,
        [&json!(1), &json!(1), &json!(1), &json!(2)],
        "newest first"
    );
    assert_eq!(one, four, "not one statement per webhook");
}

#[tokio::test]
async fn two_server_processes_send_each_delivery_once() {
    // This test's server queues (its worker is off); two `serve` processes deliver.
    let app = spawn_app_with(|_| {}).await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    create_webhook(&app, &url, Value::Null).await;
    for n in 0..20 {
        create(&app, &format!("Queued {n}")).await;
    }
    let servers: Vec<crate::sources::ServerProcess> = (0..2)
        .map(|_| crate::sources::ServerProcess::start(&app))
        .collect();
    let received = receiver.wait_for(20).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    drop(servers);
    let received = receiver
        .received
        .lock()
        .expect("lock")
        .len()
        .max(received.len());
    let mut ids: Vec<String> = receiver
        .received
        .lock()
        .expect("lock")
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(received, 20, "each delivery sent once");
    assert_eq!(ids.len(), 20);
}

#[tokio::test]
async fn in_production_nothing_is_sent_to_a_private_address_whenever_the_webhook_was_made() {
    // Made outside production (allowed there), delivered by a production server.
    let app = spawn_app_with(|_| {}).await;
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let (webhook, _) = create_webhook(&app, &url, Value::Null).await;
    create(&app, "Private").await;
    production_server(&app, |c| c.sync.no_webhook_delivery = false).await;
    let mut log = Vec::new();
    for _ in 0..250 {
        log = deliveries(&app, &webhook).await;
        if log.first().is_some_and(|d| d["lastError"].is_string()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log[0]["state"], "PENDING", "{log:?}");
    assert!(
        log[0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1")),
        "{log:?}"
    );
    assert!(receiver.received.lock().expect("lock").is_empty());
}
