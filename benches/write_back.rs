//! Write-back delivery benchmark (issue 17): the worker drains a queue of `--contacts` changes
//! (default 10,000) to a stand-in for seed 003's `PATCH /api/contacts/{id}` on 127.0.0.1,
//! then shows the worker's memory does not grow with the queue: the RSS after delivering 10
//! queued changes, and after delivering 10,000 of a queue of 100,000.
//!
//! `cargo bench --bench write_back -- [--contacts N] [--database-url postgres://…/DB]` (the
//! database named must exist and be empty; it is migrated).
mod common;

/// The allocator `contact-gateway` runs with (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::patch;
use contact_gateway::auth::api_keys;
use contact_gateway::db;
use contact_gateway::tenancy::TenantId;
use contact_gateway::write_back::outcomes::RetryPolicy;
use contact_gateway::write_back::worker::Worker;
use entity::prelude::WriteBack;
use entity::write_back;
use uuid::Uuid;

async fn accept(State(count): State<Arc<AtomicU64>>) -> &'static str {
    count.fetch_add(1, Ordering::Relaxed);
    "{}"
}

async fn start_vendor(count: Arc<AtomicU64>) -> String {
    let app = axum::Router::new()
        .route("/api/contacts/{id}", patch(accept))
        .with_state(count);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/api/contacts")
}

/// The process's resident memory now (MiB).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Queues `n` pending changes of `source` (one per contact, as `updateContact` would).
async fn queue(
    pool: &sea_orm::DatabaseConnection,
    source: &entity::source::Model,
    url: &str,
    n: usize,
) {
    let rows: Vec<write_back::Model> = (0..n)
        .map(|i| {
            let id = Uuid::now_v7();
            write_back::Model {
                id,
                tenant_id: source.tenant_id,
                contact_id: Uuid::now_v7(),
                source_id: source.id,
                source: source.name.clone(),
                external_id: i.to_string(),
                operation: "UPDATE".into(),
                body: format!(r#"{{"role":"Role {i}","surname":"Bench"}}"#),
                url: format!("{url}/{i}"),
                base_version: Some("2025-01-01T00:00:00.000Z".into()),
                state: "PENDING".into(),
                idempotency_key: id.to_string(),
                attempts: 0,
                last_error: None,
                next_attempt_at: 0,
                delivered_at: None,
                created_at: 0,
                updated_at: 0,
            }
        })
        .collect();
    db::insert_all::<WriteBack>(pool, rows, 500)
        .await
        .expect("queue");
}

async fn bench(label: &str, url: &str, n: usize) {
    let pool = db::connect(url, None).await.expect("connect");
    db::migrate(&pool).await.expect("migrate");
    let tenant = api_keys::create_tenant(&pool, "bench")
        .await
        .expect("tenant");
    let count = Arc::new(AtomicU64::new(0));
    let vendor = start_vendor(count.clone()).await;
    let source = common::writable_source(&pool, TenantId(tenant.id), &vendor).await;
    let worker = Worker {
        db: pool.clone(),
        client: reqwest::Client::new(),
        key: None,
        retry: RetryPolicy::default(),
        poll: Duration::from_millis(10),
        lease: Duration::from_secs(120),
        metrics: None,
        syncer: None,
        retention: Duration::from_secs(30 * 24 * 60 * 60),
    };
    let drain = |target: u64| {
        let (worker, count) = (&worker, count.clone());
        async move {
            while count.load(Ordering::Relaxed) < target {
                if worker.deliver_due().await.expect("deliver") == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    };

    queue(&pool, &source, &vendor, n).await;
    let clock = Instant::now();
    drain(n as u64).await;
    let seconds = clock.elapsed().as_secs_f64();
    println!(
        "{label}: {n} queued changes delivered in {seconds:.2} s: {:.0} changes/s",
        n as f64 / seconds
    );

    let delivered = count.load(Ordering::Relaxed);
    queue(&pool, &source, &vendor, 10).await;
    drain(delivered + 10).await;
    let small = rss_mib();
    queue(&pool, &source, &vendor, 100_000).await;
    let queued = rss_mib();
    drain(delivered + 10 + 10_000).await;
    println!(
        "{label}: RSS after delivering a queue of 10: {small:.0} MiB; after queueing \
         100,000 more: {queued:.0} MiB; after delivering 10,000 of those: {:.0} MiB",
        rss_mib()
    );
}

#[tokio::main]
async fn main() {
    let args = common::parse_args();
    let n = if std::env::args().any(|a| a == "--contacts") {
        args.contacts
    } else {
        10_000
    };
    let dir = tempfile::tempdir().expect("dir");
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("wb.db").display());
    bench("SQLite", &sqlite, n).await;
    if let Some(url) = &args.database_url {
        bench("PostgreSQL", url, n).await;
    }
}
