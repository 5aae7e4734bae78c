//! Read-path benchmark: seeds a database, serves it on 127.0.0.1:0 and measures over HTTP
//! - the nested accounts → contacts query (requests/s, p50, p99),
//! - `contacts(first: 20)` on the first page and at a cursor deep in the data,
//! - `search` latency.
//!
//! `cargo bench --bench read_path -- [--contacts N] [--database-url URL] [--requests R]
//! [--concurrency C]`. Without a URL it uses a SQLite file in a temporary directory; a
//! PostgreSQL URL names a server, on which a fresh database `cg_bench_<N>` is created.
use std::time::{Duration, Instant};

use contact_gateway::config::{Config, DatabaseConfig};
use contact_gateway::startup::Application;
use contact_gateway::{db, demo};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

struct Args {
    contacts: usize,
    database_url: Option<String>,
    requests: usize,
    concurrency: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        contacts: 100_000,
        database_url: None,
        requests: 400,
        concurrency: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--contacts" => args.contacts = value().parse().unwrap_or(args.contacts),
            "--database-url" => args.database_url = Some(value()),
            "--requests" => args.requests = value().parse().unwrap_or(args.requests),
            "--concurrency" => args.concurrency = value().parse().unwrap_or(args.concurrency),
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

struct Stats {
    count: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// Longest a scenario runs: it stops after `requests` requests or this long, whichever
/// comes first.
const SCENARIO_TIME: Duration = Duration::from_secs(20);

/// Sends up to `requests` POSTs of `body`, `concurrency` at a time, for at most
/// [`SCENARIO_TIME`]; every answer must be free of errors.
async fn measure(url: &str, body: Value, requests: usize, concurrency: usize) -> Stats {
    let client = reqwest::Client::new();
    // Warm-up.
    for _ in 0..2 {
        post(&client, url, &body).await;
    }
    let started = Instant::now();
    let per_worker = requests.div_ceil(concurrency);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, body) = (client.clone(), url.to_string(), body.clone());
        workers.push(tokio::spawn(async move {
            let mut times = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                if started.elapsed() > SCENARIO_TIME {
                    break;
                }
                let t = Instant::now();
                post(&client, &url, &body).await;
                times.push(t.elapsed());
            }
            times
        }));
    }
    let mut times = Vec::new();
    for w in workers {
        times.extend(w.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    times.sort();
    Stats {
        count: times.len(),
        per_second: times.len() as f64 / elapsed.as_secs_f64(),
        p50: times[times.len() / 2],
        p99: times[(times.len() * 99 / 100).min(times.len() - 1)],
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let response: Value = client
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(response.get("errors").is_none(), "{response}");
    response
}

fn report(name: &str, stats: &Stats) {
    println!(
        "| {name} | {} | {:.0} | {:.2} | {:.2} |",
        stats.count,
        stats.per_second,
        stats.p50.as_secs_f64() * 1000.0,
        stats.p99.as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let args = parse_args();
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
    };
    let app = Application::build(&config).await.expect("app");
    let url = format!("http://{}/graphql", app.address());
    tokio::spawn(app.run_until_stopped());

    println!("| query | requests | req/s | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    let nested = "{ accounts(first: 50) { totalCount edges { node { name contacts(first: 10) { totalCount edges { node { name email account { name } business { name } tags { name } } } } } } } }";
    let stats = measure(
        &url,
        json!({ "query": nested }),
        args.requests,
        args.concurrency,
    )
    .await;
    report(
        "nested accounts(50) → contacts(10) + account, business, tags",
        &stats,
    );

    let page = "query($after: String) { contacts(first: 20, after: $after) { edges { node { id name email } } pageInfo { endCursor } } }";
    let stats = measure(
        &url,
        json!({ "query": page }),
        args.requests,
        args.concurrency,
    )
    .await;
    report("contacts(first: 20), first page", &stats);

    // A cursor ~90% of the way through the default order (newest first): the first row of
    // the contacts older than the 90th percentile of creation times.
    let client = reqwest::Client::new();
    let deep_ts = {
        let q = "{ contacts(first: 1, orderBy: [{field: CREATED_AT, direction: ASC}], filter: {}) { edges { node { createdAt } } } }";
        // The 10th-percentile creation time: walk from the oldest with a cursor-free filter.
        let oldest = post(&client, &url, &json!({ "query": q })).await;
        let oldest = oldest["data"]["contacts"]["edges"][0]["node"]["createdAt"].clone();
        let newest = post(
            &client,
            &url,
            &json!({ "query": "{ contacts(first: 1) { edges { node { createdAt } } } }" }),
        )
        .await;
        let newest = newest["data"]["contacts"]["edges"][0]["node"]["createdAt"].clone();
        let parse = |v: &Value| {
            chrono::DateTime::parse_from_rfc3339(v.as_str().expect("ts"))
                .expect("rfc3339")
                .timestamp_millis()
        };
        let (o, n) = (parse(&oldest), parse(&newest));
        contact_gateway::time::format_millis(o + (n - o) / 10)
    };
    let deep = post(
        &client,
        &url,
        &json!({ "query": "query($ts: DateTime) { contacts(first: 1, filter: { createdAt: { lte: $ts } }) { pageInfo { endCursor } } }", "variables": { "ts": deep_ts } }),
    )
    .await;
    let cursor = deep["data"]["contacts"]["pageInfo"]["endCursor"].clone();
    let stats = measure(
        &url,
        json!({ "query": page, "variables": { "after": cursor } }),
        args.requests,
        args.concurrency,
    )
    .await;
    report("contacts(first: 20) after a cursor 90% deep", &stats);

    for term in ["anna", "mueller", "robotics", "+49151", "zz"] {
        let q = json!({ "query": "query($s: String) { contacts(first: 20, filter: { search: $s }) { edges { node { id name } } } }", "variables": { "s": term } });
        let stats = measure(&url, q, args.requests, args.concurrency).await;
        report(&format!("search \"{term}\" (first: 20)"), &stats);
    }
    let q = json!({ "query": "{ contacts(first: 20, filter: { search: \"mueller\" }) { totalCount } }" });
    let stats = measure(&url, q, args.requests / 4, args.concurrency).await;
    report("search \"mueller\" with totalCount", &stats);
}
