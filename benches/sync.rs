//! Sync benchmark (issue 16): a stand-in for seed 002's API on 127.0.0.1 (page/limit, 100
//! records a page, `{ data, pagination }`) serving N business contacts, synced into a fresh
//! SQLite database and, with `--database-url postgres://…`, a fresh PostgreSQL database.
//! Prints, per database: a first FULL run, a FULL run where nothing changed (and the rows it
//! wrote besides the run's own), the same with 1,000 records gone upstream (deletion
//! detection), and the process's peak RSS.
//!
//! Usage: `cargo bench --bench sync -- [--contacts N] [--database-url postgres://…/DB]`
//! (the database named must exist and be empty; it is migrated).
mod common;

/// The allocator `contact-gateway` runs with (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::{Query, State};
use axum::routing::get;
use contact_gateway::auth::api_keys;
use contact_gateway::contacts::WriteSettings;
use contact_gateway::db;
use contact_gateway::sources::catalog;
use contact_gateway::sources::definition::SourceDraft;
use contact_gateway::sources::runs::{RunMode, RunTrigger};
use contact_gateway::sources::sync::{RunRequest, Syncer};
use contact_gateway::tenancy::TenantId;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::json;

/// The vendor's records, as JSON text per record (a page is cut by joining 100).
type Records = Arc<RwLock<Vec<String>>>;

fn record(i: usize) -> String {
    json!({ "id": format!("c{i:07}"), "businessId": "b1",
            "firstName": format!("First{i}"), "lastName": format!("Last{}", i % 997),
            "email": format!("contact{i}@example.com"), "phone": format!("+4930{i:08}"),
            "company": "Example GmbH", "city": "Berlin", "country": "DE",
            "createdAt": "2025-01-02T00:00:00.000Z", "updatedAt": "2025-01-03T00:00:00.000Z",
            "tags": [{ "id": format!("t{}", i % 20), "name": format!("Tag {}", i % 20), "displayOrder": 1 }] })
    .to_string()
}

async fn page(State(records): State<Records>, Query(q): Query<HashMap<String, String>>) -> String {
    let number = |k: &str, d: usize| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (page, limit) = (number("page", 1).max(1), number("limit", 20).clamp(1, 100));
    let records = records.read().expect("lock");
    let total = records.len();
    let items: Vec<&str> = records
        .iter()
        .skip((page - 1) * limit)
        .take(limit)
        .map(String::as_str)
        .collect();
    format!(
        r#"{{"data":[{}],"pagination":{{"page":{page},"limit":{limit},"total":{total},"totalPages":{}}}}}"#,
        items.join(","),
        total.div_ceil(limit)
    )
}

async fn start_vendor(records: Records) -> String {
    let app = axum::Router::new()
        .route("/api/v1/businesses/b1/contacts", get(page))
        .with_state(records);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/api/v1/businesses/{{businessId}}/contacts")
}

async fn rows(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n")
}

/// Rows a run could have written besides its own (`sync_runs`, `source_states`,
/// `source_leases`): the newest change to contacts and their records, and their counts.
async fn data_fingerprint(db: &DatabaseConnection) -> (i64, i64, i64, i64) {
    (
        rows(db, "SELECT count(*) AS n FROM contacts").await,
        rows(db, "SELECT coalesce(max(updated_at), 0) AS n FROM contacts").await,
        rows(
            db,
            "SELECT coalesce(max(fetched_at), 0) AS n FROM contact_sources",
        )
        .await,
        rows(
            db,
            "SELECT count(*) AS n FROM contact_sources WHERE deleted_at IS NOT NULL",
        )
        .await,
    )
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn bench(label: &str, url: &str, n: usize) {
    let db = db::connect(url, None).await.expect("connect");
    db::migrate(&db).await.expect("migrate");
    let tenant = api_keys::create_tenant(&db, "bench").await.expect("tenant");
    let records: Records = Arc::new(RwLock::new((0..n).map(record).collect()));
    let vendor = start_vendor(records.clone()).await;
    let draft = SourceDraft {
        name: "helpdesk".into(),
        format: "business-contacts".into(),
        url: vendor,
        businesses: vec!["b1".into()],
        enabled: Some(false),
        ..Default::default()
    };
    catalog::create(&db, None, TenantId(tenant.id), &draft, None)
        .await
        .expect("source");
    let syncer = Syncer::new(None, WriteSettings::default(), None, true);
    let full = RunRequest {
        mode: Some(RunMode::Full),
        trigger: RunTrigger::Manual,
        allow_mass_deletion: false,
    };
    let timed = |what: &'static str| {
        let syncer = &syncer;
        let db = &db;
        async move {
            let clock = Instant::now();
            let started = syncer
                .start(db, TenantId(tenant.id), "helpdesk", full)
                .await
                .expect("start");
            let run = syncer.finish(db, started).await.expect("finish");
            let seconds = clock.elapsed().as_secs_f64();
            assert_eq!(run.error_code, None, "{what}: {:?}", run.error_message);
            let records = run.created + run.updated + run.unchanged;
            println!(
                "{label} {what}: {seconds:.2} s, {:.0} records/s (created {}, updated {}, unchanged {}, deleted {})",
                records as f64 / seconds,
                run.created,
                run.updated,
                run.unchanged,
                run.deleted
            );
            seconds
        }
    };
    timed("first FULL run").await;
    let before = data_fingerprint(&db).await;
    let unchanged = timed("FULL run, nothing changed").await;
    let after = data_fingerprint(&db).await;
    println!(
        "{label} rows written by the unchanged run besides its own: {}",
        if before == after {
            "none"
        } else {
            "SOME (fingerprint changed)"
        }
    );
    // One record in a hundred disappears upstream (1,000 of 100,000), spread over the pages.
    let mut index = 0;
    records.write().expect("lock").retain(|_| {
        index += 1;
        index % 100 != 8
    });
    let gone = n - records.read().expect("lock").len();
    let with_deletions = timed("FULL run, records gone upstream").await;
    println!(
        "{label} deletion detection of {gone} records: +{:.2} s over the unchanged run",
        with_deletions - unchanged
    );
    println!("{label} peak RSS so far: {:.0} MiB", peak_rss_mib());
}

#[tokio::main]
async fn main() {
    let args = common::parse_args();
    let n = args.contacts;
    let dir = tempfile::tempdir().expect("dir");
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("sync.db").display());
    bench("SQLite", &sqlite, n).await;
    if let Some(url) = &args.database_url {
        bench("PostgreSQL", url, n).await;
    }
}
