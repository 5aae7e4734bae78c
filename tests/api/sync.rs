//! Live sync against stand-in vendor servers (from `vendors`): paging each API its own way,
//! incremental runs from the watermark, refusals (401/403/412) that stop at once, 429/5xx
//! that are retried, malformed pages, an interrupted run that resumes, and sources of other
//! tenants.
use std::sync::{Arc, Mutex};

use contact_gateway::tenancy::TenantId;
use serde_json::{Value, json};

use crate::common::{client_with_key, single_error, snapshot};
use crate::vendors::{
    SYNC, Vendor, app_with_source, app_with_sources, run_error, start_paged_vendors, start_vendor,
};

#[tokio::test]
async fn sync_pages_through_the_api_then_fetches_only_what_changed() {
    let vendor = Vendor::with_clients(250, "2025-02-01T00:00:00.000Z");
    let url = start_vendor(vendor.clone()).await;
    let app = app_with_source(&url).await;

    let data = app.data(SYNC, json!({})).await;
    assert_eq!(data["syncSource"]["created"], 250, "{data}");
    assert_eq!(
        data["syncSource"]["source"]["watermark"],
        "2025-02-01T00:00:00.000Z"
    );
    assert_eq!(data["syncSource"]["source"]["resumable"], false);
    let seen = vendor.seen.lock().expect("lock").clone();
    assert_eq!(
        seen,
        [
            "limit=100&offset=0",
            "limit=100&offset=100",
            "limit=100&offset=200"
        ]
    );
    assert_eq!(
        app.contact_ids(json!({"email": "person250@example.com"}))
            .await
            .len(),
        1
    );

    // One record changes: the next run is incremental and asks from the watermark less the
    // 5-minute overlap, so the records stamped at the watermark itself are read again (and
    // change nothing).
    vendor.records.lock().expect("lock")[4] = json!({ "id": 5, "client_id": 2, "email": "person5@example.com",
        "name": "Renamed", "surname": "Example", "telephone": "+49301230005",
        "created_at": "2025-01-01T00:00:00.000Z", "updated_at": "2025-03-01T00:00:00.000Z" });
    vendor.seen.lock().expect("lock").clear();
    let data = app.data(SYNC, json!({})).await;
    let run = &data["syncSource"]["run"];
    assert_eq!(
        (
            run["mode"].clone(),
            run["created"].clone(),
            run["updated"].clone(),
            run["unchanged"].clone()
        ),
        (json!("INCREMENTAL"), json!(0), json!(1), json!(249)),
        "{data}"
    );
    let seen = std::mem::take(&mut *vendor.seen.lock().expect("lock"));
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|q| q.contains("updated_at=gt%3A2025-01-31T23%3A55%3A00.000Z")),
        "{seen:?}"
    );
    // The watermark moved to the changed record: the next run reads only around it.
    let data = app.data(SYNC, json!({})).await;
    assert_eq!(data["syncSource"]["run"]["unchanged"], 1, "{data}");
    let seen = std::mem::take(&mut *vendor.seen.lock().expect("lock"));
    assert_eq!(
        seen,
        ["limit=100&offset=0&updated_at=gt%3A2025-02-28T23%3A55%3A00.000Z"]
    );
    let renamed = app
        .data(
            r#"{ contacts(filter: { email: "person5@example.com" }) { nodes { firstName } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(renamed["contacts"]["nodes"][0]["firstName"], "Renamed");

    let sources = app
        .data(
            "{ sources { nodes { name watermark lastSuccessAt lastError } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        sources["sources"]["nodes"][0]["watermark"],
        "2025-03-01T00:00:00.000Z"
    );
}

#[tokio::test]
async fn business_and_pipeline_apis_are_paged_their_own_way() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = start_paged_vendors(seen.clone()).await;
    let app = app_with_sources(|tenant| {
        format!(
            "[[sources]]\nname = \"helpdesk\"\nformat = \"business-contacts\"\n\
             url = \"{base}/api/v1/businesses/{{businessId}}/contacts\"\nbusinesses = [\"b1\", \"b2\"]\n\
             tenant = \"{tenant}\"\ntoken_env = \"CG_TEST_VENDOR_TOKEN\"\n\n\
             [[sources]]\nname = \"pipeline\"\nformat = \"pipeline-contacts\"\n\
             url = \"{base}/api/contacts\"\ntenant = \"{tenant}\"\ntoken_env = \"CG_TEST_VENDOR_TOKEN\"\n"
        )
    })
    .await;
    // SAFETY: set once, to the same value, by every test that reads it.
    unsafe { std::env::set_var("CG_TEST_VENDOR_TOKEN", "vendor-token") };
    let sync = r#"mutation($name: String!) { syncSource(input: { name: $name, wait: true }) {
        created updated unchanged source { lastError } } }"#;

    let data = app.data(sync, json!({ "name": "helpdesk" })).await;
    assert_eq!(data["syncSource"]["created"], 180, "{data}");
    let requests: Vec<String> = std::mem::take(&mut *seen.lock().expect("lock"));
    assert_eq!(
        requests,
        [
            "/api/v1/businesses/b1/contacts?page=1&limit=100&include=tags&sort=createdAt",
            "/api/v1/businesses/b1/contacts?page=2&limit=100&include=tags&sort=createdAt",
            "/api/v1/businesses/b2/contacts?page=1&limit=100&include=tags&sort=createdAt",
        ]
    );
    // Each business's contacts carry that business's VIP tag.
    let tagged = app
        .data(
            r#"{ b1: contacts(filter: { search: "help1@b1." }) { nodes { business { name } tags { name } } }
                 vip: contacts(filter: { tag: "VIP", search: ".example" }) { totalCount } }"#,
            json!({}),
        )
        .await;
    assert_eq!(tagged["b1"]["nodes"][0]["business"]["name"], "Business b1");
    assert_eq!(tagged["b1"]["nodes"][0]["tags"], json!([{ "name": "VIP" }]));
    assert_eq!(tagged["vip"]["totalCount"], 180);

    let data = app.data(sync, json!({ "name": "pipeline" })).await;
    assert_eq!(data["syncSource"]["created"], 230, "{data}");
    let requests: Vec<String> = std::mem::take(&mut *seen.lock().expect("lock"));
    assert_eq!(
        requests,
        [
            "/api/contacts?page=1&size=100",
            "/api/contacts?page=2&size=100",
            "/api/contacts?page=3&size=100",
        ]
    );
    let org = app
        .data(
            r#"{ contacts(filter: { pipelineId: "pl-1" }) { totalCount nodes { account { name } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(org["contacts"]["totalCount"], 230);
    assert_eq!(
        org["contacts"]["nodes"][0]["account"]["name"],
        "Organization org-1"
    );

    // Both again: every page fetched, nothing changed.
    let before = snapshot(&app).await;
    for (name, pages) in [("helpdesk", 3), ("pipeline", 3)] {
        let data = app.data(sync, json!({ "name": name })).await;
        assert_eq!(
            (
                data["syncSource"]["created"].clone(),
                data["syncSource"]["updated"].clone()
            ),
            (json!(0), json!(0)),
            "{name}: {data}"
        );
        assert_eq!(
            std::mem::take(&mut *seen.lock().expect("lock")).len(),
            pages
        );
    }
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn refusals_stop_retries_recover_and_an_interrupted_sync_resumes() {
    let vendor = Vendor::with_clients(150, "2025-02-01T00:00:00.000Z");
    let url = start_vendor(vendor.clone()).await;
    let app = app_with_source(&url).await;

    // 401: stops at once with a clear error, nothing written.
    let before = snapshot(&app).await;
    vendor.failures.lock().expect("lock").push((401, None));
    let data = app.data(SYNC, json!({})).await;
    assert_eq!(run_error(&data), "UPSTREAM_FAILED", "{data}");
    let error = &data["syncSource"]["run"]["error"];
    assert!(
        error["message"].as_str().expect("message").contains("401"),
        "{error}"
    );
    assert_eq!(data["syncSource"]["run"]["status"], "FAILED");
    assert_eq!(data["syncSource"]["source"]["state"], "FAILED");
    assert_eq!(
        vendor.seen.lock().expect("lock").len(),
        1,
        "no retry after 401"
    );
    assert_eq!(snapshot(&app).await, before);
    // 403 and 412 stop as well.
    for status in [403, 412] {
        vendor.failures.lock().expect("lock").push((status, None));
        assert_eq!(
            run_error(&app.data(SYNC, json!({})).await),
            "UPSTREAM_FAILED"
        );
    }

    // A malformed second page: the first page is applied, the second writes nothing.
    *vendor.malformed_at.lock().expect("lock") = Some(100);
    let data = app.data(SYNC, json!({})).await;
    assert_eq!(run_error(&data), "BAD_PAYLOAD", "{data}");
    assert_eq!(app.contact_ids(json!({})).await.len(), 400 + 100);
    let state = app
        .data("{ sources { nodes { resumable lastError } } }", json!({}))
        .await;
    assert_eq!(state["sources"]["nodes"][0]["resumable"], true);
    assert!(
        state["sources"]["nodes"][0]["lastError"]
            .as_str()
            .expect("error")
            .contains("malformed")
    );

    // Fixed, with a 429 and a 503 on the way: retried, and the run resumes at offset 100.
    *vendor.malformed_at.lock().expect("lock") = None;
    vendor
        .failures
        .lock()
        .expect("lock")
        .extend([(429, Some("0")), (503, Some("0"))]);
    vendor.seen.lock().expect("lock").clear();
    let data = app.data(SYNC, json!({})).await;
    assert_eq!(data["syncSource"]["created"], 50, "{data}");
    assert_eq!(
        data["syncSource"]["source"]["created"], 150,
        "the run's total counts both parts"
    );
    assert_eq!(data["syncSource"]["source"]["lastError"], Value::Null);
    let seen = vendor.seen.lock().expect("lock").clone();
    assert_eq!(
        seen, ["limit=100&offset=100"; 3],
        "resumed at the failed page, retried twice"
    );
    assert_eq!(app.contact_ids(json!({})).await.len(), 400 + 150);
}

#[tokio::test]
async fn sources_of_other_tenants_cannot_be_synced() {
    let vendor = Vendor::default();
    let url = start_vendor(vendor.clone()).await;
    let app = app_with_source(&url).await;
    let tenant = contact_gateway::auth::api_keys::create_tenant(&app.db, "other")
        .await
        .expect("tenant");
    let key = contact_gateway::auth::api_keys::create_key(
        &app.db,
        TenantId(tenant.id),
        &[
            contact_gateway::auth::Scope::ContactsRead,
            contact_gateway::auth::Scope::ContactsWrite,
            contact_gateway::auth::Scope::SourcesManage,
        ],
        None,
        None,
    )
    .await
    .expect("key");
    let other = client_with_key(&key.key);
    let response: Value = other
        .post(format!("{}/graphql", app.base_url))
        .json(&json!({ "query": SYNC }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    single_error(&response, "NOT_FOUND");
    let listed: Value = other
        .post(format!("{}/graphql", app.base_url))
        .json(&json!({ "query": "{ sources { nodes { name } } }" }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"]["sources"]["nodes"], json!([]));
    assert!(vendor.seen.lock().expect("lock").is_empty());
}
