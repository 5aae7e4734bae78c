//! Vendor sources: imports of the seeds' own examples, idempotency, field-level updates,
//! warnings and rejections, live sync against stand-in vendor servers (paging, auth
//! failures, 429/5xx, malformed pages, resume, incremental), provenance, duplicates, merge.
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use contact_gateway::contacts::WriteSettings;
use contact_gateway::demo;
use contact_gateway::error::Error;
use contact_gateway::scope::TenantId;
use contact_gateway::sources::import::{ImportOptions, import_payload};
use contact_gateway::sources::{Format, MapContext};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{
    TestApp, client_with_key, failing_fields, single_error, snapshot, spawn_app,
    spawn_app_on_database_of,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

pub(crate) async fn tenant_of(app: &TestApp) -> TenantId {
    demo::demo_tenant(&app.db)
        .await
        .expect("query")
        .expect("demo tenant")
}

pub(crate) fn options(tenant: TenantId, format: Format, account: Option<&str>) -> ImportOptions {
    ImportOptions {
        tenant,
        source: format.name().to_string(),
        format,
        context: MapContext {
            account: account.map(str::to_string),
            business: None,
        },
        strict: false,
        settings: WriteSettings::default(),
    }
}

pub(crate) async fn import(
    app: &TestApp,
    options: &ImportOptions,
    payload: &[u8],
) -> contact_gateway::Result<contact_gateway::sources::import::ImportSummary> {
    import_payload(&app.db, options, payload, |_, _| {}).await
}

const CONTACT_BY_EMAIL: &str = r#"query($email: String!) {
    contacts(filter: { email: $email }) { nodes {
        id name firstName lastName email phone companyName externalRef resolutionStatus
        role notes linkedin description timezone website secondaryEmails secondaryPhones
        status pipelineId pipelineStage owner createdBy assignees isTestContact
        dnd { email sms call whatsapp } address { street city postalCode }
        createdAt updatedAt
        account { name externalRef } business { name } tags { name displayOrder }
        sources { source format externalId fetchedAt record }
    } } }"#;

async fn contact_by_email(app: &TestApp, email: &str) -> Value {
    let data = app.data(CONTACT_BY_EMAIL, json!({ "email": email })).await;
    let nodes = data["contacts"]["nodes"].as_array().expect("nodes").clone();
    assert_eq!(nodes.len(), 1, "{data}");
    nodes[0].clone()
}

#[tokio::test]
async fn the_seed_examples_of_every_format_import_with_every_field_mapped() {
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await;

    let s = import(
        &app,
        &options(tenant, Format::AccountContacts, Some("acme")),
        &fixture("account-contacts.json"),
    )
    .await
    .expect("import");
    assert_eq!(
        (
            s.created,
            s.updated,
            s.unchanged,
            s.warnings.len(),
            s.rejected.len()
        ),
        (1, 0, 0, 0, 0)
    );
    let jan = contact_by_email(&app, "jan.mueller@acme-customer.de").await;
    assert_eq!(jan["name"], "Jan Mueller");
    assert_eq!(jan["phone"], "+4915112345678");
    assert_eq!(jan["companyName"], "Acme Customer GmbH");
    assert_eq!(jan["externalRef"], "CRM-CONTACT-78291");
    assert_eq!(jan["resolutionStatus"], "CRM_RESOLVED");
    assert_eq!(jan["createdAt"], "2026-02-10T14:30:00.000Z");
    assert_eq!(jan["account"]["name"], "acme");
    let source = &jan["sources"][0];
    assert_eq!(source["source"], "account-contacts");
    assert_eq!(source["externalId"], "0b1a2b3c-5678-4abc-8ef0-1234567890ab");
    assert_eq!(
        source["record"]["tenantId"],
        "a0b1c2d3-4567-89ab-cdef-0123456789ab"
    );

    let s = import(
        &app,
        &options(tenant, Format::BusinessContacts, None),
        &fixture("business-contacts.json"),
    )
    .await
    .expect("import");
    assert_eq!((s.created, s.rejected.len()), (1, 0));
    let jane = contact_by_email(&app, "jane@example.com").await;
    assert_eq!(jane["name"], "Jane Doe");
    assert_eq!(jane["phone"], "+14155551234");
    assert_eq!(jane["companyName"], "Acme Inc");
    assert_eq!(jane["website"], "https://acme.com");
    assert_eq!(jane["timezone"], "America/New_York");
    assert_eq!(
        jane["dnd"],
        json!({"email": true, "sms": true, "call": true, "whatsapp": true})
    );
    assert_eq!(jane["secondaryEmails"], json!(["jsmith@example.com"]));
    assert_eq!(jane["secondaryPhones"], json!([]));
    assert_eq!(jane["isTestContact"], true);
    assert_eq!(jane["tags"], json!([{"name": "VIP", "displayOrder": 123}]));
    assert_eq!(
        jane["business"]["name"],
        "Business 3c90c3cc-0d44-4b50-8888-8dd25736052a"
    );
    assert_eq!(jane["createdAt"], "2023-11-07T05:31:56.000Z");
    // Placeholders are not stored; the raw record keeps them, and each is a warning.
    assert_eq!(jane["address"]["city"], Value::Null);
    assert_eq!(jane["notes"], Value::Null);
    assert_eq!(jane["sources"][0]["record"]["city"], "<string>");
    let warned: Vec<&str> = s
        .warnings
        .iter()
        .filter_map(|w| w.field.as_deref())
        .collect();
    for field in [
        "address",
        "city",
        "state",
        "country",
        "zipCode",
        "source",
        "note",
        "secondaryPhones[0]",
    ] {
        assert!(warned.contains(&field), "{field} in {warned:?}");
    }

    let mut client = options(tenant, Format::ClientContacts, None);
    client.settings.default_region = "DE".parse().ok();
    let s = import(&app, &client, &fixture("client-contacts.json"))
        .await
        .expect("import");
    // The example's telephone "123456789" is no valid number, even read in DE.
    assert_eq!(s.created, 1);
    assert_eq!(s.warnings.len(), 1);
    assert_eq!(s.warnings[0].field.as_deref(), Some("phone"));
    let c = contact_by_email(&app, "client@email.com").await;
    assert_eq!(c["firstName"], "Client name");
    assert_eq!(c["lastName"], "Client surname");
    assert_eq!(c["role"], "Client role");
    assert_eq!(c["notes"], "Some notes about the client");
    assert_eq!(c["linkedin"], "https://www.linkedin.com/in/example");
    assert_eq!(c["description"], "A brief description of the client");
    assert_eq!(c["phone"], Value::Null);
    assert_eq!(c["sources"][0]["record"]["telephone"], "123456789");
    assert_eq!(
        c["account"],
        json!({"name": "Client 1", "externalRef": "1"})
    );
    assert_eq!(c["createdAt"], "2025-10-28T10:23:49.429Z");
    assert_eq!(c["sources"][0]["externalId"], "1");

    let s = import(
        &app,
        &options(tenant, Format::PipelineContacts, None),
        &fixture("pipeline-contacts.json"),
    )
    .await
    .expect("import");
    // The documentation example's `_id` is the placeholder "<string>": rejected.
    assert_eq!((s.created, s.rejected.len()), (1, 1));
    let lena = contact_by_email(&app, "lena.berg@example.com").await;
    assert_eq!(lena["phone"], "+4915199988877");
    assert_eq!(lena["status"], "lead");
    assert_eq!(lena["pipelineId"], "pl-1");
    assert_eq!(lena["pipelineStage"], "qualified");
    assert_eq!(lena["owner"], "user-7");
    assert_eq!(lena["createdBy"], "user-7");
    assert_eq!(lena["assignees"], json!(["user-7", "user-9"]));
    assert_eq!(lena["account"]["name"], "Organization org-42");
}

#[tokio::test]
async fn importing_the_same_file_twice_changes_nothing() {
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await;
    let opts = options(tenant, Format::BusinessContacts, None);
    import(&app, &opts, &fixture("business-contacts.json"))
        .await
        .expect("first");
    let before = snapshot(&app).await;
    let s = import(&app, &opts, &fixture("business-contacts.json"))
        .await
        .expect("second");
    assert_eq!((s.created, s.updated, s.unchanged), (0, 0, 1));
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn a_changed_record_updates_only_its_changed_fields_and_local_edits_survive() {
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await;
    let opts = options(tenant, Format::ClientContacts, None);
    let record = |role: &str| {
        json!([{ "id": 9, "client_id": 3, "email": "kim@example.com", "name": "Kim", "surname": "Lee",
                 "role": role, "notes": "from the CRM", "telephone": "+4930123456",
                 "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z" }])
        .to_string()
    };
    import(&app, &opts, record("Buyer").as_bytes())
        .await
        .expect("first");
    let kim = contact_by_email(&app, "kim@example.com").await;
    let edited = app
        .data(
            r#"mutation($id: ID!) { updateContact(input: { id: $id, patch: { notes: "met at the fair" } }) { contact { updatedAt } } }"#,
            json!({ "id": kim["id"] }),
        )
        .await;
    let edited_at = edited["updateContact"]["contact"]["updatedAt"].clone();

    let s = import(&app, &opts, record("Head of Purchasing").as_bytes())
        .await
        .expect("second");
    assert_eq!((s.created, s.updated, s.unchanged), (0, 1, 0));
    let kim = contact_by_email(&app, "kim@example.com").await;
    assert_eq!(kim["role"], "Head of Purchasing");
    assert_eq!(
        kim["notes"], "met at the fair",
        "a local edit of a field the source did not change survives"
    );
    assert_ne!(kim["updatedAt"], edited_at);
    assert_eq!(kim["sources"][0]["record"]["role"], "Head of Purchasing");
}

#[tokio::test]
async fn bad_values_warn_bad_records_are_rejected_and_bad_files_write_nothing() {
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await;
    let opts = options(tenant, Format::ClientContacts, None);
    let payload = json!([
        { "id": 1, "email": "not-an-email", "name": "Ann", "telephone": "12", "linkedin": "ftp://x" },
        "not an object",
        { "name": "no id" },
        { "id": 2, "email": "bo@example.com", "name": "Bo" }
    ])
    .to_string();

    // --strict: any warning or rejection fails the whole import, and nothing is written.
    let before = snapshot(&app).await;
    let strict = ImportOptions {
        strict: true,
        ..opts.clone()
    };
    match import(&app, &strict, payload.as_bytes()).await {
        Err(Error::Validation(failures)) => assert!(failures.len() >= 4, "{failures:?}"),
        other => panic!("expected a validation error, got {other:?}"),
    }
    assert_eq!(snapshot(&app).await, before);
    for bad in [&b"[{\"id\": 1"[..], b"{\"data\": []}", b"42"] {
        assert!(matches!(
            import(&app, &opts, bad).await,
            Err(Error::BadPayload(_))
        ));
        assert_eq!(snapshot(&app).await, before);
    }

    let s = import(&app, &opts, payload.as_bytes())
        .await
        .expect("lenient");
    assert_eq!((s.created, s.rejected.len()), (2, 2));
    let warned: Vec<(String, String)> = s
        .warnings
        .iter()
        .map(|w| (w.record.clone(), w.field.clone().unwrap_or_default()))
        .collect();
    for field in ["email", "phone", "linkedin"] {
        assert!(
            warned.contains(&("1".into(), field.into())),
            "{field} in {warned:?}"
        );
    }
    let ann = app
        .data(r#"{ contacts(filter: { search: "Ann" }) { nodes { email phone linkedin sources { record } } } }"#, json!({}))
        .await;
    let ann = &ann["contacts"]["nodes"][0];
    assert_eq!(ann["email"], Value::Null);
    assert_eq!(ann["phone"], Value::Null);
    assert_eq!(ann["sources"][0]["record"]["email"], "not-an-email");
}

#[tokio::test]
async fn a_file_of_several_batches_imports_every_record_once_and_the_last_duplicate_wins() {
    use contact_gateway::sources::import::RECORDS_PER_TRANSACTION;
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await;
    let opts = options(tenant, Format::ClientContacts, None);
    let n = RECORDS_PER_TRANSACTION * 2 + 7;
    let mut records: Vec<Value> = (1..=n)
        .map(|i| {
            json!({ "id": i, "client_id": 1 + i % 3, "email": format!("batch{i}@example.com"),
                    "name": format!("Batch{i}"), "surname": "Import", "role": "Buyer" })
        })
        .collect();
    // Record 3 again, in the last batch, with another role and a bad email; and a record
    // without an id in the middle batch.
    records.push(
        json!({ "id": 3, "client_id": 1, "email": "nope", "name": "Batch3",
                         "surname": "Import", "role": "Owner" }),
    );
    records.insert(RECORDS_PER_TRANSACTION + 5, json!({ "name": "no id" }));
    let payload = Value::Array(records).to_string();
    let contacts_before = app.all_contacts().await.len();

    let s = import(&app, &opts, payload.as_bytes())
        .await
        .expect("import");
    assert_eq!((s.created, s.updated, s.unchanged), (n as u64, 0, 0));
    assert_eq!(s.rejected.len(), 1, "{:?}", s.rejected);
    assert_eq!(
        s.rejected[0].record,
        format!("#{}", RECORDS_PER_TRANSACTION + 6)
    );
    let warned: Vec<(String, Option<String>)> = s
        .warnings
        .iter()
        .map(|w| (w.record.clone(), w.field.clone()))
        .collect();
    assert_eq!(
        warned,
        vec![
            ("3".to_string(), None),
            ("3".to_string(), Some("email".to_string()))
        ]
    );
    assert_eq!(app.all_contacts().await.len(), contacts_before + n);

    // The later record 3 was imported (its bad email kept only in the stored record).
    let data = app
        .data(
            r#"{ contacts(filter: { search: "Batch3 " }) { nodes { role email sources { record } } } }"#,
            json!({}),
        )
        .await;
    let nodes = data["contacts"]["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 1, "{data}");
    assert_eq!(nodes[0]["role"], "Owner");
    assert_eq!(nodes[0]["email"], Value::Null);
    assert_eq!(nodes[0]["sources"][0]["record"]["email"], "nope");

    // And the same file again changes nothing.
    let before = snapshot(&app).await;
    let again = import(&app, &opts, payload.as_bytes())
        .await
        .expect("again");
    assert_eq!(
        (again.created, again.updated, again.unchanged),
        (0, 0, n as u64)
    );
    assert_eq!(snapshot(&app).await, before);
}

#[tokio::test]
async fn the_import_command_reports_and_exits_non_zero_on_a_bad_file() {
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await;
    let dir = tempfile::tempdir().expect("dir");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").expect("write");
    let run = |file: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_contact-gateway"))
            .args([
                "import",
                "--format",
                "pipeline-contacts",
                "--tenant",
                &tenant.0.to_string(),
            ])
            .arg("--database-url")
            .arg(&app.database_url)
            .arg(file)
            .output()
            .expect("runs")
    };
    let before = snapshot(&app).await;
    let out = run(&bad);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    assert_eq!(snapshot(&app).await, before);

    let good = dir.path().join("good.json");
    std::fs::write(&good, fixture("pipeline-contacts.json")).expect("write");
    let out = run(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("created 1, updated 0, unchanged 0"),
        "{stdout}"
    );
    assert!(stdout.contains("rejected 1"), "{stdout}");
}

#[tokio::test]
async fn a_file_import_on_sqlite_leaves_its_rows_in_the_database_file_not_only_in_the_wal() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = spawn_app().await;
    if app.db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    let tenant = tenant_of(&app).await;
    // The import's pool leaves checkpoints to the importer's own checkpointer.
    let db = contact_gateway::db::connect_for_import(&app.database_url)
        .await
        .expect("import pool");
    async fn number(db: &sea_orm::DatabaseConnection, sql: &str) -> i64 {
        db.query_one_raw(Statement::from_string(DbBackend::Sqlite, sql))
            .await
            .expect("query")
            .expect("a row")
            .try_get_by_index::<i64>(0)
            .expect("a number")
    }
    assert_eq!(number(&db, "PRAGMA wal_autocheckpoint").await, 0);
    // Everything before the import is in the database file.
    app.db
        .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
        .await
        .expect("checkpoint");
    let records: Vec<Value> = (1..=2_500)
        .map(|i| json!({ "id": i, "client_id": 1, "email": format!("wal{i}@example.com") }))
        .collect();
    let payload = Value::Array(records).to_string();
    let opts = options(tenant, Format::ClientContacts, None);
    import_payload(&db, &opts, payload.as_bytes(), |_, _| {})
        .await
        .expect("import");

    // A copy of the database file alone, without its WAL, holds the imported contacts.
    let file = app
        .database_url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .expect("path")
        .to_string();
    let dir = tempfile::tempdir().expect("dir");
    let copy = dir.path().join("copy.db");
    std::fs::copy(&file, &copy).expect("copy");
    let copied = sea_orm::Database::connect(format!("sqlite://{}?mode=rwc", copy.display()))
        .await
        .expect("open the copy");
    let count = number(
        &copied,
        "SELECT COUNT(*) FROM contacts WHERE email LIKE 'wal%@example.com'",
    )
    .await;
    assert_eq!(count, 2_500);
}

// ----- live sync against a stand-in vendor server -----

/// A scripted failure: status and `Retry-After`.
type Scripted = (u16, Option<&'static str>);

/// A stand-in for seed 003's API: `limit`/`offset` paging over `records`, Bearer auth,
/// `updated_at=gt:` filtering, and failures scripted per request.
#[derive(Clone, Default)]
pub(crate) struct Vendor {
    pub(crate) records: Arc<Mutex<Vec<Value>>>,
    /// How long each page takes to answer (ms).
    pub(crate) delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// Responses to give instead of a page, first to last (status, Retry-After).
    failures: Arc<Mutex<Vec<Scripted>>>,
    /// Offsets at which the page is malformed.
    malformed_at: Arc<Mutex<Option<u64>>>,
    /// Every request's query string.
    pub(crate) seen: Arc<Mutex<Vec<String>>>,
}

async fn vendor_contacts(
    State(vendor): State<Vendor>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
    uri: axum::http::Uri,
) -> Response {
    vendor
        .seen
        .lock()
        .expect("lock")
        .push(uri.query().unwrap_or_default().to_string());
    let delay = vendor.delay_ms.load(std::sync::atomic::Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer vendor-token")
        || headers.get("x-api-version").is_none()
    {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"key": "unauthorized", "message": "bad token"})),
        )
            .into_response();
    }
    let scripted = {
        let mut failures = vendor.failures.lock().expect("lock");
        (!failures.is_empty()).then(|| failures.remove(0))
    };
    if let Some((status, retry_after)) = scripted {
        let mut response = (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(json!({"key": "x", "message": "scripted"})),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", secs.parse().expect("header"));
        }
        return response;
    }
    let offset: u64 = query
        .get("offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    if *vendor.malformed_at.lock().expect("lock") == Some(offset) {
        return (StatusCode::OK, axum::Json(json!({"unexpected": true}))).into_response();
    }
    let since = query
        .get("updated_at")
        .and_then(|v| v.strip_prefix("gt:"))
        .map(str::to_string);
    let records = vendor.records.lock().expect("lock").clone();
    let page: Vec<Value> = records
        .into_iter()
        .filter(|r| {
            since
                .as_deref()
                .is_none_or(|s| r["updated_at"].as_str().unwrap_or_default() > s)
        })
        .skip(offset as usize)
        .take(limit)
        .collect();
    axum::Json(Value::Array(page)).into_response()
}

pub(crate) async fn start_vendor(vendor: Vendor) -> String {
    let app = axum::Router::new()
        .route("/api/contacts", get(vendor_contacts))
        .with_state(vendor);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/api/contacts")
}

pub(crate) fn client_record(id: u64, updated: &str) -> Value {
    json!({ "id": id, "client_id": 1 + id % 3, "email": format!("person{id}@example.com"),
            "name": format!("Person{id}"), "surname": "Example", "telephone": format!("+49301234{id:04}"),
            "created_at": "2025-01-01T00:00:00.000Z", "updated_at": updated })
}

/// A server running on what it needs to stay alive: the first server's database (and its
/// temporary directory) and the sources file.
pub(crate) struct WithSource {
    app: TestApp,
    _first: TestApp,
    pub(crate) dir: tempfile::TempDir,
}

impl std::ops::Deref for WithSource {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// A server whose sources file has one source `crm` for the demo tenant at `url`.
pub(crate) async fn app_with_source(url: &str) -> WithSource {
    app_with_sources(|tenant| {
        format!(
            "[[sources]]\nname = \"crm\"\nformat = \"client-contacts\"\nurl = \"{url}\"\ntenant = \"{tenant}\"\ntoken_env = \"CG_TEST_VENDOR_TOKEN\"\nheaders = {{ \"X-Api-Version\" = \"2\", \"X-Company\" = \"acme\" }}\n"
        )
    })
    .await
}

/// A server whose sources file is `sources(demo tenant id)`.
async fn app_with_sources(sources: impl FnOnce(Uuid) -> String) -> WithSource {
    let first = spawn_app().await;
    let tenant = tenant_of(&first).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("sources.toml");
    std::fs::write(&path, sources(tenant.0)).expect("write");
    // SAFETY: set once, to the same value, by every test that reads it.
    unsafe { std::env::set_var("CG_TEST_VENDOR_TOKEN", "vendor-token") };
    let app = spawn_app_on_database_of(&first, |c| c.sources_file = Some(path)).await;
    WithSource {
        app,
        _first: first,
        dir,
    }
}

pub(crate) const SYNC: &str = r#"mutation { syncSource(input: { name: "crm" }) {
    created updated unchanged
    source { name lastError watermark resumable created unchanged lastSuccessAt } } }"#;

#[tokio::test]
async fn sync_pages_through_the_api_then_fetches_only_what_changed() {
    let vendor = Vendor::default();
    *vendor.records.lock().expect("lock") = (1..=250)
        .map(|i| client_record(i, "2025-02-01T00:00:00.000Z"))
        .collect();
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

    // One record changes: the next run asks only for what changed since the watermark.
    vendor.records.lock().expect("lock")[4] = json!({ "id": 5, "client_id": 2, "email": "person5@example.com",
        "name": "Renamed", "surname": "Example", "telephone": "+49301230005",
        "created_at": "2025-01-01T00:00:00.000Z", "updated_at": "2025-03-01T00:00:00.000Z" });
    vendor.seen.lock().expect("lock").clear();
    let data = app.data(SYNC, json!({})).await;
    assert_eq!(
        (
            data["syncSource"]["created"].clone(),
            data["syncSource"]["updated"].clone()
        ),
        (json!(0), json!(1))
    );
    let seen = vendor.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].contains("updated_at=gt%3A2025-02-01T00%3A00%3A00.000Z"),
        "{seen:?}"
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
            "{ sources { name watermark lastSuccessAt lastError } }",
            json!({}),
        )
        .await;
    assert_eq!(
        sources["sources"][0]["watermark"],
        "2025-03-01T00:00:00.000Z"
    );
}

/// A stand-in for seeds 002 (`/api/v1/businesses/{businessId}/contacts`, page/limit,
/// `{ data, pagination }`) and 004 (`/api/contacts`, page/size,
/// `{ success, data: { contacts, total, page, size } }`), recording every request.
async fn start_paged_vendors(seen: Arc<Mutex<Vec<String>>>) -> String {
    fn business_contact(business: &str, i: usize) -> Value {
        json!({ "id": format!("{business}-{i}"), "businessId": business,
                "firstName": format!("Help{i}"), "lastName": business.to_uppercase(),
                "email": format!("help{i}@{business}.example"),
                "createdAt": "2025-01-02T00:00:00.000Z", "updatedAt": "2025-01-03T00:00:00.000Z",
                "tags": [{ "id": format!("{business}-vip"), "name": "VIP", "displayOrder": 1 }] })
    }
    fn pipeline_contact(i: usize) -> Value {
        json!({ "_id": format!("p{i:04}"), "firstName": format!("Pipe{i}"), "lastName": "Line",
                "email": format!("pipe{i}@example.com"), "organizationId": "org-1",
                "pipelineId": "pl-1", "pipelineStage": "new",
                "createdAt": "2025-01-02T00:00:00.000Z", "updatedAt": "2025-01-03T00:00:00.000Z" })
    }
    let authorised = |headers: &HeaderMap| {
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer vendor-token")
    };
    type Params = Query<std::collections::HashMap<String, String>>;
    let number = |query: &Params, key: &str| -> usize {
        query.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let record = {
        let seen = seen.clone();
        move |uri: &axum::http::Uri| seen.lock().expect("lock").push(uri.to_string())
    };
    let business_record = record.clone();
    let app = axum::Router::new()
        .route(
            "/api/v1/businesses/{business}/contacts",
            get(
                move |axum::extract::Path(business): axum::extract::Path<String>,
                      headers: HeaderMap,
                      query: Params,
                      uri: axum::http::Uri| async move {
                    business_record(&uri);
                    if !authorised(&headers) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let total = if business == "b1" { 150 } else { 30 };
                    let (page, limit) = (number(&query, "page"), number(&query, "limit"));
                    let data: Vec<Value> = (1..=total)
                        .skip((page.max(1) - 1) * limit)
                        .take(limit)
                        .map(|i| business_contact(&business, i))
                        .collect();
                    axum::Json(json!({ "data": data, "pagination": {
                        "page": page, "limit": limit, "total": total,
                        "totalPages": total.div_ceil(limit.max(1)) } }))
                    .into_response()
                },
            ),
        )
        .route(
            "/api/contacts",
            get(
                move |headers: HeaderMap, query: Params, uri: axum::http::Uri| async move {
                    record(&uri);
                    if !authorised(&headers) {
                        return StatusCode::UNAUTHORIZED.into_response();
                    }
                    let total = 230;
                    let (page, size) = (number(&query, "page"), number(&query, "size"));
                    let contacts: Vec<Value> = (1..=total)
                        .skip((page.max(1) - 1) * size)
                        .take(size)
                        .map(pipeline_contact)
                        .collect();
                    axum::Json(json!({ "success": true, "data": {
                        "contacts": contacts, "total": total, "page": page, "size": size } }))
                    .into_response()
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
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
    let sync = r#"mutation($name: String!) { syncSource(input: { name: $name }) {
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
    let vendor = Vendor::default();
    *vendor.records.lock().expect("lock") = (1..=150)
        .map(|i| client_record(i, "2025-02-01T00:00:00.000Z"))
        .collect();
    let url = start_vendor(vendor.clone()).await;
    let app = app_with_source(&url).await;

    // 401: stops at once with a clear error, nothing written.
    let before = snapshot(&app).await;
    vendor.failures.lock().expect("lock").push((401, None));
    let response = app.graphql(SYNC, json!({})).await;
    let error = single_error(&response, "UPSTREAM_FAILED");
    assert!(
        error["message"].as_str().expect("message").contains("401"),
        "{error}"
    );
    assert_eq!(
        vendor.seen.lock().expect("lock").len(),
        1,
        "no retry after 401"
    );
    assert_eq!(snapshot(&app).await, before);
    // 403 and 412 stop as well.
    for status in [403, 412] {
        vendor.failures.lock().expect("lock").push((status, None));
        single_error(&app.graphql(SYNC, json!({})).await, "UPSTREAM_FAILED");
    }

    // A malformed second page: the first page is applied, the second writes nothing.
    *vendor.malformed_at.lock().expect("lock") = Some(100);
    let response = app.graphql(SYNC, json!({})).await;
    single_error(&response, "BAD_PAYLOAD");
    assert_eq!(app.contact_ids(json!({})).await.len(), 400 + 100);
    let state = app
        .data("{ sources { resumable lastError } }", json!({}))
        .await;
    assert_eq!(state["sources"][0]["resumable"], true);
    assert!(
        state["sources"][0]["lastError"]
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
    let tenant = contact_gateway::auth::keys::create_tenant(&app.db, "other")
        .await
        .expect("tenant");
    let key = contact_gateway::auth::keys::create_key(
        &app.db,
        TenantId(tenant.id),
        &[
            contact_gateway::auth::Scope::ContactsRead,
            contact_gateway::auth::Scope::ContactsWrite,
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
        .json(&json!({ "query": "{ sources { name } }" }))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"]["sources"], json!([]));
    assert!(vendor.seen.lock().expect("lock").is_empty());
}

// ----- duplicates and merge -----

async fn create(app: &TestApp, contact: Value) -> String {
    let data = app
        .data(
            "mutation($c: ContactPatch!) { createContact(input: { contact: $c }) { contact { id } } }",
            json!({ "c": contact }),
        )
        .await;
    data["createContact"]["contact"]["id"]
        .as_str()
        .expect("id")
        .to_string()
}

const DUPLICATES: &str = r#"query($after: String) { duplicateContacts(first: 50, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { matchedOn value contacts { id } } } } }"#;

#[tokio::test]
async fn duplicates_are_grouped_by_email_and_phone_and_merge_into_one() {
    let app = spawn_app().await;
    let a = create(
        &app,
        json!({"firstName": "Ann", "email": "Ann.Dup@Example.com", "phone": "+4915100000001"}),
    )
    .await;
    let b = create(&app, json!({"lastName": "Dupont", "email": "ann.dup@example.com", "role": "Buyer", "secondaryEmails": ["ann.private@example.com"]})).await;
    let c = create(
        &app,
        json!({"firstName": "Other", "secondaryPhones": ["+4915100000001"], "notes": "x"}),
    )
    .await;
    let tenant = tenant_of(&app).await;
    import(
        &app,
        &options(tenant, Format::AccountContacts, Some("acme")),
        &fixture("account-contacts.json"),
    )
    .await
    .expect("import");

    let data = app.data(DUPLICATES, json!({ "after": null })).await;
    let groups: Vec<(String, String, Vec<String>)> = data["duplicateContacts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let n = &e["node"];
            let mut ids: Vec<String> = n["contacts"]
                .as_array()
                .expect("contacts")
                .iter()
                .map(|c| c["id"].as_str().expect("id").to_string())
                .collect();
            ids.sort();
            (
                n["matchedOn"].as_str().expect("kind").to_string(),
                n["value"].as_str().expect("value").to_string(),
                ids,
            )
        })
        .filter(|(_, _, ids)| ids.contains(&a) || ids.contains(&c))
        .collect();
    let mut ab = vec![a.clone(), b.clone()];
    ab.sort();
    let mut ac = vec![a.clone(), c.clone()];
    ac.sort();
    assert_eq!(
        groups,
        vec![
            ("EMAIL".into(), "ann.dup@example.com".into(), ab),
            ("PHONE".into(), "+4915100000001".into(), ac)
        ]
    );
    assert!(
        data["duplicateContacts"]["totalCount"]
            .as_i64()
            .expect("total")
            >= 2
    );

    // Paging with the cursor of the first group goes on after it.
    let first_cursor = data["duplicateContacts"]["edges"][0]["cursor"].clone();
    let rest = app.data(DUPLICATES, json!({ "after": first_cursor })).await;
    assert_eq!(
        rest["duplicateContacts"]["edges"]
            .as_array()
            .expect("edges")
            .len()
            + 1,
        data["duplicateContacts"]["edges"]
            .as_array()
            .expect("edges")
            .len()
    );

    // Invalid merges change nothing.
    let before = snapshot(&app).await;
    let response = app
        .graphql("mutation($t: ID!, $s: [ID!]!) { mergeContacts(input: { targetId: $t, sourceIds: $s }) { contact { id } } }", json!({ "t": a, "s": [a] }))
        .await;
    let error = single_error(&response, "VALIDATION_FAILED");
    assert_eq!(failing_fields(error), ["input.sourceIds[0]"]);
    let response = app
        .graphql("mutation($t: ID!, $s: [ID!]!) { mergeContacts(input: { targetId: $t, sourceIds: $s }) { contact { id } } }", json!({ "t": a, "s": [b, uuid::Uuid::now_v7().to_string()] }))
        .await;
    single_error(&response, "NOT_FOUND");
    assert_eq!(snapshot(&app).await, before);

    let jan = contact_by_email(&app, "jan.mueller@acme-customer.de").await;
    let merged = app
        .data(
            r#"mutation($t: ID!, $s: [ID!]!) { mergeContacts(input: { targetId: $t, sourceIds: $s, clientMutationId: "m1" }) {
                clientMutationId mergedContactIds
                contact { firstName lastName email role notes phone secondaryEmails secondaryPhones externalRef sources { externalId } } } }"#,
            json!({ "t": a, "s": [b, c, jan["id"]] }),
        )
        .await;
    let m = &merged["mergeContacts"];
    assert_eq!(m["clientMutationId"], "m1");
    assert_eq!(m["mergedContactIds"], json!([b, c, jan["id"]]));
    let contact = &m["contact"];
    assert_eq!(contact["firstName"], "Ann", "the target keeps its values");
    assert_eq!(contact["lastName"], "Dupont", "empty fields are filled");
    assert_eq!(contact["role"], "Buyer");
    assert_eq!(contact["notes"], "x");
    assert_eq!(contact["externalRef"], "CRM-CONTACT-78291");
    assert_eq!(
        contact["secondaryEmails"],
        json!(["ann.private@example.com", "jan.mueller@acme-customer.de"])
    );
    assert_eq!(contact["secondaryPhones"], json!(["+4915112345678"]));
    assert_eq!(
        contact["sources"],
        json!([{ "externalId": "0b1a2b3c-5678-4abc-8ef0-1234567890ab" }])
    );
    for gone in [&b, &c] {
        let node = app
            .data(
                "query($id: ID!) { contact(id: $id) { id } }",
                json!({ "id": gone }),
            )
            .await;
        assert_eq!(node["contact"], Value::Null);
    }
    // The merged contact's keys no longer form groups of their own.
    let data = app.data(DUPLICATES, json!({ "after": null })).await;
    let values: Vec<&str> = data["duplicateContacts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["value"].as_str().expect("v"))
        .collect();
    assert!(!values.contains(&"ann.dup@example.com"), "{values:?}");

    // A later import of the moved record updates the merged contact.
    let changed = String::from_utf8(fixture("account-contacts.json"))
        .expect("utf8")
        .replace("Acme Customer GmbH", "Acme Renamed GmbH");
    let s = import(
        &app,
        &options(tenant, Format::AccountContacts, Some("acme")),
        changed.as_bytes(),
    )
    .await
    .expect("import");
    assert_eq!((s.created, s.updated), (0, 1));
    let node = app
        .data(
            "query($id: ID!) { contact(id: $id) { companyName } }",
            json!({ "id": a }),
        )
        .await;
    assert_eq!(node["contact"]["companyName"], "Acme Renamed GmbH");
}

#[tokio::test]
async fn vendor_tags_follow_the_record_and_local_tags_stay() {
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await;
    let opts = options(tenant, Format::BusinessContacts, None);
    let page = |tags: Value| {
        json!({ "data": [{ "id": "c-1", "businessId": "b-1", "firstName": "Tia", "email": "tia@example.com",
            "tags": tags, "createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-01T00:00:00Z" }] })
        .to_string()
    };
    let vip = json!({ "id": "t-vip", "name": "VIP", "displayOrder": 1 });
    let gold = json!({ "id": "t-gold", "name": "Gold", "displayOrder": 2 });
    import(&app, &opts, page(json!([vip])).as_bytes())
        .await
        .expect("first");
    let tia = contact_by_email(&app, "tia@example.com").await;
    let business = app
        .data(
            r#"{ contacts(filter: { email: "tia@example.com" }) { nodes { business { id } } } }"#,
            json!({}),
        )
        .await;
    app.data(
        r#"mutation($b: ID!) { createTag(input: { businessId: $b, name: "Local" }) { tag { id } } }"#,
        json!({ "b": business["contacts"]["nodes"][0]["business"]["id"] }),
    )
    .await;
    app.data(
        r#"mutation($id: ID!) { addTagsToContact(input: { contactId: $id, tagNames: ["Local"] }) { contact { id } } }"#,
        json!({ "id": tia["id"] }),
    )
    .await;
    let s = import(&app, &opts, page(json!([gold])).as_bytes())
        .await
        .expect("second");
    assert_eq!((s.created, s.updated), (0, 1));
    let tia = contact_by_email(&app, "tia@example.com").await;
    let mut names: Vec<&str> = tia["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["Gold", "Local"],
        "VIP left the record, Local was added here"
    );
}
