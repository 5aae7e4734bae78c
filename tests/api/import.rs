//! File imports: the seeds' own examples of every format with every field mapped,
//! idempotency, field-level updates that keep local edits, vendor tags that follow the
//! record, warnings and rejections (and `--strict`), files of several batches, the `import`
//! command, SQLite's WAL after an import, and the planner statistics a large import leaves.
use contact_gateway::error::Error;
use contact_gateway::sources::Format;
use contact_gateway::sources::import::{ImportOptions, import_payload};
use serde_json::{Value, json};

use crate::common::{
    analyzed_after_bulk_write, analyzed_tables, contact_by_email, fixture, import, options,
    snapshot, spawn_app, tenant_of,
};

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
async fn a_large_import_refreshes_postgres_planner_statistics_and_a_small_one_does_not() {
    use contact_gateway::db::ANALYZE_AFTER_ROWS;
    let app = spawn_app().await;
    let opts = options(tenant_of(&app).await, Format::ClientContacts, None);
    let file = |from: u64, n: u64| {
        let records: Vec<Value> = (from..from + n)
            .map(|i| json!({ "id": i, "client_id": 1, "name": format!("Many{i}"), "surname": "Import" }))
            .collect();
        Value::Array(records).to_string()
    };
    let small = import(&app, &opts, file(1, 10).as_bytes())
        .await
        .expect("small import");
    assert_eq!(small.created, 10);
    assert_eq!(analyzed_tables(&app).await, Vec::<String>::new());

    let large = import(&app, &opts, file(100, ANALYZE_AFTER_ROWS).as_bytes())
        .await
        .expect("large import");
    assert_eq!(large.created, ANALYZE_AFTER_ROWS);
    assert_eq!(analyzed_tables(&app).await, analyzed_after_bulk_write(&app));
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
