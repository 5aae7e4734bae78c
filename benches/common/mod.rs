//! Setup and measurement shared by the benchmarks: arguments, a seeded database, a server
//! on 127.0.0.1:0, and a bounded closed-loop HTTP load.
#![allow(dead_code)]
use std::time::{Duration, Instant};

use contact_gateway::config::{Config, DatabaseConfig};
use contact_gateway::startup::Application;
use contact_gateway::{db, demo};
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;

pub struct Args {
    pub contacts: usize,
    pub database_url: Option<String>,
    pub requests: usize,
    pub concurrency: usize,
    /// Every contact comes from one writable source (`--writable-source`), so that each
    /// contact change queues a write-back (not delivered: the worker is off).
    pub writable_source: bool,
}

pub fn parse_args() -> Args {
    let mut args = Args {
        contacts: 100_000,
        database_url: None,
        requests: 400,
        concurrency: 8,
        writable_source: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--contacts" => args.contacts = value().parse().unwrap_or(args.contacts),
            "--database-url" => args.database_url = Some(value()),
            "--requests" => args.requests = value().parse().unwrap_or(args.requests),
            "--concurrency" => args.concurrency = value().parse().unwrap_or(args.concurrency),
            "--writable-source" => args.writable_source = true,
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

pub struct Stats {
    pub count: usize,
    /// Requests answered with errors (e.g. the server's time limit); not in the latencies.
    pub failed: usize,
    pub per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Longest a scenario runs: it stops after `requests` requests or this long, whichever
/// comes first.
pub const SCENARIO_TIME: Duration = Duration::from_secs(20);

/// Sends up to `requests` POSTs of `body`, `concurrency` at a time, for at most
/// [`SCENARIO_TIME`]; every answer must be free of errors.
pub async fn measure(url: &str, body: Value, requests: usize, concurrency: usize) -> Stats {
    let client = client();
    // Warm-up.
    for _ in 0..2 {
        send(&client, url, &body).await;
    }
    let started = Instant::now();
    let per_worker = requests.div_ceil(concurrency);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        workers.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(per_worker);
            let mut failed = 0;
            for _ in 0..per_worker {
                if started.elapsed() > SCENARIO_TIME {
                    break;
                }
                let t = Instant::now();
                if send(&client, &url, &body).await.get("errors").is_some() {
                    failed += 1;
                } else {
                    times.push(t.elapsed());
                }
            }
            (times, failed)
        }));
    }
    let mut times = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (worker_times, worker_failed) = w.await.expect("worker");
        times.extend(worker_times);
        failed += worker_failed;
    }
    let elapsed = started.elapsed();
    times.sort();
    let at = |q: usize| {
        times
            .get((times.len() * q / 100).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Stats {
        count: times.len(),
        failed,
        per_second: times.len() as f64 / elapsed.as_secs_f64(),
        p50: at(50),
        p99: at(99),
    }
}

/// Posts `body` and returns the response, which must have no errors.
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let response = send(client, url, body).await;
    assert!(response.get("errors").is_none(), "{response}");
    response
}

/// Posts `body` and returns the response, errors and all.
pub async fn send(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json")
}

pub fn report(name: &str, stats: &Stats) {
    let failed = if stats.failed > 0 {
        format!(" (+{} failed)", stats.failed)
    } else {
        String::new()
    };
    println!(
        "| {name} | {}{failed} | {:.0} | {:.2} | {:.2} |",
        stats.count,
        stats.per_second,
        stats.p50.as_secs_f64() * 1000.0,
        stats.p99.as_secs_f64() * 1000.0
    );
}

static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A client that sends the demo tenant's API key.
pub fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let key = KEY.get().map(String::as_str).unwrap_or_default();
    if let Ok(value) = format!("Bearer {key}").parse() {
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// A running server over a freshly seeded database.
pub struct Bench {
    /// `http://127.0.0.1:PORT/graphql`.
    pub url: String,
    /// "SQLite" or "PostgreSQL".
    pub backend: &'static str,
    /// The pool, for picking ids.
    pub pool: sea_orm::DatabaseConnection,
    _dir: tempfile::TempDir,
}

/// Seeds `args.contacts` contacts (in a temporary SQLite file, or a fresh PostgreSQL
/// database `cg_bench_<N>`) and serves them.
pub async fn start(args: &Args) -> Bench {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = match &args.database_url {
        Some(url) if url.starts_with("postgres") => {
            let admin = Database::connect(url).await.expect("connect");
            let name = format!("cg_bench_{}", args.contacts);
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}"))
                .await
                .expect("drop");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create");
            let (prefix, _) = url.rsplit_once('/').expect("URL with a database");
            format!("{prefix}/{name}")
        }
        Some(url) => url.clone(),
        None => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        ),
    };
    let backend = if database_url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };

    let pool = db::connect(&database_url, None).await.expect("connect");
    db::migrate(&pool).await.expect("migrate");
    let seeding = Instant::now();
    let tenant = demo::create_demo_tenant(&pool).await.expect("demo tenant");
    let extra = args.contacts.saturating_sub(demo::DEMO_CONTACTS);
    demo::seed_contacts(&pool, tenant, extra, 7)
        .await
        .expect("seed");
    if backend == "PostgreSQL" {
        // What autovacuum would do after a load: statistics and the visibility map (for
        // index-only scans).
        pool.execute_unprepared("VACUUM ANALYZE")
            .await
            .expect("vacuum");
    }
    if args.writable_source {
        attach_writable_source(&pool, tenant).await;
    }
    let seeded = seeding.elapsed();
    println!(
        "{backend}, {} contacts: seeded in {:.1}s ({:.0} contacts/s); {} requests per row, {} concurrent",
        args.contacts,
        seeded.as_secs_f64(),
        args.contacts as f64 / seeded.as_secs_f64(),
        args.requests,
        args.concurrency
    );

    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database: DatabaseConfig { database_url },
        no_demo: true,
        default_phone_region: None,
        production: false,
        key_cache_secs: 30,
        sources_file: None,
        sync: contact_gateway::config::SyncConfig {
            no_write_back: args.writable_source,
            ..Default::default()
        },
        limits: Default::default(),
    };
    let app = Application::build(&config).await.expect("app");
    let url = format!("http://{}/graphql", app.address());
    let _ = KEY.set(app.demo_key().expect("demo key").to_string());
    tokio::spawn(app.run_until_stopped());
    Bench {
        url,
        backend,
        pool,
        _dir: dir,
    }
}

/// Creates the tenant's writable source `crm` (seed 003's format) at `url`.
pub async fn writable_source(
    pool: &sea_orm::DatabaseConnection,
    tenant: contact_gateway::tenancy::TenantId,
    url: &str,
) -> entity::source::Model {
    use contact_gateway::sources::catalog;
    use contact_gateway::sources::definition::SourceDraft;
    use contact_gateway::write_back::config::WriteBackDraft;
    let draft = SourceDraft {
        name: "crm".into(),
        format: "client-contacts".into(),
        url: url.into(),
        enabled: Some(false),
        write: Some(WriteBackDraft::default()),
        ..Default::default()
    };
    catalog::create(pool, None, tenant, &draft, None)
        .await
        .expect("source")
}

/// Creates the tenant's writable source `crm` (on an address nothing listens at) and gives
/// every contact of the tenant a record there.
pub async fn attach_writable_source(
    pool: &sea_orm::DatabaseConnection,
    tenant: contact_gateway::tenancy::TenantId,
) {
    writable_source(pool, tenant, "http://127.0.0.1:9/api/contacts").await;
    let id_text = match pool.get_database_backend() {
        sea_orm::DbBackend::Postgres => "id::text",
        _ => "lower(hex(id))",
    };
    pool.execute_raw(sea_orm::Statement::from_sql_and_values(
        pool.get_database_backend(),
        format!(
            "INSERT INTO contact_sources (id, tenant_id, contact_id, source, format, external_id, \
             record, mapped, record_hash, fetched_at) \
             SELECT id, tenant_id, id, 'crm', 'client-contacts', {id_text}, \
             '{{\"updated_at\":\"2025-01-01T00:00:00.000Z\"}}', '{{\"fields\":{{}}}}', '', 0 \
             FROM contacts WHERE tenant_id = {}",
            if pool.get_database_backend() == sea_orm::DbBackend::Postgres {
                "$1"
            } else {
                "?"
            }
        ),
        [tenant.0.into()],
    ))
    .await
    .expect("records");
}
