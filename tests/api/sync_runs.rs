//! What a run of a source does beyond paging: reading again across the watermark,
//! catching deletions (and archiving, restoring, and the share guard), waiting out rate
//! limits, pacing, refusing malformed records, going off the schedule when the vendor
//! refuses the token, stopping cleanly on SIGTERM, and its metrics.
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{TestApp, snapshot, spawn_app};
use crate::sources::{ServerProcess, count, create, crm};
use crate::vendors::{Vendor, client_record, start_vendor};

/// Runs `crm` and waits; `mode` FULL or INCREMENTAL, `allow` lifts the deletion guard.
async fn run(app: &TestApp, mode: &str, allow: bool) -> Value {
    let query = format!(
        r#"mutation {{ syncSource(input: {{ name: "crm", wait: true, mode: {mode}, allowMassDeletion: {allow} }}) {{
            run {{ status mode created updated unchanged deleted requests retries error {{ code message }} }}
            source {{ state suspended nextRunAt resumable }} }} }}"#
    );
    app.data(&query, json!({})).await["syncSource"].clone()
}

/// A gateway with the source `crm` (disabled: only the test runs it) on `vendor`.
async fn app_on(vendor: &Vendor) -> TestApp {
    let url = start_vendor(vendor.clone()).await;
    let app = spawn_app().await;
    let created = create(&app, crm(&url)).await;
    assert!(created["errors"].is_null(), "{created}");
    app
}

/// The contact of vendor record `id` (`person{id}@example.com`), archived or not.
async fn person(app: &TestApp, id: u64) -> Value {
    let data = app
        .data(
            &format!(
                r#"{{ contacts(filter: {{ email: "person{id}@example.com", or: [{{ archived: true }}, {{ archived: false }}] }}) {{
                    nodes {{ id archivedAt sources {{ deletedAt }} }} }} }}"#
            ),
            json!({}),
        )
        .await;
    // The one that came from the vendor (a contact made here may share its email).
    data["contacts"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|c| c["sources"].as_array().is_some_and(|s| !s.is_empty()))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The duplicate groups (their count, and the members of the group of `email`): the tests'
/// tenant starts with none.
async fn duplicates_of(app: &TestApp, email: &str) -> (i64, usize) {
    let data = app
        .data(
            "{ duplicateContacts(first: 100) { totalCount nodes { value contacts { id } } } }",
            json!({}),
        )
        .await;
    let groups = &data["duplicateContacts"];
    let members = groups["nodes"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["value"] == email)
        .map_or(0, |g| g["contacts"].as_array().map_or(0, Vec::len));
    (groups["totalCount"].as_i64().expect("count"), members)
}

async fn live_count(app: &TestApp) -> i64 {
    app.data("{ contacts { totalCount } }", json!({})).await["contacts"]["totalCount"]
        .as_i64()
        .expect("count")
}

#[tokio::test]
async fn a_full_run_marks_what_disappeared_and_archives_contacts_left_with_no_record() {
    let vendor = Vendor::with_clients(10, "2025-02-01T00:00:00.000Z");
    let app = app_on(&vendor).await;
    let first = run(&app, "FULL", false).await;
    assert_eq!(first["run"]["created"], 10, "{first}");
    let live = live_count(&app).await;
    // A contact made here shares record 3's email: a duplicate group while 3 is live.
    let made = app
        .data(
            r#"mutation { createContact(input: { contact: { firstName: "Twin", email: "person3@example.com" } }) { contact { id } } }"#,
            json!({}),
        )
        .await;
    assert!(made["createContact"]["contact"]["id"].is_string(), "{made}");
    let (groups, _) = duplicates_of(&app, "person3@example.com").await;
    assert!(groups >= 1);
    assert_eq!(duplicates_of(&app, "person3@example.com").await.1, 2);

    // Records 3 and 7 are deleted upstream.
    vendor
        .records
        .lock()
        .expect("lock")
        .retain(|r| r["id"] != 3 && r["id"] != 7);
    let second = run(&app, "FULL", false).await;
    assert_eq!(second["run"]["deleted"], 2, "{second}");
    assert_eq!(
        live_count(&app).await,
        live + 1 - 2,
        "archived contacts leave lists and counts"
    );
    assert_eq!(
        duplicates_of(&app, "person3@example.com").await,
        (groups - 1, 0),
        "an archived contact leaves the duplicate groups"
    );
    let archived = app
        .data(
            "{ contacts(filter: { archived: true }) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(archived["contacts"]["totalCount"], 2);
    let three = person(&app, 3).await;
    assert!(three["archivedAt"].is_string(), "{three}");
    assert!(three["sources"][0]["deletedAt"].is_string(), "{three}");
    let by_id = app
        .data(
            "query($id: ID!) { contact(id: $id) { archivedAt } }",
            json!({ "id": three["id"] }),
        )
        .await;
    assert!(
        by_id["contact"]["archivedAt"].is_string(),
        "readable by id: {by_id}"
    );

    // Nothing new is missing: nothing more is deleted.
    assert_eq!(run(&app, "FULL", false).await["run"]["deleted"], 0);

    // Record 3 comes back upstream: its contact is live again.
    vendor
        .records
        .lock()
        .expect("lock")
        .push(client_record(3, "2025-02-01T00:00:00.000Z"));
    run(&app, "FULL", false).await;
    let three = person(&app, 3).await;
    assert_eq!(three["archivedAt"], Value::Null, "{three}");
    assert_eq!(three["sources"][0]["deletedAt"], Value::Null);
    assert_eq!(
        duplicates_of(&app, "person3@example.com").await,
        (groups, 2)
    );

    // Contact 7 is restored by hand, and a later run leaves it live.
    let seven = person(&app, 7).await;
    let restored = app
        .data(
            "mutation($id: ID!) { restoreContact(input: { id: $id }) { contact { archivedAt } } }",
            json!({ "id": seven["id"] }),
        )
        .await;
    assert_eq!(
        restored["restoreContact"]["contact"]["archivedAt"],
        Value::Null
    );
    assert_eq!(run(&app, "FULL", false).await["run"]["deleted"], 0);
    assert_eq!(person(&app, 7).await["archivedAt"], Value::Null);
    assert_eq!(live_count(&app).await, live + 1);
}

#[tokio::test]
async fn a_run_that_would_delete_most_of_a_source_deletes_nothing_unless_allowed() {
    let vendor = Vendor::with_clients(10, "2025-02-01T00:00:00.000Z");
    let app = app_on(&vendor).await;
    run(&app, "FULL", false).await;
    // The vendor answers with 4 of 10: 60% would go.
    vendor
        .records
        .lock()
        .expect("lock")
        .retain(|r| r["id"].as_u64().is_some_and(|id| id <= 4));
    let before = snapshot(&app).await;
    let guarded = run(&app, "FULL", false).await;
    assert_eq!(guarded["run"]["status"], "FAILED", "{guarded}");
    assert_eq!(guarded["run"]["error"]["code"], "SUSPICIOUS_DELETION");
    assert_eq!(guarded["run"]["deleted"], 0);
    assert_eq!(
        snapshot(&app).await,
        before,
        "nothing was deleted or archived"
    );

    let allowed = run(&app, "FULL", true).await;
    assert_eq!(allowed["run"]["status"], "SUCCEEDED", "{allowed}");
    assert_eq!(allowed["run"]["deleted"], 6);
}

#[tokio::test]
async fn a_failed_run_detects_no_deletions_and_a_malformed_record_fails_its_page() {
    let vendor = Vendor::with_clients(150, "2025-02-01T00:00:00.000Z");
    let app = app_on(&vendor).await;
    run(&app, "FULL", false).await;
    // The second page now holds a record without an id: the page writes nothing, the run
    // fails naming it, and the records it did not reach are not taken for deleted.
    vendor.records.lock().expect("lock")[120] = json!({ "email": "noid@example.com" });
    let failed = run(&app, "FULL", false).await;
    assert_eq!(failed["run"]["error"]["code"], "BAD_PAYLOAD", "{failed}");
    let message = failed["run"]["error"]["message"].as_str().expect("message");
    assert!(message.contains("page 2"), "{message}");
    assert_eq!(failed["run"]["deleted"], 0);
    assert_eq!(failed["source"]["resumable"], true);
    assert_eq!(
        count(&app, "contact_sources WHERE deleted_at IS NOT NULL").await,
        0
    );
    assert!(
        app.contact_ids(json!({ "email": "noid@example.com" }))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn an_incremental_run_reads_again_across_the_watermark() {
    const T1: &str = "2025-02-01T10:00:00.000Z";
    let vendor = Vendor::with_clients(200, "2025-02-01T00:00:00.000Z");
    {
        // Two records stamped in the watermark's second, one on each side of the boundary
        // between the first two pages.
        let mut records = vendor.records.lock().expect("lock");
        records[99] = client_record(100, T1);
        records[100] = client_record(101, T1);
    }
    let app = app_on(&vendor).await;
    run(&app, "FULL", false).await;
    let watermark = app
        .data(r#"{ source(name: "crm") { watermark } }"#, json!({}))
        .await;
    assert_eq!(watermark["source"]["watermark"], T1);
    {
        let mut records = vendor.records.lock().expect("lock");
        // Record 101 changes again within the same second, and record 201 is committed late:
        // stamped two minutes before the watermark, it was not there during the last run.
        records[100]["name"] = json!("Renamed");
        records.push(client_record(201, "2025-02-01T09:58:00.000Z"));
    }
    vendor.seen.lock().expect("lock").clear();
    let incremental = run(&app, "INCREMENTAL", false).await;
    assert_eq!(incremental["run"]["mode"], "INCREMENTAL");
    assert_eq!(
        (
            incremental["run"]["created"].clone(),
            incremental["run"]["updated"].clone(),
            incremental["run"]["unchanged"].clone()
        ),
        (json!(1), json!(1), json!(1)),
        "{incremental}"
    );
    let seen = vendor.seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        ["limit=100&offset=0&updated_at=gt%3A2025-02-01T09%3A55%3A00.000Z"]
    );
    assert_eq!(
        app.contact_ids(json!({ "email": "person201@example.com" }))
            .await
            .len(),
        1
    );
    let renamed = app
        .data(
            r#"{ contacts(filter: { email: "person101@example.com" }) { nodes { firstName } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(renamed["contacts"]["nodes"][0]["firstName"], "Renamed");
}

#[tokio::test]
async fn rate_limits_are_waited_out_within_the_budget_and_paced_before() {
    let vendor = Vendor::with_clients(250, "2025-02-01T00:00:00.000Z");
    let app = app_on(&vendor).await;
    // A 429 whose Retry-After is an HTTP date two seconds ahead: waited, then on.
    vendor
        .failures
        .lock()
        .expect("lock")
        .push((429, Some("+2")));
    let waited = run(&app, "FULL", false).await;
    assert_eq!(waited["run"]["status"], "SUCCEEDED", "{waited}");
    assert_eq!(waited["run"]["retries"], 1);
    assert_eq!(waited["run"]["requests"], 4);
    let at = std::mem::take(&mut *vendor.seen_at.lock().expect("lock"));
    assert!(
        at[1] - at[0] >= Duration::from_millis(1000),
        "waited as told: {:?}",
        at[1] - at[0]
    );

    // A wait past the run's budget (5 minutes) stops the run at once, at that page (here the
    // first), where the next run starts.
    vendor
        .failures
        .lock()
        .expect("lock")
        .push((503, Some("3600")));
    let limited = run(&app, "FULL", false).await;
    assert_eq!(limited["run"]["error"]["code"], "RATE_LIMITED", "{limited}");
    assert_eq!(limited["run"]["requests"], 1);
    vendor.seen.lock().expect("lock").clear();
    let resumed = run(&app, "FULL", false).await;
    assert_eq!(resumed["run"]["status"], "SUCCEEDED", "{resumed}");
    assert_eq!(vendor.seen.lock().expect("lock")[0], "limit=100&offset=0");

    // maxRequestsPerMinute: 600 a minute is one request every 100 ms.
    app.data(
        r#"mutation { updateSource(input: { name: "crm", maxRequestsPerMinute: 600 }) { source { name } } }"#,
        json!({}),
    )
    .await;
    vendor.seen_at.lock().expect("lock").clear();
    run(&app, "FULL", false).await;
    let at = vendor.seen_at.lock().expect("lock").clone();
    assert_eq!(at.len(), 3);
    for pair in at.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(95),
            "{:?}",
            pair[1] - pair[0]
        );
    }
}

#[tokio::test]
async fn a_refused_token_takes_the_source_off_its_schedule_until_it_is_updated() {
    let vendor = Vendor::with_clients(3, "2025-02-01T00:00:00.000Z");
    let app = app_on(&vendor).await;
    app.data(
        r#"mutation { updateSource(input: { name: "crm", enabled: true }) { source { name } } }"#,
        json!({}),
    )
    .await;
    vendor.failures.lock().expect("lock").push((401, None));
    let refused = run(&app, "FULL", false).await;
    assert_eq!(
        refused["run"]["error"]["code"], "UPSTREAM_FAILED",
        "{refused}"
    );
    assert_eq!(refused["source"]["state"], "FAILED");
    assert_eq!(
        refused["source"]["nextRunAt"],
        Value::Null,
        "off the schedule"
    );
    assert!(
        refused["source"]["suspended"]
            .as_str()
            .expect("why")
            .contains("401")
    );

    let updated = app
        .data(
            r#"mutation { updateSource(input: { name: "crm", token: "vendor-token" }) {
                source { state suspended nextRunAt } } }"#,
            json!({}),
        )
        .await;
    let source = &updated["updateSource"]["source"];
    assert_eq!(source["suspended"], Value::Null);
    assert!(
        source["nextRunAt"].is_string(),
        "back on the schedule: {updated}"
    );
}

#[tokio::test]
async fn runs_are_counted_in_the_metrics() {
    let vendor = Vendor::with_clients(3, "2025-02-01T00:00:00.000Z");
    let app = app_on(&vendor).await;
    run(&app, "FULL", false).await;
    let metrics = app.metrics_text().await;
    for needle in [
        "contact_gateway_sync_runs_total{",
        "contact_gateway_sync_records_total{",
        "contact_gateway_vendor_requests_total{",
        "contact_gateway_sync_run_duration_seconds_count{",
    ] {
        assert!(
            metrics.lines().any(|l| l.starts_with(needle)
                && l.contains("source=\"crm\"")
                && !l.ends_with(" 0")),
            "{needle} in {metrics}"
        );
    }
    assert!(metrics.contains("outcome=\"created\"} 3"), "{metrics}");
}

/// SIGTERM while a run fetches its second page: the run stops, recorded as interrupted,
/// its lease given back, and the next run resumes at that page.
#[cfg(unix)]
/// The last run of `crm` was interrupted, can be resumed, and gave its lease back.
async fn assert_interrupted_and_resumable(app: &TestApp) {
    let runs = app
        .data(
            r#"{ source(name: "crm") { resumable runs(first: 1) { status error { code } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        runs["source"]["runs"][0]["error"]["code"], "INTERRUPTED",
        "{runs}"
    );
    assert_eq!(runs["source"]["resumable"], true);
    assert_eq!(
        count(app, "source_leases").await,
        0,
        "the lease was given back"
    );
}

#[tokio::test]
async fn sigterm_stops_a_run_between_pages_and_the_next_run_resumes_there() {
    let vendor = Vendor::with_clients(250, "2025-02-01T00:00:00.000Z");
    vendor.delay_ms.store(500, Ordering::SeqCst);
    let app = app_on(&vendor).await;
    app.data(
        r#"mutation { updateSource(input: { name: "crm", enabled: true }) { source { name } } }"#,
        json!({}),
    )
    .await;
    let server = ServerProcess::start(&app);
    for _ in 0..600 {
        if vendor.seen.lock().expect("lock").len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        vendor.seen.lock().expect("lock").len(),
        2,
        "the second page is asked for"
    );
    server.terminate();
    let (status, stderr) = server.finish().await;
    assert!(status.success(), "{stderr}");
    assert_interrupted_and_resumable(&app).await;
    // Whole pages were written: the first, and the second too when its answer came before
    // the signal was seen; never part of one.
    let mut written = 0;
    for id in [1, 100, 101, 200, 201] {
        written += app
            .contact_ids(json!({ "email": format!("person{id}@example.com") }))
            .await
            .len();
    }
    assert!(
        written == 2 || written == 4,
        "{written} of the page edges written"
    );
    let pages_written = written / 2;
    vendor.delay_ms.store(0, Ordering::SeqCst);
    vendor.seen.lock().expect("lock").clear();
    app.data(
        r#"mutation { updateSource(input: { name: "crm", enabled: false }) { source { name } } }"#,
        json!({}),
    )
    .await;
    // The next run resumes at the first page not written, and writes the rest.
    let resumed = run(&app, "FULL", false).await;
    assert_eq!(
        resumed["run"]["created"],
        250 - 100 * pages_written,
        "{resumed}"
    );
    let expected: Vec<String> = (pages_written..3)
        .map(|page| format!("limit=100&offset={}", page * 100))
        .collect();
    assert_eq!(vendor.seen.lock().expect("lock").clone(), expected);
}

#[tokio::test]
async fn sigterm_stops_a_command_line_sync_between_pages() {
    let vendor = Vendor::with_clients(250, "2025-02-01T00:00:00.000Z");
    vendor.delay_ms.store(500, Ordering::SeqCst);
    let app = app_on(&vendor).await;
    let process = ServerProcess::run(&app, &["sync", "--source", "crm", "--mode", "full"]);
    for _ in 0..600 {
        if vendor.seen.lock().expect("lock").len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(vendor.seen.lock().expect("lock").len(), 2);
    process.terminate();
    let (status, stderr) = process.finish().await;
    assert!(!status.success(), "an interrupted sync fails");
    assert!(stderr.contains("INTERRUPTED"), "{stderr}");
    assert_interrupted_and_resumable(&app).await;
    // The next run resumes where this one stopped: all 250 are there once, none twice.
    vendor.delay_ms.store(0, Ordering::SeqCst);
    let resumed = run(&app, "FULL", false).await;
    let before = 250 - resumed["run"]["created"].as_i64().expect("created");
    assert!(before == 100 || before == 200, "{resumed}");
}
