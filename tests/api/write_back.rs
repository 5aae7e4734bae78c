//! Write-back (issue 17) against the stand-in for seed 003 over real HTTP: only the changed
//! fields are sent, with an idempotency key and the precondition; several changes made
//! before delivery are one request; retries wait out `Retry-After`; a 404 fails with the
//! vendor's message and can be retried; a 412 is a conflict that overwrites nothing; a
//! value the source would refuse fails the mutation and queues nothing; the next sync does
//! not take the gateway's own write for a vendor change.
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{
    TestApp, failing_fields, single_error, snapshot, spawn_app_on_database_of, spawn_app_with,
};
use crate::sources::{ServerProcess, create, crm};
use crate::vendors::{Vendor, start_vendor};

const UPDATED: &str = "2025-02-01T10:00:00.429Z";

/// A gateway delivering write-backs (unless `deliver` is false), with the source `crm` on
/// `vendor` written back with the format's defaults, synced once.
async fn app_writing_to(vendor: &Vendor, deliver: bool) -> TestApp {
    app_writing_to_with(vendor, |c| c.sync.no_write_back = !deliver).await
}

/// [`app_writing_to`], configured by `configure`.
async fn app_writing_to_with(
    vendor: &Vendor,
    configure: impl FnOnce(&mut contact_gateway::config::Config),
) -> TestApp {
    let url = start_vendor(vendor.clone()).await;
    let app = spawn_app_with(configure).await;
    let mut input = crm(&url);
    input["write"] = json!({});
    let created = create(&app, input).await;
    assert!(created["errors"].is_null(), "{created}");
    assert_eq!(created["data"]["createSource"]["source"]["name"], "crm");
    sync(&app).await;
    app
}

async fn sync(app: &TestApp) -> Value {
    let data = app
        .data(
            r#"mutation { syncSource(input: { name: "crm", wait: true, mode: FULL }) {
                run { status created updated unchanged error { code message } } } }"#,
            json!({}),
        )
        .await;
    let run = data["syncSource"]["run"].clone();
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    run
}

/// The id of the contact of vendor record `id`.
async fn contact_of(app: &TestApp, id: u64) -> String {
    let ids = app
        .contact_ids(json!({ "email": format!("person{id}@example.com") }))
        .await;
    assert_eq!(ids.len(), 1);
    ids[0].clone()
}

async fn update(app: &TestApp, id: &str, patch: Value) -> Value {
    app.graphql(
        "mutation($id: ID!, $patch: ContactPatch!) { updateContact(input: { id: $id, patch: $patch }) { contact { id lastName } } }",
        json!({ "id": id, "patch": patch }),
    )
    .await
}

async fn write_backs(app: &TestApp, id: &str) -> Vec<Value> {
    let data = app
        .data(
            "query($id: ID!) { contact(id: $id) { writeBacks { id source operation body state attempts lastError deliveredAt } } }",
            json!({ "id": id }),
        )
        .await;
    data["contact"]["writeBacks"]
        .as_array()
        .expect("writeBacks")
        .clone()
}

/// Waits (up to 10 s) until the contact's newest change is in `state`; returns it.
async fn settled(app: &TestApp, id: &str, state: &str) -> Value {
    for _ in 0..500 {
        let changes = write_backs(app, id).await;
        if let Some(last) = changes.last()
            && last["state"] == state
        {
            return last.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not {state}: {:?}", write_backs(app, id).await);
}

fn record(vendor: &Vendor, id: u64) -> Value {
    vendor
        .records
        .lock()
        .expect("lock")
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_change_reaches_the_vendor_with_only_its_fields_and_is_not_echoed_back() {
    let vendor = Vendor::with_clients(3, UPDATED);
    let app = app_writing_to(&vendor, true).await;
    let id = contact_of(&app, 2).await;
    let updated = update(&app, &id, json!({ "lastName": "Smith", "role": "Buyer" })).await;
    assert!(updated["errors"].is_null(), "{updated}");
    let change = settled(&app, &id, "DELIVERED").await;
    assert_eq!(change["source"], "crm");
    assert_eq!(change["operation"], "UPDATE");
    assert_eq!(change["attempts"], 1);
    assert!(change["deliveredAt"].is_string());
    let writes = vendor.writes.lock().expect("lock").clone();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "PATCH");
    assert_eq!(writes[0].id, "2");
    assert_eq!(
        writes[0].body,
        json!({ "surname": "Smith", "role": "Buyer" })
    );
    assert_eq!(
        writes[0].idempotency_key.as_deref(),
        change["id"].as_str(),
        "the change's id is its idempotency key"
    );
    // Seed 003's precondition: the record's update time seen at the sync, in whole seconds.
    assert_eq!(
        writes[0].if_unmodified_since.as_deref(),
        Some("Sat, 01 Feb 2025 10:00:00 GMT")
    );
    assert_eq!(record(&vendor, 2)["surname"], "Smith");
    assert_eq!(
        record(&vendor, 2)["name"],
        "Person2",
        "fields not sent stay"
    );

    // A later local change is not delivered yet (the vendor asks for a minute) when the
    // next sync reads the gateway's first write back: that write is known as the gateway's
    // own, so it does not undo the later change.
    vendor
        .write_failures
        .lock()
        .expect("lock")
        .push((503, Some("60")));
    update(&app, &id, json!({ "lastName": "Jones" })).await;
    settled(&app, &id, "PENDING").await;
    let run = sync(&app).await;
    assert_eq!(run["updated"], 0, "{run}");
    let after = app
        .data(
            "query($id: ID!) { contact(id: $id) { lastName role } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        after["contact"],
        json!({ "lastName": "Jones", "role": "Buyer" })
    );
    // Changes of contacts that came from no writable source queue nothing.
    let made = app
        .data(
            r#"mutation { createContact(input: { contact: { firstName: "Local" } }) { contact { id } } }"#,
            json!({}),
        )
        .await;
    let local = made["createContact"]["contact"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    update(&app, &local, json!({ "lastName": "Only" })).await;
    assert!(write_backs(&app, &local).await.is_empty());
}

#[tokio::test]
async fn a_value_a_writable_source_refuses_fails_the_mutation_and_queues_nothing() {
    let vendor = Vendor::with_clients(2, UPDATED);
    let app = app_writing_to(&vendor, false).await;
    let id = contact_of(&app, 1).await;
    let before = snapshot(&app).await;
    // Seed 003 takes at most 100 characters of description; the gateway 10,000.
    let response = update(
        &app,
        &id,
        json!({ "description": "x".repeat(101), "role": "ok" }),
    )
    .await;
    let error = single_error(&response, "VALIDATION_FAILED");
    assert_eq!(failing_fields(error), ["input.patch.description"]);
    assert!(
        error["extensions"]["failures"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("\"crm\"")),
        "{error}"
    );
    assert_eq!(snapshot(&app).await, before, "nothing written anywhere");
}

/// The statements `updateContact` of contact `id` sends (the worker is off: no other SQL).
async fn statements_of_update(app: &TestApp, id: &str, role: &str) -> u64 {
    let before = app.sql_statements().await;
    let response = update(app, id, json!({ "role": role })).await;
    assert!(response["errors"].is_null(), "{response}");
    app.sql_statements().await - before
}

#[tokio::test]
async fn a_change_queued_for_a_source_costs_no_extra_statement() {
    let vendor = Vendor::with_clients(2, UPDATED);
    let app = app_writing_to(&vendor, false).await;
    let synced = contact_of(&app, 1).await;
    let created = app
        .data(
            r#"mutation { createContact(input: { contact: { lastName: "Local" } }) { contact { id } } }"#,
            json!({}),
        )
        .await;
    let local = created["createContact"]["contact"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    // The first change reads the tenant's writable sources, then they are cached.
    statements_of_update(&app, &synced, "warm").await;
    let before = write_backs(&app, &synced).await.len();
    let queued = statements_of_update(&app, &synced, "Buyer").await;
    let not_queued = statements_of_update(&app, &local, "Buyer").await;
    assert_eq!(
        write_backs(&app, &synced).await.len(),
        before + 1,
        "{:?}",
        write_backs(&app, &synced).await
    );
    assert!(write_backs(&app, &local).await.is_empty());
    // The contact is read with its records; the change rides with the contact's UPDATE.
    assert_eq!(queued, not_queued);
}

#[tokio::test]
async fn changes_made_before_delivery_are_one_request_with_the_latest_values() {
    let vendor = Vendor::with_clients(2, UPDATED);
    let app = app_writing_to(&vendor, false).await;
    let id = contact_of(&app, 1).await;
    update(&app, &id, json!({ "lastName": "A", "role": "First" })).await;
    update(&app, &id, json!({ "lastName": "B" })).await;
    update(&app, &id, json!({ "notes": "n" })).await;
    let queued = write_backs(&app, &id).await;
    assert_eq!(queued.len(), 3, "{queued:?}");
    assert!(queued.iter().all(|q| q["state"] == "PENDING"));
    // Another process on the database delivers them, as one request.
    let worker = spawn_app_on_database_of(&app, |c| c.sync.no_write_back = false).await;
    let change = settled(&worker, &id, "DELIVERED").await;
    assert_eq!(
        write_backs(&app, &id).await.len(),
        1,
        "merged into the first"
    );
    let writes = vendor.writes.lock().expect("lock").clone();
    assert_eq!(writes.len(), 1);
    assert_eq!(
        writes[0].body,
        json!({ "surname": "B", "role": "First", "notes": "n" })
    );
    assert_eq!(change["body"], writes[0].body);
}

#[tokio::test]
async fn failures_are_retried_as_the_vendor_says_and_a_refusal_fails_with_its_message() {
    let vendor = Vendor::with_clients(2, UPDATED);
    vendor
        .write_failures
        .lock()
        .expect("lock")
        .extend([(503, None), (429, Some("1"))]);
    let app = app_writing_to(&vendor, true).await;
    let id = contact_of(&app, 1).await;
    update(&app, &id, json!({ "role": "Retried" })).await;
    let change = settled(&app, &id, "DELIVERED").await;
    assert_eq!(change["attempts"], 3);
    let writes = vendor.writes.lock().expect("lock").clone();
    assert_eq!(writes.len(), 3);
    assert!(
        writes
            .iter()
            .all(|w| w.idempotency_key == writes[0].idempotency_key),
        "one key on every retry"
    );
    // The 429 asked for 1 s, ten times the tests' backoff: the third attempt waited for it.
    assert!(
        writes[2].at - writes[1].at >= Duration::from_millis(950),
        "{:?}",
        writes[2].at - writes[1].at
    );

    // The record is gone at the vendor: 404, FAILED with the vendor's message.
    remove_at_vendor(&vendor, 2);
    let gone = contact_of(&app, 2).await;
    update(&app, &gone, json!({ "role": "Lost" })).await;
    let failed = settled(&app, &gone, "FAILED").await;
    assert_eq!(failed["attempts"], 1, "a 404 is not retried");
    assert_eq!(
        failed["lastError"],
        "HTTP 404: not_found: Contact not found"
    );
    let listed = app
        .data(
            "{ writeBacks(filter: { state: FAILED }) { totalCount nodes { id contactId } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["writeBacks"]["totalCount"], 1);
    assert_eq!(listed["writeBacks"]["nodes"][0]["contactId"], gone.as_str());
    let retried = app
        .data(
            "mutation($id: ID!) { retryWriteBack(input: { id: $id }) { writeBack { state attempts } } }",
            json!({ "id": failed["id"] }),
        )
        .await;
    assert_eq!(retried["retryWriteBack"]["writeBack"]["attempts"], 0);
    settled(&app, &gone, "FAILED").await;
    assert_eq!(
        vendor.writes.lock().expect("lock").len(),
        5,
        "sent again once"
    );
    // Only a FAILED or CONFLICT change can be retried.
    let again = app
        .graphql(
            "mutation($id: ID!) { retryWriteBack(input: { id: $id }) { writeBack { state } } }",
            json!({ "id": change["id"] }),
        )
        .await;
    single_error(&again, "VALIDATION_FAILED");

    // Deliveries are counted by outcome, the queue by state.
    let metrics = app.metrics_text().await;
    let line = |outcome: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("contact_gateway_write_back_deliveries_total{")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .map(str::to_string)
    };
    assert_eq!(line("retry").as_deref(), Some("2"), "{metrics}");
    assert_eq!(line("delivered").as_deref(), Some("1"));
    assert_eq!(line("failed").as_deref(), Some("2"));
    // The worker counts the queue every 15 polls (300 ms here).
    let mut counted = false;
    for _ in 0..100 {
        if app
            .metrics_text()
            .await
            .contains("contact_gateway_write_back_queue{state=\"FAILED\"} 1")
        {
            counted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(counted, "the FAILED change is counted");
    assert!(metrics.contains("contact_gateway_write_back_latency_seconds_count{"));
}

/// Someone edits vendor record `id` after the sync: `surname` becomes `value`.
/// Deletes record `id` at the vendor (its write API then answers 404).
fn remove_at_vendor(vendor: &Vendor, id: u64) {
    vendor
        .records
        .lock()
        .expect("lock")
        .retain(|r| r["id"] != id);
}

fn edit_at_vendor(vendor: &Vendor, id: u64, value: &str, at: &str) {
    let mut records = vendor.records.lock().expect("lock");
    let record = records.iter_mut().find(|r| r["id"] == id).expect("record");
    record["surname"] = json!(value);
    record["updated_at"] = json!(at);
}

/// Waits (up to 10 s) for the tenant's conflicts of contact `id` to number `n`.
async fn conflicts_of(app: &TestApp, id: &str, n: usize) -> Vec<Value> {
    let query = "query($id: ID!) { writeConflicts(filter: { contactId: $id }) { nodes {
        id writeBackId source field vendorField ours theirs detectedAt resolution resolvedAt } } }";
    for _ in 0..500 {
        let data = app.data(query, json!({ "id": id })).await;
        let nodes = data["writeConflicts"]["nodes"]
            .as_array()
            .expect("nodes")
            .clone();
        if nodes.len() == n {
            return nodes;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not {n} conflicts of {id}");
}

async fn last_name(app: &TestApp, id: &str) -> Value {
    app.data(
        "query($id: ID!) { contact(id: $id) { lastName } }",
        json!({ "id": id }),
    )
    .await["contact"]["lastName"]
        .clone()
}

async fn resolve(app: &TestApp, conflict: &Value, keep: &str) -> Value {
    app.data(
        "mutation($id: ID!, $keep: Keep!) { resolveWriteConflict(input: { id: $id, keep: $keep }) {
            writeConflict { resolution resolvedAt } } }",
        json!({ "id": conflict["id"], "keep": keep }),
    )
    .await["resolveWriteConflict"]["writeConflict"]
        .clone()
}

#[tokio::test]
async fn a_record_changed_at_the_vendor_is_a_conflict_kept_until_someone_resolves_it() {
    let vendor = Vendor::with_clients(3, UPDATED);
    let app = app_writing_to(&vendor, true).await;
    let one = contact_of(&app, 1).await;
    edit_at_vendor(&vendor, 1, "Vendor", "2025-03-01T00:00:00.000Z");
    update(&app, &one, json!({ "lastName": "Gateway" })).await;
    let change = settled(&app, &one, "CONFLICT").await;
    assert!(
        change["lastError"]
            .as_str()
            .is_some_and(|e| e.starts_with("HTTP 412")),
        "{change}"
    );
    assert_eq!(
        record(&vendor, 1)["surname"],
        "Vendor",
        "nothing overwritten"
    );
    // The sync started at once reads the vendor's value: one conflict, open.
    let conflicts = conflicts_of(&app, &one, 1).await;
    let conflict = &conflicts[0];
    assert_eq!(conflict["writeBackId"], change["id"]);
    assert_eq!(
        (
            &conflict["field"],
            &conflict["vendorField"],
            &conflict["ours"],
            &conflict["theirs"]
        ),
        (
            &json!("lastName"),
            &json!("surname"),
            &json!("Gateway"),
            &json!("Vendor")
        )
    );
    assert_eq!(conflict["resolution"], Value::Null);
    let runs = app
        .data(
            r#"{ source(name: "crm") { runs(first: 5) { trigger } } }"#,
            json!({}),
        )
        .await;
    assert!(
        runs["source"]["runs"]
            .as_array()
            .expect("runs")
            .iter()
            .any(|r| r["trigger"] == "WRITE_CONFLICT"),
        "{runs}"
    );
    // Until it is resolved the contact keeps the gateway's value, whatever syncs read.
    sync(&app).await;
    assert_eq!(last_name(&app, &one).await, "Gateway");
    // OURS: sent again against the vendor's new version, and taken.
    let resolved = resolve(&app, conflict, "OURS").await;
    assert_eq!(resolved["resolution"], "OURS");
    settled(&app, &one, "DELIVERED").await;
    assert_eq!(record(&vendor, 1)["surname"], "Gateway");
    let writes = vendor.writes.lock().expect("lock").clone();
    let last = writes.last().expect("write");
    assert_eq!(
        last.if_unmodified_since.as_deref(),
        Some("Sat, 01 Mar 2025 00:00:00 GMT"),
        "against the version the sync read"
    );
    assert_ne!(last.idempotency_key, writes[0].idempotency_key);

    // THEIRS: the contact takes the vendor's value; the change is not sent.
    let two = contact_of(&app, 2).await;
    edit_at_vendor(&vendor, 2, "Theirs", "2025-03-02T00:00:00.000Z");
    update(&app, &two, json!({ "lastName": "Mine" })).await;
    let conflict = conflicts_of(&app, &two, 1).await[0].clone();
    let sent = vendor.writes.lock().expect("lock").len();
    assert_eq!(
        resolve(&app, &conflict, "THEIRS").await["resolution"],
        "THEIRS"
    );
    assert_eq!(last_name(&app, &two).await, "Theirs");
    let dropped = settled(&app, &two, "FAILED").await;
    assert!(
        dropped["lastError"]
            .as_str()
            .is_some_and(|e| e.starts_with("conflict resolved")),
        "{dropped}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        vendor.writes.lock().expect("lock").len(),
        sent,
        "nothing sent"
    );
    // A resolved conflict is not resolved twice.
    let again = app
        .graphql(
            "mutation($id: ID!) { resolveWriteConflict(input: { id: $id, keep: OURS }) { writeConflict { id } } }",
            json!({ "id": conflict["id"] }),
        )
        .await;
    single_error(&again, "VALIDATION_FAILED");
}

#[tokio::test]
async fn a_conflict_policy_resolves_conflicts_as_soon_as_the_vendor_s_values_are_read() {
    let vendor = Vendor::with_clients(3, UPDATED);
    let app = app_writing_to(&vendor, true).await;
    let set_policy = |policy: &'static str| {
        let app = &app;
        async move {
            let data = app
                .data(
                    "mutation($p: String!) { updateSource(input: { name: \"crm\", write: { conflictPolicy: $p } }) { source { write { conflictPolicy precondition } } } }",
                    json!({ "p": policy }),
                )
                .await;
            assert_eq!(
                data["updateSource"]["source"]["write"],
                json!({ "conflictPolicy": policy, "precondition": "if-unmodified-since" })
            );
        }
    };
    // gateway-wins: sent again against the new version, without anyone's help.
    set_policy("gateway-wins").await;
    let one = contact_of(&app, 1).await;
    edit_at_vendor(&vendor, 1, "Vendor", "2025-03-01T00:00:00.000Z");
    update(&app, &one, json!({ "lastName": "Gateway" })).await;
    let conflict = conflicts_of(&app, &one, 1).await[0].clone();
    assert_eq!(conflict["resolution"], "OURS");
    settled(&app, &one, "DELIVERED").await;
    assert_eq!(record(&vendor, 1)["surname"], "Gateway");
    assert_eq!(last_name(&app, &one).await, "Gateway");

    // source-wins: the vendor's value comes in with that sync; the change is dropped.
    set_policy("source-wins").await;
    let two = contact_of(&app, 2).await;
    edit_at_vendor(&vendor, 2, "Vendor", "2025-03-02T00:00:00.000Z");
    update(&app, &two, json!({ "lastName": "Gateway" })).await;
    let conflict = conflicts_of(&app, &two, 1).await[0].clone();
    assert_eq!(conflict["resolution"], "THEIRS");
    settled(&app, &two, "FAILED").await;
    assert_eq!(last_name(&app, &two).await, "Vendor");
    assert_eq!(record(&vendor, 2)["surname"], "Vendor");
}

/// Queues one change per contact of vendor records `1..=n` (`role` = `Role {i}`), through a
/// gateway that delivers nothing itself.
async fn queue_roles(app: &TestApp, n: u64) {
    for i in 1..=n {
        let id = contact_of(app, i).await;
        let updated = update(app, &id, json!({ "role": format!("Role {i}") })).await;
        assert!(updated["errors"].is_null(), "{updated}");
    }
}

/// Waits (up to 20 s) until `n` changes of the tenant are DELIVERED.
async fn delivered(app: &TestApp, n: i64) {
    let query = "{ writeBacks(filter: { state: DELIVERED }) { totalCount } }";
    for _ in 0..1000 {
        if app.data(query, json!({})).await["writeBacks"]["totalCount"] == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "not all delivered: {}",
        app.data(
            "{ writeBacks(first: 100) { nodes { state attempts lastError } } }",
            json!({})
        )
        .await
    );
}

#[tokio::test]
async fn two_server_processes_share_the_queue_without_sending_a_change_twice() {
    let vendor = Vendor::with_clients(40, UPDATED);
    vendor
        .write_delay_ms
        .store(20, std::sync::atomic::Ordering::SeqCst);
    let app = app_writing_to(&vendor, false).await;
    queue_roles(&app, 40).await;
    let servers: Vec<ServerProcess> = (0..2).map(|_| ServerProcess::start(&app)).collect();
    delivered(&app, 40).await;
    drop(servers);
    let writes = vendor.writes.lock().expect("lock").clone();
    let mut ids: Vec<&str> = writes.iter().map(|w| w.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(writes.len(), 40, "each change sent once");
    assert_eq!(ids.len(), 40);
    for i in 1..=40 {
        assert_eq!(record(&vendor, i)["role"], format!("Role {i}"));
    }
}

#[tokio::test]
async fn a_server_killed_mid_delivery_delivers_everything_after_a_restart_with_the_same_keys() {
    let vendor = Vendor::with_clients(10, UPDATED);
    // Each write is applied at once but answered a second later: a kill in that second
    // loses the answer, not the write.
    vendor
        .write_delay_ms
        .store(1_000, std::sync::atomic::Ordering::SeqCst);
    let app = app_writing_to(&vendor, false).await;
    queue_roles(&app, 10).await;
    // A second change of contact 1 while the first is queued: the vendor ends with it.
    let first = contact_of(&app, 1).await;
    update(&app, &first, json!({ "role": "Final", "notes": "kept" })).await;
    let server = ServerProcess::start(&app);
    for _ in 0..500 {
        if !vendor.writes.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent_before_kill = vendor.writes.lock().expect("lock").len();
    assert!(sent_before_kill >= 1, "requests in flight");
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &server.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let (status, _) = server.finish().await;
    assert!(!status.success(), "killed");
    vendor
        .write_delay_ms
        .store(0, std::sync::atomic::Ordering::SeqCst);
    let restarted = ServerProcess::start(&app);
    delivered(&app, 10).await;
    drop(restarted);
    for i in 2..=10 {
        assert_eq!(record(&vendor, i)["role"], format!("Role {i}"));
    }
    assert_eq!(record(&vendor, 1)["role"], "Final");
    assert_eq!(record(&vendor, 1)["notes"], "kept");
    // What was in flight at the kill was sent again under its key, and applied once.
    let writes = vendor.writes.lock().expect("lock").clone();
    let in_flight = &writes[..sent_before_kill];
    for write in in_flight {
        let again = writes[sent_before_kill..]
            .iter()
            .find(|w| w.idempotency_key == write.idempotency_key);
        assert!(
            again.is_some_and(|w| w.body == write.body),
            "{write:?} not repeated"
        );
    }
    assert_eq!(vendor.applied.lock().expect("lock").len(), 10);
}

#[tokio::test]
async fn a_deleted_contact_is_deleted_at_sources_that_delete_and_only_there() {
    let vendor = Vendor::with_clients(3, UPDATED);
    let app = app_writing_to(&vendor, true).await;
    let delete = "mutation($id: ID!) { deleteContact(input: { id: $id }) { deletedContactId } }";
    // Without `write.delete`, a deletion stays here.
    let one = contact_of(&app, 1).await;
    app.data(delete, json!({ "id": one })).await;
    let queued =
        "query($id: ID!) { writeBacks(filter: { contactId: $id }) { nodes { operation state } } }";
    assert_eq!(
        app.data(queued, json!({ "id": one })).await["writeBacks"]["nodes"],
        json!([])
    );
    let set = app
        .data(
            r#"mutation { updateSource(input: { name: "crm", write: { delete: true } }) { source { write { delete } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(set["updateSource"]["source"]["write"]["delete"], true);
    let two = contact_of(&app, 2).await;
    app.data(delete, json!({ "id": two })).await;
    for _ in 0..500 {
        if vendor.records.lock().expect("lock").len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(record(&vendor, 2), Value::Null, "deleted at the vendor");
    assert_ne!(record(&vendor, 1), Value::Null);
    let writes = vendor.writes.lock().expect("lock").clone();
    assert_eq!(
        writes
            .iter()
            .map(|w| (w.method.as_str(), w.id.as_str()))
            .collect::<Vec<_>>(),
        [("DELETE", "2")]
    );
    for _ in 0..500 {
        let nodes = app.data(queued, json!({ "id": two })).await["writeBacks"]["nodes"].clone();
        if nodes == json!([{ "operation": "DELETE", "state": "DELIVERED" }]) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the DELETE was not recorded as delivered");
}

#[tokio::test]
async fn another_tenant_sees_and_resolves_none_of_the_queue() {
    let vendor = Vendor::with_clients(2, UPDATED);
    let app = app_writing_to(&vendor, true).await;
    let one = contact_of(&app, 1).await;
    edit_at_vendor(&vendor, 1, "Vendor", "2025-03-01T00:00:00.000Z");
    update(&app, &one, json!({ "lastName": "Gateway" })).await;
    let conflict = conflicts_of(&app, &one, 1).await[0].clone();
    let change = settled(&app, &one, "CONFLICT").await;
    let intruder = crate::common::other_tenant_client(&app).await;
    let post = |query: &'static str, variables: Value| {
        let intruder = intruder.clone();
        let url = format!("{}/graphql", app.base_url);
        async move {
            intruder
                .post(url)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await
                .expect("response")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let lists = post(
        "query($c: ID!) { writeBacks { totalCount } writeConflicts { totalCount }
           mine: writeBacks(filter: { contactId: $c }) { totalCount } }",
        json!({ "c": one }),
    )
    .await;
    assert_eq!(
        lists["data"],
        json!({ "writeBacks": { "totalCount": 0 }, "writeConflicts": { "totalCount": 0 },
                "mine": { "totalCount": 0 } })
    );
    let before = snapshot(&app).await;
    let retried = post(
        "mutation($id: ID!) { retryWriteBack(input: { id: $id }) { writeBack { id } } }",
        json!({ "id": change["id"] }),
    )
    .await;
    single_error(&retried, "NOT_FOUND");
    let resolved = post(
        "mutation($id: ID!) { resolveWriteConflict(input: { id: $id, keep: OURS }) { writeConflict { id } } }",
        json!({ "id": conflict["id"] }),
    )
    .await;
    single_error(&resolved, "NOT_FOUND");
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn tag_changes_reach_sources_whose_records_carry_tags() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = crate::vendors::start_paged_vendors(seen.clone()).await;
    let app = crate::vendors::app_with_sources_and(
        |tenant| {
            format!(
                "[[sources]]\nname = \"helpdesk\"\nformat = \"business-contacts\"\n\
                 url = \"{base}/api/v1/businesses/{{businessId}}/contacts\"\nbusinesses = [\"b2\"]\n\
                 tenant = \"{tenant}\"\ntoken_env = \"CG_TEST_VENDOR_TOKEN\"\nwrite = {{}}\n"
            )
        },
        |c| c.sync.no_write_back = false,
    )
    .await;
    let synced = app
        .data(
            r#"mutation { syncSource(input: { name: "helpdesk", wait: true }) { created } }"#,
            json!({}),
        )
        .await;
    assert_eq!(synced["syncSource"]["created"], 30, "{synced}");
    let id = app
        .contact_ids(json!({ "email": "help1@b2.example" }))
        .await[0]
        .clone();
    let business = app
        .data(
            "query($id: ID!) { contact(id: $id) { business { id } } }",
            json!({ "id": id }),
        )
        .await["contact"]["business"]["id"]
        .clone();
    let made = app
        .data(
            "mutation($b: ID!) { createTag(input: { businessId: $b, name: \"Gold\" }) { tag { id } } }",
            json!({ "b": business }),
        )
        .await;
    assert!(made["createTag"]["tag"]["id"].is_string(), "{made}");
    seen.lock().expect("lock").clear();
    let writes = |seen: &Arc<Mutex<Vec<String>>>| -> Vec<String> {
        seen.lock()
            .expect("lock")
            .iter()
            .filter(|s| s.starts_with("PATCH"))
            .cloned()
            .collect()
    };
    let wait_for = |n: usize| {
        let seen = seen.clone();
        async move {
            for _ in 0..500 {
                if writes(&seen).len() >= n {
                    return writes(&seen);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("{:?}", writes(&seen));
        }
    };
    app.data(
        "mutation($id: ID!) { addTagsToContact(input: { contactId: $id, tagNames: [\"Gold\"] }) { contact { id } } }",
        json!({ "id": id }),
    )
    .await;
    // The vendor's own tag by its id, the one made here by name.
    assert_eq!(
        wait_for(1).await,
        [
            r#"PATCH /api/v1/businesses/b2/contacts/b2-1 {"tags":[{"name":"Gold"},{"id":"b2-vip","name":"VIP"}]}"#
        ]
    );
    app.data(
        "mutation($id: ID!) { removeTagsFromContact(input: { contactId: $id, tagNames: [\"VIP\"] }) { contact { id } } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        wait_for(2).await[1],
        r#"PATCH /api/v1/businesses/b2/contacts/b2-1 {"tags":[{"name":"Gold"}]}"#
    );
}

#[tokio::test]
async fn a_second_change_before_the_next_sync_is_made_against_the_vendor_s_new_version() {
    let vendor = Vendor::with_clients(2, UPDATED);
    let app = app_writing_to(&vendor, true).await;
    let id = contact_of(&app, 1).await;
    update(&app, &id, json!({ "lastName": "First" })).await;
    settled(&app, &id, "DELIVERED").await;
    let answered = record(&vendor, 1)["updated_at"]
        .as_str()
        .expect("time")
        .to_string();
    // The vendor's update time moved with the first write; the second is made against it
    // (against the last sync's, the vendor would answer 412).
    update(&app, &id, json!({ "lastName": "Second" })).await;
    for _ in 0..500 {
        let changes = write_backs(&app, &id).await;
        if changes.len() == 2
            && changes[1]["state"] != "PENDING"
            && changes[1]["state"] != "DELIVERING"
        {
            assert_eq!(changes[1]["state"], "DELIVERED", "{changes:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(record(&vendor, 1)["surname"], "Second");
    let writes = vendor.writes.lock().expect("lock").clone();
    let expected = chrono::DateTime::parse_from_rfc3339(&answered)
        .expect("time")
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    assert_eq!(
        writes[1].if_unmodified_since.as_deref(),
        Some(expected.as_str())
    );
}

#[tokio::test]
async fn delivered_changes_are_removed_after_their_retention() {
    let vendor = Vendor::with_clients(2, UPDATED);
    let app = app_writing_to_with(&vendor, |c| {
        c.sync.no_write_back = false;
        c.sync.write_back_retention_days = 0;
    })
    .await;
    let id = contact_of(&app, 1).await;
    update(&app, &id, json!({ "role": "Kept a moment" })).await;
    let one = contact_of(&app, 2).await;
    // A change that cannot be delivered (the record is gone at the vendor) is kept.
    vendor
        .records
        .lock()
        .expect("lock")
        .retain(|r| r["id"] != 2);
    update(&app, &one, json!({ "role": "Failing" })).await;
    for _ in 0..500 {
        if vendor.writes.lock().expect("lock").len() == 2 && write_backs(&app, &id).await.is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(record(&vendor, 1)["role"], "Kept a moment");
    assert!(
        write_backs(&app, &id).await.is_empty(),
        "the delivered change is gone"
    );
    let failed = settled(&app, &one, "FAILED").await;
    assert_eq!(failed["attempts"], 1);
}

#[tokio::test]
async fn write_back_outcomes_are_told_to_subscribers() {
    let vendor = Vendor::with_clients(2, UPDATED);
    let app = app_writing_to(&vendor, true).await;
    let id = contact_of(&app, 1).await;
    let mut subscriber = crate::subscriptions::Subscriber::connect(&app.base_url, &app.key).await;
    subscriber.subscribe("1", Value::Null).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let updated = update(&app, &id, json!({ "role": "Told" })).await;
    assert!(updated["errors"].is_null(), "{updated}");
    let change = subscriber.change().await;
    assert_eq!(change["kind"], "UPDATED");
    assert_eq!(change["changedFields"], json!(["role"]));
    let delivered = subscriber.change().await;
    assert_eq!(delivered["kind"], "WRITE_BACK_DELIVERED", "{delivered}");
    assert_eq!(delivered["contactId"], id);

    // Changed at the vendor since the last sync (and since the delivery above): a conflict.
    edit_at_vendor(&vendor, 1, "Vendor", "2030-03-01T00:00:00.000Z");
    update(&app, &id, json!({ "lastName": "Gateway" })).await;
    assert_eq!(subscriber.change().await["kind"], "UPDATED");
    let conflict = subscriber.change().await;
    assert_eq!(conflict["kind"], "WRITE_CONFLICT", "{conflict}");
    assert_eq!(conflict["contactId"], id);

    // Gone at the vendor: 404, failed.
    remove_at_vendor(&vendor, 2);
    let gone = contact_of(&app, 2).await;
    update(&app, &gone, json!({ "role": "Lost" })).await;
    assert_eq!(subscriber.change().await["kind"], "UPDATED");
    let failed = subscriber.change().await;
    assert_eq!(failed["kind"], "WRITE_BACK_FAILED", "{failed}");
    assert_eq!(failed["contactId"], gone);
}
