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
    /// Reassigns the seeded contacts round-robin to this many new accounts (`--accounts`),
    /// e.g. 2,000 for 50 contacts per account at 100,000 contacts.
    pub accounts: Option<usize>,
}

pub fn parse_args() -> Args {
    let mut args = Args {
        contacts: 100_000,
        database_url: None,
        requests: 400,
        concurrency: 8,
        writable_source: false,
        accounts: None,
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
            "--accounts" => args.accounts = value().parse().ok(),
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
    /// CPU time of the server process per request, in ms (when it runs in its own process).
    pub server_cpu_ms: Option<f64>,
    /// Time spent in SQL statements per request, in ms, from the server's own statement
    /// timings (`sql_statement_duration_seconds_sum` in `/metrics`).
    pub sql_ms: Option<f64>,
}

/// Longest a scenario runs: it stops after `requests` requests or this long, whichever
/// comes first.
pub const SCENARIO_TIME: Duration = Duration::from_secs(20);

/// Sends up to `requests` POSTs of `body`, `concurrency` at a time, for at most
/// [`SCENARIO_TIME`]; every answer must be free of errors.
pub async fn measure(url: &str, body: Value, requests: usize, concurrency: usize) -> Stats {
    measure_server(url, None, body, requests, concurrency).await
}

/// [`measure`], and with `server`, the server's CPU and SQL time per request.
pub async fn measure_server(
    url: &str,
    server: Option<&Server>,
    body: Value,
    requests: usize,
    concurrency: usize,
) -> Stats {
    let client = client();
    // Warm-up.
    for _ in 0..2 {
        send(&client, url, &body).await;
    }
    let before = match server {
        Some(server) => Some((server.cpu_ms(), server.sql_ms().await)),
        None => None,
    };
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
    let answered = (times.len() + failed).max(1) as f64;
    let (server_cpu_ms, sql_ms) = match (server, before) {
        (Some(server), Some((cpu, sql))) => (
            Some((server.cpu_ms() - cpu) / answered),
            Some((server.sql_ms().await - sql) / answered),
        ),
        _ => (None, None),
    };
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
        server_cpu_ms,
        sql_ms,
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

/// One row of `| name | requests | req/s | p50 ms | p99 ms | server CPU ms/req | SQL ms/req |`.
pub fn report_split(name: &str, stats: &Stats) {
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    println!(
        "| {name} | {}{} | {:.0} | {:.2} | {:.2} | {} | {} |",
        stats.count,
        if stats.failed > 0 {
            format!(" (+{} failed)", stats.failed)
        } else {
            String::new()
        },
        stats.per_second,
        stats.p50.as_secs_f64() * 1000.0,
        stats.p99.as_secs_f64() * 1000.0,
        ms(stats.server_cpu_ms),
        ms(stats.sql_ms),
    );
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
    /// The server, when it runs in a process of its own ([`start_process`]).
    pub server: Option<Server>,
    _dir: tempfile::TempDir,
}

/// The resident memory of process `pid`, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The CPU time (user and system) of process `pid` so far, in ms (`/proc/self` is this one).
pub fn cpu_ms(pid: impl std::fmt::Display) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: utime is the 12th, stime the 13th
    // (in clock ticks of 1/100 s).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) * 10.0
}

/// `contact-gateway serve` in a process of its own, so that its CPU time is its own.
pub struct Server {
    child: std::process::Child,
    /// Its `/metrics`.
    metrics_url: String,
}

impl Server {
    /// The process's CPU time so far (user and system), in ms.
    pub fn cpu_ms(&self) -> f64 {
        cpu_ms(self.child.id())
    }

    /// The server's resident memory, in MiB.
    pub fn rss_mib(&self) -> f64 {
        rss_mib(self.child.id())
    }

    /// Time spent in SQL statements so far, in ms (from `/metrics`).
    pub async fn sql_ms(&self) -> f64 {
        let text = reqwest::get(&self.metrics_url)
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix("contact_gateway_sql_statement_duration_seconds_sum "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
            * 1000.0
    }

    /// The process id (for `perf record -p`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seeds `args.contacts` contacts (in a temporary SQLite file, or a fresh PostgreSQL
/// database `cg_bench_<N>`) and serves them in this process.
pub async fn start(args: &Args) -> Bench {
    let seeded = seed(args).await;
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        database: DatabaseConfig {
            database_url: seeded.database_url.clone(),
        },
        sqlite_cache_kib: contact_gateway::db::SQLITE_CACHE_KIB,
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
        backend: seeded.backend,
        pool: seeded.pool,
        server: None,
        _dir: seeded.dir,
    }
}

/// [`start`], with the server in a process of its own (`contact-gateway serve`, release
/// build), reached with a `contacts:read` key of the demo tenant.
pub async fn start_process(args: &Args) -> Bench {
    let seeded = seed(args).await;
    let _ = KEY.set(api_key(
        &seeded.database_url,
        &seeded.tenant.0.to_string(),
        "contacts:read",
    ));
    let (child, base) = serve(&seeded.database_url, &[]).await;
    Bench {
        url: format!("{base}/graphql"),
        backend: seeded.backend,
        pool: seeded.pool,
        server: Some(Server {
            child,
            metrics_url: format!("{base}/metrics"),
        }),
        _dir: seeded.dir,
    }
}

/// The `contact-gateway` binary the bench runs: this build's, or `BENCH_SERVER_BIN` (to
/// measure another commit's server with the same clients in the same run).
pub fn server_binary() -> String {
    std::env::var("BENCH_SERVER_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_contact-gateway").to_string())
}

/// A new API key of `tenant` with `scopes` (comma-separated), made by `contact-gateway
/// api-key create`.
pub fn api_key(database_url: &str, tenant: &str, scopes: &str) -> String {
    let out = std::process::Command::new(server_binary())
        .args(["api-key", "create", "--tenant", tenant, "--scopes", scopes])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("api-key create");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("sk-"))
        .expect("a key")
        .to_string()
}

/// Starts `contact-gateway serve` on 127.0.0.1:0 over `database_url` with `env` set; the
/// process and its `http://127.0.0.1:PORT` once it listens.
pub async fn serve(database_url: &str, env: &[(&str, String)]) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(server_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-demo"])
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let stdout = child.stdout.take().expect("stdout");
    let base = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.find("listening on http://").map(|at| {
                    line[at + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
            })
            .expect("listening");
        // Keep draining its output.
        std::thread::spawn(move || for _ in lines {});
        base
    })
    .await
    .expect("server address");
    (child, base)
}

/// A seeded database.
struct Seeded {
    database_url: String,
    backend: &'static str,
    pool: sea_orm::DatabaseConnection,
    tenant: contact_gateway::tenancy::TenantId,
    dir: tempfile::TempDir,
}

async fn seed(args: &Args) -> Seeded {
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
    if args.writable_source {
        attach_writable_source(&pool, tenant).await;
    }
    if let Some(accounts) = args.accounts {
        spread_over_accounts(&pool, tenant, accounts).await;
    }
    if backend == "PostgreSQL" {
        // What autovacuum would do after a load: statistics and the visibility map (for
        // index-only scans).
        pool.execute_unprepared("VACUUM ANALYZE")
            .await
            .expect("vacuum");
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
    Seeded {
        database_url,
        backend,
        pool,
        tenant,
        dir,
    }
}

/// Creates `accounts` accounts for `tenant` and gives every contact one of them, round-robin
/// in id order (the seed's own accounts are few and large).
async fn spread_over_accounts(
    pool: &sea_orm::DatabaseConnection,
    tenant: contact_gateway::tenancy::TenantId,
    accounts: usize,
) {
    use entity::account;
    use sea_orm::{EntityTrait, Set};
    let now = contact_gateway::time::now_millis();
    let rows: Vec<account::ActiveModel> = (0..accounts)
        .map(|i| {
            let name = format!("Bench account {i:05}");
            account::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                tenant_id: Set(tenant.0),
                name_folded: Set(name.to_lowercase()),
                name: Set(name),
                external_ref: Set(None),
                created_at: Set(now - i as i64 * 1000),
                updated_at: Set(now),
            }
        })
        .collect();
    for chunk in rows.chunks(500) {
        account::Entity::insert_many(chunk.to_vec())
            .exec(pool)
            .await
            .expect("accounts");
    }
    let (p1, p2) = match pool.get_database_backend() {
        sea_orm::DbBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    pool.execute_raw(sea_orm::Statement::from_sql_and_values(
        pool.get_database_backend(),
        format!(
            "UPDATE contacts SET account_id = a.id FROM \
             (SELECT id, (row_number() OVER (ORDER BY id) - 1) % {accounts} AS k FROM contacts WHERE tenant_id = {p1}) AS c2 \
             JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM accounts WHERE tenant_id = {p2} AND name LIKE 'Bench account %') AS a \
             ON a.k = c2.k WHERE contacts.id = c2.id"
        ),
        [tenant.0.into(), tenant.0.into()],
    ))
    .await
    .expect("spread contacts over accounts");
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
