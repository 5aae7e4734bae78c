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
    let url = start_vendor(vendor.clone()).await;
    let app = spawn_app_with(|c| c.sync.no_write_back = !deliver).await;
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

#[tokio::test]
async fn changes_made_before_delivery_are_one_request_with_the_latest_values() {
    let vendor = Vendor::with_clients(2, UPDATED);
    let app = app_writing_to(&vendor, false).await;
    let id = contact_of(&app, 1).await;
    update(&app, &id, json!({ "lastName": "A", "role": "First" })).await;
    update(&app, &id, json!({ "lastName": "B" })).await;
    update(&app, &id, json!({ "notes": "n" })).await;
    let queued = write_backs(&app, &id).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0]["state"], "PENDING");
    // Another process on the database delivers it.
    let worker = spawn_app_on_database_of(&app, |c| c.sync.no_write_back = false).await;
    let change = settled(&worker, &id, "DELIVERED").await;
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
    vendor
        .records
        .lock()
        .expect("lock")
        .retain(|r| r["id"] != 2);
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
    assert!(
        metrics.contains("contact_gateway_write_back_queue{state=\"FAILED\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("contact_gateway_write_back_latency_seconds_count{"));
}

#[tokio::test]
async fn a_record_changed_at_the_vendor_since_the_sync_is_a_conflict_and_is_not_overwritten() {
    let vendor = Vendor::with_clients(2, UPDATED);
    let app = app_writing_to(&vendor, true).await;
    let id = contact_of(&app, 1).await;
    // Someone edits the record at the vendor after the sync.
    {
        let mut records = vendor.records.lock().expect("lock");
        records[0]["surname"] = json!("Vendor");
        records[0]["updated_at"] = json!("2025-03-01T00:00:00.000Z");
    }
    update(&app, &id, json!({ "lastName": "Gateway" })).await;
    let change = settled(&app, &id, "CONFLICT").await;
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
