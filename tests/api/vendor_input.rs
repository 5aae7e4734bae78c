//! What real vendor exports and users send that once went wrong: ids past 64 bits, a byte
//! order mark, NUL characters, tags without an id or name, phone extensions, non-ASCII names
//! in search; and two runs of one source at once (from the API and the CLI).
use std::sync::atomic::Ordering;

use contact_gateway::sources::Format;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use crate::common::{import, options, single_error, snapshot, spawn_app, tenant_of};
use crate::vendors::{SYNC, Vendor, app_with_source, start_vendor};

const SOURCES_OF: &str = r#"query($email: String!) {
    contacts(filter: { email: $email }) { nodes { name tags { name } sources { externalId } } } }"#;

async fn by_email(app: &crate::common::TestApp, email: &str) -> Value {
    app.data(SOURCES_OF, json!({ "email": email })).await["contacts"]["nodes"].clone()
}

#[tokio::test]
async fn vendor_ids_past_64_bits_are_kept_exactly_and_a_byte_order_mark_is_ignored() {
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await;
    let opts = options(tenant, Format::ClientContacts, None);
    // Two ids that the nearest f64 would make one; with a UTF-8 BOM in front.
    let payload = "\u{feff}[
        {\"id\": 123456789012345678901, \"client_id\": 7, \"email\": \"ana@big.example\", \"name\": \"Ana\"},
        {\"id\": 123456789012345678902, \"client_id\": 7, \"email\": \"bo@big.example\", \"name\": \"Bo\"}]";
    let summary = import(&app, &opts, payload.as_bytes())
        .await
        .expect("a BOM and big ids are fine");
    assert_eq!(summary.created, 2);
    assert_eq!(
        by_email(&app, "ana@big.example").await[0]["sources"][0]["externalId"],
        "123456789012345678901"
    );
    assert_eq!(
        by_email(&app, "bo@big.example").await[0]["sources"][0]["externalId"],
        "123456789012345678902"
    );
}

#[tokio::test]
async fn a_record_with_a_nul_is_refused_and_the_others_are_imported() {
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await;
    let opts = options(tenant, Format::ClientContacts, None);
    let payload = r#"[{"id": 1, "email": "ok1@nul.example", "name": "Ok"},
        {"id": 2, "email": "bad@nul.example", "name": "Nul\u0000Name"},
        {"id": 3, "email": "ok3@nul.example", "name": "Ok3"}]"#;
    let summary = import(&app, &opts, payload.as_bytes())
        .await
        .expect("imported");
    assert_eq!(summary.created, 2);
    assert_eq!(summary.rejected.len(), 1);
    assert!(
        summary.rejected[0]
            .message
            .contains("`name` contains the NUL character"),
        "{summary:?}"
    );
    assert!(by_email(&app, "bad@nul.example").await[0].is_null());
    assert_eq!(by_email(&app, "ok3@nul.example").await[0]["name"], "Ok3");
}

#[tokio::test]
async fn tags_without_an_id_or_a_name_are_warnings() {
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await;
    let opts = options(tenant, Format::BusinessContacts, None);
    let payload = r#"{"data": [{"id": "b2", "firstName": "Gia", "email": "gia@tags.example",
        "businessId": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        "tags": [{"id": "t1", "name": "VIP"}, {"id": "t2", "name": null}, {"name": "NoId"},
                 {"id": 9, "name": "Numbered"}]}], "pagination": {}}"#;
    let summary = import(&app, &opts, payload.as_bytes())
        .await
        .expect("imported");
    let warned: Vec<_> = summary
        .warnings
        .iter()
        .map(|w| w.field.clone().unwrap_or_default())
        .collect();
    assert_eq!(warned, ["tags[1]", "tags[2]"], "{summary:?}");
    let tags: Vec<Value> = by_email(&app, "gia@tags.example").await[0]["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(tags, [json!("Numbered"), json!("VIP")]);
}

#[tokio::test]
async fn phone_extensions_are_kept_everywhere() {
    let app = spawn_app().await;
    let create = r#"mutation($p: String) { createContact(input: { contact: { firstName: "P", phone: $p } }) { contact { id phone } } }"#;
    let a = app
        .data(create, json!({ "p": "+1 650 253 0000 x136" }))
        .await;
    assert_eq!(
        a["createContact"]["contact"]["phone"],
        "+16502530000;ext=136"
    );
    let b = app
        .data(create, json!({ "p": "+1 650 253 0000 ext. 137" }))
        .await;
    assert_eq!(
        b["createContact"]["contact"]["phone"],
        "+16502530000;ext=137"
    );
    // Found by any spelling of the same number and extension, and only that one.
    for spelling in ["+16502530000;ext=136", "+1 (650) 253-0000 x136"] {
        let ids = app.contact_ids(json!({ "phone": spelling })).await;
        assert_eq!(
            ids,
            [a["createContact"]["contact"]["id"].as_str().expect("id")],
            "{spelling}"
        );
    }
    // Two extensions of one switchboard are not duplicates of each other.
    let groups = app
        .data(
            "{ duplicateContacts(first: 100) { nodes { value } } }",
            json!({}),
        )
        .await;
    let values = groups["duplicateContacts"]["nodes"].to_string();
    assert!(!values.contains("+16502530000"), "{values}");
}

#[tokio::test]
async fn account_business_and_tag_search_folds_non_ascii_case() {
    let app = spawn_app().await;
    app.data(
        r#"mutation { a: createAccount(input: { name: "Ärzte Partner Köln" }) { account { id } }
                      b: createBusiness(input: { name: "Énergie Süd" }) { business { id } } }"#,
        json!({}),
    )
    .await;
    for needle in ["Ärzte", "ärzte", "ÄRZTE", "KÖLN"] {
        let data = app
            .data(
                "query($s: String) { accounts(filter: { search: $s }) { nodes { name } } }",
                json!({ "s": needle }),
            )
            .await;
        assert_eq!(
            data["accounts"]["nodes"],
            json!([{ "name": "Ärzte Partner Köln" }]),
            "{needle}"
        );
    }
    let data = app
        .data(
            r#"{ businesses(filter: { search: "ÉNERGIE" }) { nodes { name } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["businesses"]["nodes"],
        json!([{ "name": "Énergie Süd" }])
    );
    // A renamed account is found by its new name only.
    let renamed = app
        .data(
            r#"{ accounts(filter: { search: "ärzte" }) { nodes { id } } }"#,
            json!({}),
        )
        .await;
    let id = renamed["accounts"]["nodes"][0]["id"].clone();
    app.data(
        r#"mutation($id: ID!) { updateAccount(input: { id: $id, patch: { name: "Øst Klinik" } }) { account { id } } }"#,
        json!({ "id": id }),
    )
    .await;
    let count = |needle: &'static str| {
        let app = &app;
        async move {
            app.data(
                "query($s: String) { accounts(filter: { search: $s }) { totalCount } }",
                json!({ "s": needle }),
            )
            .await["accounts"]["totalCount"]
                .clone()
        }
    };
    assert_eq!(count("øst").await, 1);
    assert_eq!(count("ärzte").await, 0);
}

#[tokio::test]
async fn a_source_runs_once_at_a_time_from_every_entry_point() {
    let vendor = Vendor::with_clients(3, "2025-02-01T00:00:00.000Z");
    vendor.delay_ms.store(2_000, Ordering::SeqCst);
    let url = start_vendor(vendor.clone()).await;
    let app = app_with_source(&url).await;

    let first = {
        let client = app.client.clone();
        let url = format!("{}/graphql", app.base_url);
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({ "query": SYNC }))
                .send()
                .await
                .expect("send")
                .json::<Value>()
                .await
                .expect("json")
        })
    };
    // Wait until the first run has asked the vendor for its page (it holds the lease).
    for _ in 0..100 {
        if !vendor.seen.lock().expect("lock").is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let before = snapshot(&app).await;
    let second = app.graphql(SYNC, json!({})).await;
    let error = single_error(&second, "SOURCE_RUNNING");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("already running"),
        "{error}"
    );
    // The command line is refused the same way, and exits non-zero.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_contact-gateway"))
        .args(["sync", "--sources"])
        .arg(app.dir.path().join("sources.toml"))
        .args(["--source", "crm", "--database-url", &app.database_url])
        .env("CG_TEST_VENDOR_TOKEN", "vendor-token")
        .env("GATEWAY_SECRET_KEY", crate::common::TEST_SECRET_KEY)
        .env("SOURCES_ALLOW_PRIVATE_NETWORKS", "true")
        .output()
        .expect("run the CLI");
    assert!(!cli.status.success());
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert!(stderr.contains("already running"), "{stderr}");
    assert_eq!(snapshot(&app).await, before, "a refused run writes nothing");

    let first = first.await.expect("first run");
    assert_eq!(first["data"]["syncSource"]["created"], 3, "{first}");

    // Released at the end: the next run goes ahead.
    vendor.delay_ms.store(0, Ordering::SeqCst);
    app.data(SYNC, json!({})).await;

    // A lease left by a process that died lapses, and the next run takes it over.
    let backend = app.db.get_database_backend();
    let tenant = tenant_of(&app).await;
    let sql = match backend {
        DbBackend::Postgres => {
            "INSERT INTO source_leases (tenant_id, name, holder, acquired_at, expires_at) VALUES ($1, 'crm', $2, 0, 1)"
        }
        _ => {
            "INSERT INTO source_leases (tenant_id, name, holder, acquired_at, expires_at) VALUES (?, 'crm', ?, 0, 1)"
        }
    };
    app.db
        .execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [tenant.0.into(), uuid::Uuid::now_v7().into()],
        ))
        .await
        .expect("a lapsed lease");
    app.data(SYNC, json!({})).await;
}
