//! Subscriptions (issue 18) over real WebSockets with `graphql-transport-ws`: every kind of
//! change reaches its tenant's subscribers in order and no other tenant's; filters apply to
//! the changed contact; bad keys close the socket as the protocol says; a subscriber that
//! falls behind gets `LAGGED`; a change made through one server process reaches a
//! subscriber of another (PostgreSQL).
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{TestApp, client_with_key, spawn_app, spawn_app_with, tenant_of};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const CHANGES: &str = "subscription($filter: ContactFilter) { contactChanged(filter: $filter) {
    kind contactId changedFields survivorId at skipped contact { id lastName } } }";

/// A `graphql-transport-ws` client.
pub(crate) struct Subscriber {
    socket: Socket,
}

impl Subscriber {
    /// Opens a socket to `base_url` (no `connection_init` yet).
    async fn open(base_url: &str) -> Self {
        let url = format!("{}/graphql", base_url.replace("http://", "ws://"));
        let mut request = url.into_client_request().expect("request");
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connected");
        assert_eq!(
            response.headers()["sec-websocket-protocol"],
            "graphql-transport-ws"
        );
        Self { socket }
    }

    /// Opens a socket and initialises it with `key`; waits for `connection_ack`.
    pub(crate) async fn connect(base_url: &str, key: &str) -> Self {
        let mut subscriber = Self::open(base_url).await;
        subscriber
            .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {key}") } }))
            .await;
        let ack = subscriber.message().await.expect("ack");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        subscriber
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("sent");
    }

    pub(crate) async fn subscribe(&mut self, id: &str, filter: Value) {
        self.send(json!({ "id": id, "type": "subscribe",
            "payload": { "query": CHANGES, "variables": { "filter": filter } } }))
            .await;
    }

    /// The next protocol message (pings answered), or `None` when the socket closes or
    /// nothing comes within 5 s.
    async fn message(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.socket.next())
                .await
                .ok()??
                .ok()?;
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).ok(),
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// The next text message, as sent (pings answered).
    async fn text(&mut self) -> String {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), self.socket.next())
                .await
                .expect("a message in time")
                .expect("open")
                .expect("a frame");
            if let Message::Text(text) = frame {
                return text.to_string();
            }
        }
    }

    /// The next change delivered (the `contactChanged` of a `next` message).
    pub(crate) async fn change(&mut self) -> Value {
        let message = self.message().await.expect("a change");
        assert_eq!(message["type"], "next", "{message}");
        message["payload"]["data"]["contactChanged"].clone()
    }

    /// Nothing arrives within `wait`.
    async fn quiet(&mut self, wait: Duration) {
        if let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(wait, self.socket.next()).await
        {
            panic!("unexpected message: {text}");
        }
    }

    /// The close code the server ends the socket with.
    async fn close_code(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.socket.next()).await {
                Ok(Some(Ok(Message::Close(Some(frame))))) => return frame.code.into(),
                Ok(Some(Ok(_))) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    }
}

/// Creates a contact named `last_name`; its id.
pub(crate) async fn create(app: &TestApp, last_name: &str) -> String {
    let data = app
        .data(
            "mutation($c: ContactPatch!) { createContact(input: { contact: $c }) { contact { id } } }",
            json!({ "c": { "lastName": last_name } }),
        )
        .await;
    data["createContact"]["contact"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// Sets the last name of contact `id`.
pub(crate) async fn rename(app: &TestApp, id: &str, last_name: &str) {
    app.data(
        "mutation($id: ID!, $n: String) { updateContact(input: { id: $id, patch: { lastName: $n } }) { contact { id } } }",
        json!({ "id": id, "n": last_name }),
    )
    .await;
}

/// A key of a second tenant of `app`'s database.
async fn other_tenant_key(app: &TestApp) -> String {
    use contact_gateway::auth::{Scope, api_keys};
    use contact_gateway::tenancy::TenantId;
    let other = api_keys::create_tenant(&app.db, "Other tenant")
        .await
        .expect("tenant");
    api_keys::create_key(
        &app.db,
        TenantId(other.id),
        &[Scope::ContactsRead, Scope::ContactsWrite],
        None,
        None,
    )
    .await
    .expect("key")
    .key
}

#[tokio::test]
async fn each_change_reaches_its_tenant_s_subscribers_in_order_and_no_one_else() {
    let app = spawn_app().await;
    let other_key = other_tenant_key(&app).await;
    let mut ours = Subscriber::connect(&app.base_url, &app.key).await;
    ours.subscribe("1", Value::Null).await;
    let mut theirs = Subscriber::connect(&app.base_url, &other_key).await;
    theirs.subscribe("1", Value::Null).await;
    // Give both subscriptions time to start before the first change.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let id = create(&app, "First").await;
    let created = ours.change().await;
    assert_eq!(created["kind"], "CREATED");
    assert_eq!(created["contactId"], id);
    assert_eq!(created["contact"]["lastName"], "First");

    rename(&app, &id, "Second").await;
    let updated = ours.change().await;
    assert_eq!(updated["kind"], "UPDATED");
    assert_eq!(updated["changedFields"], json!(["lastName"]));
    assert_eq!(updated["contact"]["lastName"], "Second");

    app.data(
        "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedContactId } }",
        json!({ "id": id }),
    )
    .await;
    let deleted = ours.change().await;
    assert_eq!(deleted["kind"], "DELETED");
    assert_eq!(deleted["contactId"], id);
    assert!(deleted["contact"].is_null());

    // A rejected change emits nothing.
    let refused = app
        .graphql(
            "mutation { createContact(input: { contact: { email: \"not an email\" } }) { contact { id } } }",
            json!({}),
        )
        .await;
    assert!(!refused["errors"].is_null());
    ours.quiet(Duration::from_millis(300)).await;

    // The other tenant saw none of it, and sees its own.
    theirs.quiet(Duration::from_millis(100)).await;
    let other = client_with_key(&other_key);
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
    assert_eq!(theirs.change().await["contact"]["lastName"], "Theirs");
    ours.quiet(Duration::from_millis(300)).await;
    assert_ne!(tenant_of(&app).await.0.to_string(), "");
}

/// A gauge's value in `/metrics`.
async fn gauge(app: &TestApp, name: &str) -> i64 {
    let text = app.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("contact_gateway_{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

#[tokio::test]
async fn subscribers_of_one_operation_share_its_execution_within_their_tenant() {
    let app = spawn_app().await;
    let other_key = other_tenant_key(&app).await;
    let mut first = Subscriber::connect(&app.base_url, &app.key).await;
    first.subscribe("1", Value::Null).await;
    let mut second = Subscriber::connect(&app.base_url, &app.key).await;
    second.subscribe("x", Value::Null).await;
    let mut filtered = Subscriber::connect(&app.base_url, &app.key).await;
    filtered.subscribe("1", json!({ "search": "shared" })).await;
    let mut theirs = Subscriber::connect(&app.base_url, &other_key).await;
    theirs.subscribe("1", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(gauge(&app, "graphql_subscriptions").await, 4);
    // One execution for the two alike, one for the filter, one for the other tenant.
    assert_eq!(gauge(&app, "graphql_subscription_executions").await, 3);

    let id = create(&app, "Shared").await;
    let a = first.change().await;
    assert_eq!(a["contactId"], id);
    assert_eq!(second.change().await, a);
    assert_eq!(filtered.change().await, a);
    theirs.quiet(Duration::from_millis(200)).await;

    // The last subscriber of an operation stops it; the others go on.
    drop(first);
    drop(second);
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while gauge(&app, "graphql_subscription_executions").await != 2 {
        assert!(
            std::time::Instant::now() < until,
            "the shared execution did not stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gauge(&app, "graphql_subscriptions").await, 2);
    rename(&app, &id, "Shared again").await;
    assert_eq!(
        filtered.change().await["contact"]["lastName"],
        "Shared again"
    );
    // A new subscriber of the stopped operation starts it again.
    let mut again = Subscriber::connect(&app.base_url, &app.key).await;
    again.subscribe("1", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    rename(&app, &id, "Third").await;
    assert_eq!(again.change().await["contact"]["lastName"], "Third");
}

#[tokio::test]
async fn every_change_keeps_the_selection_s_field_order() {
    let app = spawn_app().await;
    let mut subscriber = Subscriber::connect(&app.base_url, &app.key).await;
    // `tags` waits on a DataLoader, so it would be resolved after `lastName`.
    subscriber
        .send(
            json!({ "id": "o", "type": "subscribe", "payload": { "query":
            "subscription { contactChanged { kind contact { tags { name } lastName } } }" } }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = create(&app, "Ordered").await;
    rename(&app, &id, "Still ordered").await;
    for _ in 0..2 {
        let text = subscriber.text().await;
        let (tags, last) = (text.find("\"tags\""), text.find("\"lastName\""));
        assert!(tags.is_some() && tags < last, "{text}");
    }
}

/// The feed reads a change's contact with the columns its subscribers select: one that
/// comes later and selects more gets them too, and every field has its value.
#[tokio::test]
async fn each_subscriber_gets_every_field_it_selects_whoever_subscribed_first() {
    let app = spawn_app().await;
    let mut narrow = Subscriber::connect(&app.base_url, &app.key).await;
    narrow.subscribe("n", Value::Null).await; // contact { id lastName }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let id = create(&app, "Narrow").await;
    assert_eq!(narrow.change().await["contact"]["lastName"], "Narrow");

    let mut wide = Subscriber::connect(&app.base_url, &app.key).await;
    wide.send(
        json!({ "id": "w", "type": "subscribe", "payload": { "query":
        "subscription { contactChanged { kind contact { id ...More } } }
         fragment More on Contact { lastName email address { city } dnd { sms } }" } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let patched = app
        .data(
            "mutation($id: ID!) { updateContact(input: { id: $id, patch: {
               email: \"wide@example.com\", address: { city: \"Köln\" }, dnd: { sms: true } } })
               { contact { id } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(patched["updateContact"]["contact"]["id"], id);
    let change = wide.change().await;
    assert_eq!(
        change["contact"],
        json!({ "id": id, "lastName": "Narrow", "email": "wide@example.com",
                "address": { "city": "Köln" }, "dnd": { "sms": true } })
    );
    assert_eq!(
        narrow.change().await["contact"],
        json!({ "id": id, "lastName": "Narrow" })
    );
}

/// The feed reads each change's contact once for every subscriber of the process, with the
/// columns they asked for when they subscribed, added up, and the keys; a later subscriber's
/// columns are read from then on.
#[tokio::test]
async fn the_feed_reads_the_columns_its_subscribers_ask_for() {
    use contact_gateway::events::feed::{ChangeEvent, Feed, KEYS};
    use entity::contact::{Column, Columns};
    use std::sync::Arc;
    use tokio::sync::broadcast::Receiver;
    async fn next(receiver: &mut Receiver<Arc<ChangeEvent>>) -> Arc<ChangeEvent> {
        tokio::time::timeout(Duration::from_secs(5), receiver.recv())
            .await
            .expect("an event within 5 s")
            .expect("an event")
    }
    let app = spawn_app().await;
    let stop = tokio_util::sync::CancellationToken::new();
    let feed = Feed::start(app.db.clone(), 64, stop.clone());
    let names = Columns::NONE.with(Column::LastName);
    let mut first = feed.subscribe(names).await.expect("subscribed");
    let id = create(&app, "Projected").await;
    let event = next(&mut first).await;
    assert_eq!(event.contact_id.to_string(), id);
    assert_eq!(event.columns, KEYS.union(names));
    let contact = event.contact.clone().expect("the contact");
    assert_eq!(contact.last_name.as_deref(), Some("Projected"));

    let emails = Columns::NONE.with(Column::Email);
    let mut second = feed.subscribe(emails).await.expect("subscribed");
    app.data(
        "mutation($id: ID!) { updateContact(input: { id: $id, patch: { email: \"p@example.com\" } }) { contact { id } } }",
        json!({ "id": id }),
    )
    .await;
    for receiver in [&mut first, &mut second] {
        let event = next(receiver).await;
        assert_eq!(event.columns, KEYS.union(names).union(emails));
        let contact = event.contact.clone().expect("the contact");
        assert_eq!(contact.email.as_deref(), Some("p@example.com"));
        assert_eq!(contact.last_name.as_deref(), Some("Projected"));
    }
    stop.cancel();
}

#[tokio::test]
async fn protocol_violations_close_the_socket_with_the_protocol_s_codes() {
    let app = spawn_app().await;
    let mut garbage = Subscriber::open(&app.base_url).await;
    garbage.send(json!({ "type": "hello" })).await;
    assert_eq!(garbage.close_code().await, 4400);

    let mut twice = Subscriber::connect(&app.base_url, &app.key).await;
    twice
        .send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {}", app.key) } }))
        .await;
    assert_eq!(twice.close_code().await, 4429);

    let mut duplicate = Subscriber::connect(&app.base_url, &app.key).await;
    duplicate.subscribe("same", Value::Null).await;
    duplicate.subscribe("same", Value::Null).await;
    assert_eq!(duplicate.close_code().await, 4409);

    // Two root fields: the spec's single-root-field rule.
    let mut two = Subscriber::connect(&app.base_url, &app.key).await;
    two.send(
        json!({ "id": "2", "type": "subscribe", "payload": { "query":
        "subscription { a: contactChanged { kind } b: contactChanged { kind } }" } }),
    )
    .await;
    let error = two.message().await.expect("an error");
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );

    // A client ping is answered with a pong.
    two.send(json!({ "type": "ping" })).await;
    assert_eq!(two.message().await.expect("pong")["type"], "pong");

    // A client's close handshake is answered (RFC 6455 §5.5.1), not cut off.
    two.socket.close(None).await.expect("close sent");
    let answer = tokio::time::timeout(Duration::from_secs(5), two.socket.next())
        .await
        .expect("an answer within 5 s");
    assert!(matches!(answer, Some(Ok(Message::Close(_)))), "{answer:?}");
}

#[tokio::test]
async fn a_filter_applies_to_the_contact_after_its_change() {
    let app = spawn_app().await;
    let mut subscriber = Subscriber::connect(&app.base_url, &app.key).await;
    subscriber
        .subscribe("f", json!({ "search": "wanted" }))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = create(&app, "Unrelated").await;
    let id = create(&app, "Wanted").await;
    assert_eq!(subscriber.change().await["contactId"], id);
    rename(&app, &other, "Also Wanted").await;
    let renamed = subscriber.change().await;
    assert_eq!(renamed["contactId"], other);
    assert_eq!(renamed["kind"], "UPDATED");
    // No longer matching after the change: not delivered.
    rename(&app, &id, "Elsewhere").await;
    subscriber.quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_request_that_is_no_websocket_handshake_is_refused_as_rfc_6455_says() {
    let app = spawn_app().await;
    let handshake = |version: &'static str| {
        reqwest::Client::new()
            .get(format!("{}/graphql", app.base_url))
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", version)
    };
    let response = handshake("8")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 426);
    assert_eq!(response.headers()["sec-websocket-version"], "13");
    let response = handshake("13").send().await.expect("sent");
    assert_eq!(response.status(), 400, "no Sec-WebSocket-Key");
    // RFC 6455 §1.3's example key and accept value; a client that offers other
    // subprotocols only is answered without one.
    let response = handshake("13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header(
            "sec-websocket-protocol",
            "graphql-ws, graphql-transport-ws-2",
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 101);
    assert_eq!(
        response.headers()["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert!(!response.headers().contains_key("sec-websocket-protocol"));
    // Another upgrade (HTTP/2 over cleartext) is not answered: the query runs.
    let response = app
        .client
        .get(format!("{}/graphql?query=%7B__typename%7D", app.base_url))
        .header("connection", "Upgrade, HTTP2-Settings")
        .header("upgrade", "h2c")
        .header("accept", "application/json")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}

#[tokio::test]
async fn a_missing_or_bad_key_closes_the_socket_as_the_protocol_says() {
    let app = spawn_app().await;
    let mut bad = Subscriber::open(&app.base_url).await;
    bad.send(json!({ "type": "connection_init", "payload": { "authorization": "Bearer sk-not-a-real-key-at-all" } }))
        .await;
    assert_eq!(bad.close_code().await, 4403);

    let mut missing = Subscriber::open(&app.base_url).await;
    missing
        .send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(missing.close_code().await, 4403);

    let mut early = Subscriber::open(&app.base_url).await;
    early.subscribe("1", Value::Null).await;
    assert_eq!(early.close_code().await, 4401);
}

#[tokio::test]
async fn a_key_without_contacts_read_may_not_subscribe() {
    use contact_gateway::auth::{Scope, api_keys};
    let app = spawn_app().await;
    let key = api_keys::create_key(
        &app.db,
        tenant_of(&app).await,
        &[Scope::SourcesManage],
        None,
        None,
    )
    .await
    .expect("key");
    let mut subscriber = Subscriber::connect(&app.base_url, &key.key).await;
    subscriber.subscribe("1", Value::Null).await;
    let error = subscriber.message().await.expect("error");
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["payload"][0]["extensions"]["code"], "FORBIDDEN");
}

#[tokio::test]
async fn subscriptions_past_the_limit_per_connection_are_refused() {
    let app = spawn_app_with(|c| c.limits.max_subscriptions_per_connection = 2).await;
    let mut subscriber = Subscriber::connect(&app.base_url, &app.key).await;
    for id in ["1", "2", "3"] {
        subscriber.subscribe(id, Value::Null).await;
    }
    // The three start in no set order: one of them is refused.
    let error = subscriber.message().await.expect("error");
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(
        error["payload"][0]["extensions"]["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    let mut open: Vec<String> = ["1", "2", "3"]
        .into_iter()
        .filter(|id| error["id"] != *id)
        .map(str::to_string)
        .collect();
    // Completing one frees its place at once: a subscribe right after it is taken.
    let completed = open.remove(0);
    subscriber
        .send(json!({ "id": completed, "type": "complete" }))
        .await;
    subscriber.subscribe("4", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    create(&app, "Counted").await;
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let message = subscriber.message().await.expect("next");
        if message["type"] == "complete" {
            assert_eq!(message["id"], completed.as_str()); // the answer to completing it
            continue;
        }
        assert_eq!(message["type"], "next", "{message}");
        ids.push(message["id"].as_str().unwrap_or_default().to_string());
    }
    ids.sort();
    open.push("4".to_string());
    assert_eq!(ids, open);
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_is_told_and_continues() {
    let app = spawn_app_with(|c| c.limits.subscription_buffer = 4).await;
    let mut subscriber = Subscriber::connect(&app.base_url, &app.key).await;
    subscriber.subscribe("1", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Twenty contacts in one transaction: read and broadcast at once, past the buffer.
    let payload = json!(
        (0..20)
            .map(|i| json!({
        "id": format!("c{i}"), "firstName": "Bulk", "lastName": format!("Person {i}"),
        "email": format!("bulk{i}@example.com") }))
            .collect::<Vec<_>>()
    );
    let summary = crate::common::import(
        &app,
        &crate::common::options(
            tenant_of(&app).await,
            contact_gateway::sources::Format::AccountContacts,
            Some("Bulk account"),
        ),
        payload.to_string().as_bytes(),
    )
    .await
    .expect("import");
    assert_eq!(summary.created, 20, "{summary:?}");
    // Every change is either received or counted as skipped by a LAGGED one (the
    // subscriber's operation may fall behind the feed, or the subscriber behind its
    // operation's other subscribers); then new changes come as usual.
    let (mut received, mut skipped, mut lagged) = (0, 0, 0);
    while received + skipped < 20 {
        let change = subscriber.change().await;
        match change["kind"].as_str() {
            Some("LAGGED") => {
                lagged += 1;
                skipped += change["skipped"].as_u64().unwrap_or_default();
                assert_eq!(change["contact"], Value::Null, "{change}");
            }
            Some("CREATED") => received += 1,
            _ => panic!("unexpected change {change}"),
        }
    }
    assert!(
        lagged >= 1,
        "{received} received, {skipped} skipped, never LAGGED"
    );
    assert!(
        received <= 4 * 2,
        "{received} received through a buffer of 4"
    );
    assert_eq!(received + skipped, 20);
    create(&app, "After").await;
    let after = subscriber.change().await;
    assert_eq!(after["contact"]["lastName"], "After", "{after}");
}

#[tokio::test]
async fn a_change_through_one_server_process_reaches_a_subscriber_of_another() {
    let app = spawn_app().await;
    if app.db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        // Across processes, events travel through PostgreSQL; SQLite serves one process.
        return;
    }
    let (_server, base_url) = crate::sources::ServerProcess::serve(&app).await;
    let mut subscriber = Subscriber::connect(&base_url, &app.key).await;
    subscriber.subscribe("1", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let id = create(&app, "Across").await;
    let change = subscriber.change().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(change["contactId"], id);
    assert_eq!(change["contact"]["lastName"], "Across");
}

#[tokio::test]
async fn a_revoked_key_s_connection_is_closed_at_the_next_ping() {
    use contact_gateway::auth::{Scope, api_keys};
    let app = spawn_app_with(|c| {
        c.key_cache_secs = 0;
        c.limits.ws_ping_secs = 1;
    })
    .await;
    let created = api_keys::create_key(
        &app.db,
        tenant_of(&app).await,
        &[Scope::ContactsRead],
        None,
        None,
    )
    .await
    .expect("key");
    let mut subscriber = Subscriber::connect(&app.base_url, &created.key).await;
    subscriber.subscribe("1", Value::Null).await;
    api_keys::revoke_key(&app.db, &created.record.prefix)
        .await
        .expect("revoked");
    assert_eq!(subscriber.close_code().await, 4403);
}

#[tokio::test]
async fn a_merge_is_merged_for_the_folded_contact_and_updated_for_the_survivor() {
    let app = spawn_app().await;
    let mut subscriber = Subscriber::connect(&app.base_url, &app.key).await;
    subscriber.subscribe("1", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let target = create(&app, "Target").await;
    let folded = create(&app, "Folded").await;
    for _ in 0..2 {
        assert_eq!(subscriber.change().await["kind"], "CREATED");
    }
    app.data(
        "mutation($t: ID!, $s: [ID!]!) { mergeContacts(input: { targetId: $t, sourceIds: $s }) { contact { id } } }",
        json!({ "t": target, "s": [folded] }),
    )
    .await;
    let mut changes = [subscriber.change().await, subscriber.change().await];
    changes.sort_by_key(|c| c["kind"].as_str().unwrap_or_default().to_string());
    assert_eq!(changes[0]["kind"], "MERGED");
    assert_eq!(changes[0]["contactId"], folded);
    assert_eq!(changes[0]["survivorId"], target);
    assert!(changes[0]["contact"].is_null());
    assert_eq!(changes[1]["kind"], "UPDATED");
    assert_eq!(changes[1]["contactId"], target);
}

#[tokio::test]
async fn a_sync_run_s_changes_reach_subscribers_and_a_restore_too() {
    use crate::vendors::{Vendor, start_vendor};
    let vendor = Vendor::with_clients(3, "2025-02-01T00:00:00.000Z");
    let url = start_vendor(vendor.clone()).await;
    let app = spawn_app().await;
    let created = crate::sources::create(&app, crate::sources::crm(&url)).await;
    assert!(created["errors"].is_null(), "{created}");
    let mut subscriber = Subscriber::connect(&app.base_url, &app.key).await;
    subscriber.subscribe("1", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sync = r#"mutation { syncSource(input: { name: "crm", wait: true, mode: FULL, allowMassDeletion: true }) { run { status } } }"#;
    app.data(sync, json!({})).await;
    for _ in 0..3 {
        assert_eq!(subscriber.change().await["kind"], "CREATED");
    }
    // Record 2 disappears upstream: its contact is archived.
    vendor
        .records
        .lock()
        .expect("lock")
        .retain(|r| r["id"] != 2);
    app.data(sync, json!({})).await;
    let archived = subscriber.change().await;
    assert_eq!(archived["kind"], "ARCHIVED", "{archived}");
    let id = archived["contactId"].as_str().expect("id").to_string();
    app.data(
        "mutation($id: ID!) { restoreContact(input: { id: $id }) { contact { archivedAt } } }",
        json!({ "id": id }),
    )
    .await;
    let restored = subscriber.change().await;
    assert_eq!(restored["kind"], "RESTORED");
    assert_eq!(restored["contactId"], id);
}

#[tokio::test]
async fn queries_and_mutations_are_sent_to_http_not_run_over_the_socket() {
    let app = spawn_app().await;
    let mut subscriber = Subscriber::connect(&app.base_url, &app.key).await;
    subscriber
        .send(json!({ "id": "q", "type": "subscribe", "payload": { "query": "mutation { createContact(input: { contact: { lastName: \"Sneaky\" } }) { contact { id } } }" } }))
        .await;
    let error = subscriber.message().await.expect("error");
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["id"], "q");
    assert_eq!(error["payload"][0]["extensions"]["code"], "BAD_REQUEST");
    let count = app
        .data(
            "{ contacts(filter: { search: \"Sneaky\" }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(count["contacts"]["totalCount"], 0, "nothing ran");
    // The socket still serves subscriptions.
    subscriber.subscribe("s", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    create(&app, "After").await;
    assert_eq!(subscriber.change().await["kind"], "CREATED");
}
