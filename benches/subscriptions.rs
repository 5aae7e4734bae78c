//! Subscription benchmark: `contact-gateway serve` in a process of its own, subscribers over
//! real WebSockets (`graphql-transport-ws`), one API key with its limit raised.
//!
//! 1. Memory: the server's RSS with `--subscribers N` (1,000) idle subscribers.
//! 2. Latency: `--updates U` (50) `updateContact`s, one every 20 ms; for each, the time from
//!    sending the mutation until each subscriber has the change (p50, p99, max).
//! 3. Import: `contact-gateway import` of `--import N` (100,000) contacts (seed 003's format),
//!    alone and with `--import-subscribers S` (100) subscribers receiving every change. Each
//!    import goes into a tenant of its own (the same records into one tenant would be an
//!    update, not an import), after a warm-up import that is not counted, in the order
//!    alone, watched, watched, alone (`--import-rounds R` times): the database grows by N
//!    contacts with each, and this order gives both kinds the same average size. Reported
//!    with the CPU time of the import process, the server and the subscribers (this
//!    process), and how busy the machine was.
//!
//! `cargo bench --bench subscriptions -- [--subscribers 1000] [--updates 50] [--import 100000]
//! [--import-subscribers 100] [--import-rounds 1]
//! [--database-url postgres://…/an_empty_database]` (default: a fresh SQLite file).
mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::rss_mib;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const BIN: &str = env!("CARGO_BIN_EXE_contact-gateway");

struct Args {
    subscribers: usize,
    updates: usize,
    import: usize,
    import_subscribers: usize,
    import_rounds: usize,
    database_url: Option<String>,
}

fn args() -> Args {
    let mut args = Args {
        subscribers: 1_000,
        updates: 50,
        import: 100_000,
        import_subscribers: 100,
        import_rounds: 1,
        database_url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--subscribers" => args.subscribers = value().parse().unwrap_or(args.subscribers),
            "--updates" => args.updates = value().parse().unwrap_or(args.updates),
            "--import" => args.import = value().parse().unwrap_or(args.import),
            "--import-subscribers" => {
                args.import_subscribers = value().parse().unwrap_or(args.import_subscribers)
            }
            "--import-rounds" => args.import_rounds = value().parse().unwrap_or(1),
            "--database-url" => args.database_url = Some(value()),
            _ => {}
        }
    }
    args
}

/// Runs `contact-gateway <args>` on the database; its standard output.
fn cli(database_url: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("contact-gateway");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// What a subscriber does with the changes it receives.
#[derive(Clone)]
enum Receiving {
    /// Sends the latency phase's changes to the channel with their arrival times (and
    /// counts the others).
    Timed(
        tokio::sync::mpsc::UnboundedSender<(String, Instant)>,
        Arc<AtomicUsize>,
    ),
    /// Counts them: parsing every change of an import would take the cores the server and
    /// the import need, and no remote client's work is the server's.
    Counted(Arc<AtomicUsize>),
}

/// Opens a subscriber, receiving as `receiving` says; returns once it has sent its
/// `subscribe`.
async fn subscriber(base: &str, key: &str, receiving: Receiving) -> tokio::task::JoinHandle<()> {
    let (subscribed, ready) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(subscription(
        base.to_string(),
        key.to_string(),
        receiving,
        subscribed,
    ));
    let _ = ready.await;
    task
}

/// A subscriber's connection: opens it, sends `subscribe` (then tells `subscribed`) and
/// receives.
async fn subscription(
    base: String,
    key: String,
    receiving: Receiving,
    subscribed: tokio::sync::oneshot::Sender<()>,
) {
    let mut request = format!("{}/graphql", base.replace("http://", "ws://"))
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().expect("header"),
    );
    // Reads of at most 32 KiB: tungstenite zeroes the free part of its read buffer (by
    // default 128 KiB) before each read, whatever arrives.
    let config = WebSocketConfig::default().read_buffer_size(32 * 1024);
    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false)
            .await
            .expect("connected");
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {key}") } });
    socket
        .send(Message::Text(init.to_string().into()))
        .await
        .expect("init");
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription { contactChanged { kind contact { lastName } } }" } });
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .expect("subscribe");
    let _ = subscribed.send(());
    while let Some(Ok(frame)) = socket.next().await {
        if let Message::Text(text) = frame {
            let (seen, others) = match &receiving {
                Receiving::Counted(count) => {
                    count.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Receiving::Timed(seen, others) => (seen, others),
            };
            if !text.contains("\"bench-") {
                others.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let at = Instant::now();
            let message: Value = serde_json::from_str(&text).unwrap_or_default();
            if message["type"] == "next" {
                let name = message["payload"]["data"]["contactChanged"]["contact"]["lastName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let _ = seen.send((name, at));
            }
        }
    }
}

/// One measured import.
struct ImportRun {
    seconds: f64,
    /// Changes its subscribers received.
    received: usize,
    server_ms: f64,
    subscribers_ms: f64,
    /// The `import` process's own CPU time.
    import_ms: f64,
    /// The share of the machine's CPU time in use while it ran.
    busy: f64,
}

/// The CPU time of this process's children that were waited for (`import`), in ms.
fn children_cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0.0))
                .collect()
        })
        .unwrap_or_default();
    // cutime and cstime: the 14th and 15th fields after the command.
    (fields.get(13).unwrap_or(&0.0) + fields.get(14).unwrap_or(&0.0)) * 10.0
}

/// The machine's busy and total CPU ticks so far (`/proc/stat`).
fn machine_ticks() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().unwrap_or(0.0))
        .collect();
    let total: f64 = ticks.iter().sum();
    // idle and iowait are the 4th and 5th.
    let idle = ticks.get(3).unwrap_or(&0.0) + ticks.get(4).unwrap_or(&0.0);
    (total - idle, total)
}

fn import(database_url: &str, tenant: &str, source: &str, file: &std::path::Path) -> Duration {
    let started = Instant::now();
    cli(
        database_url,
        &[
            "import",
            "--format",
            "client-contacts",
            "--tenant",
            tenant,
            "--source",
            source,
            &file.display().to_string(),
        ],
    );
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });
    let backend = if database_url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    cli(&database_url, &["migrate"]);
    let tenant = cli(&database_url, &["tenant", "create", "--name", "bench"]);
    let key = common::api_key(&database_url, &tenant, "contacts:read,contacts:write");
    let (mut server, base) = common::serve(
        &database_url,
        &[(
            "MAX_SUBSCRIPTIONS_PER_KEY",
            (args.subscribers + 200).to_string(),
        )],
    )
    .await;
    let pid = server.id();
    println!(
        "{backend}: server pid {pid} at {base}; RSS at start {:.1} MiB",
        rss_mib(pid)
    );

    // 1. Memory with idle subscribers.
    let created: Value = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(&key)
        .json(&json!({ "query": "mutation { createContact(input: { contact: { lastName: \"start\" } }) { contact { id } } }" }))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let id = created["data"]["createContact"]["contact"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let before = rss_mib(pid);
    let (seen, mut received) = tokio::sync::mpsc::unbounded_channel();
    let others = Arc::new(AtomicUsize::new(0));
    let mut open = Vec::new();
    for chunk in 0..args.subscribers.div_ceil(100) {
        let batch = (args.subscribers - chunk * 100).min(100);
        open.extend(
            futures::future::join_all(
                (0..batch).map(|_| {
                    subscriber(&base, &key, Receiving::Timed(seen.clone(), others.clone()))
                }),
            )
            .await,
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_mib(pid);
    println!(
        "{} idle subscribers: server RSS {:.1} MiB (before them {:.1} MiB)",
        args.subscribers, idle, before
    );

    // 2. Latency.
    let client = reqwest::Client::new();
    let mut sent: Vec<Instant> = Vec::new();
    for k in 0..args.updates {
        sent.push(Instant::now());
        let response = client
            .post(format!("{base}/graphql"))
            .bearer_auth(&key)
            .json(&json!({ "query": "mutation($id: ID!, $n: String) { updateContact(input: { id: $id, patch: { lastName: $n } }) { contact { id } } }",
                "variables": { "id": id, "n": format!("bench-{k}") } }))
            .send()
            .await
            .expect("sent");
        assert!(response.status().is_success());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = Arc::new(sent);
    let expected = args.subscribers * args.updates;
    let mut latencies = Vec::with_capacity(expected);
    let until = Instant::now() + Duration::from_secs(30);
    while latencies.len() < expected && Instant::now() < until {
        match tokio::time::timeout(Duration::from_secs(5), received.recv()).await {
            Ok(Some((name, at))) => {
                if let Some(k) = name
                    .strip_prefix("bench-")
                    .and_then(|k| k.parse::<usize>().ok())
                {
                    latencies.push(at.duration_since(sent[k]));
                }
            }
            _ => break,
        }
    }
    latencies.sort();
    let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{} updates to {} subscribers: {} of {expected} changes received; from sending the mutation: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; server RSS after {:.1} MiB",
        args.updates,
        args.subscribers,
        latencies.len(),
        pct(50).as_secs_f64() * 1000.0,
        pct(99).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        rss_mib(pid)
    );
    for task in open {
        task.abort();
    }
    drop(seen);

    // 3. Imports, alone and watched, each into a tenant of its own.
    if args.import > 0 {
        let file = dir.path().join("contacts.json");
        let records: Vec<Value> = (1..=args.import)
            .map(|i| {
                json!({ "id": i, "client_id": 1 + i % 50,
                "created_at": "2025-10-28T10:23:49.429Z", "updated_at": "2025-10-28T10:23:49.429Z",
                "email": format!("client{i}@example.com"), "name": format!("Name{i}"),
                "surname": format!("Surname{}", i % 997), "telephone": format!("+4930{i:08}") })
            })
            .collect();
        std::fs::write(&file, serde_json::to_vec(&records).expect("json")).expect("file");
        let run = |watchers: usize| {
            let (database_url, base, file) = (&database_url, &base, &file);
            let expected = watchers * args.import;
            async move {
                let tenant = cli(database_url, &["tenant", "create", "--name", "import"]);
                let key = common::api_key(database_url, &tenant, "contacts:read");
                let others = Arc::new(AtomicUsize::new(0));
                let mut open = Vec::new();
                for _ in 0..watchers {
                    let receiving = Receiving::Counted(others.clone());
                    open.push(subscriber(base, &key, receiving).await);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                let (server_0, self_0, import_0, machine_0) = (
                    common::cpu_ms(pid),
                    common::cpu_ms("self"),
                    children_cpu_ms(),
                    machine_ticks(),
                );
                let took = import(database_url, &tenant, "bench", file);
                let (import_ms, machine) = (children_cpu_ms() - import_0, machine_ticks());
                let busy = (machine.0 - machine_0.0) / (machine.1 - machine_0.1).max(1.0);
                // Wait until the subscribers have had the import's changes (or 60 s).
                let until = Instant::now() + Duration::from_secs(60);
                let mut count = others.load(Ordering::Relaxed);
                while count < expected && Instant::now() < until {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    let now = others.load(Ordering::Relaxed);
                    if now == count {
                        break;
                    }
                    count = now;
                }
                let run = ImportRun {
                    seconds: took.as_secs_f64(),
                    received: count,
                    server_ms: common::cpu_ms(pid) - server_0,
                    subscribers_ms: common::cpu_ms("self") - self_0,
                    import_ms,
                    busy,
                };
                for task in open {
                    task.abort();
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                run
            }
        };
        run(0).await;
        let (mut alone, mut watched) = (Vec::new(), Vec::new());
        for _ in 0..args.import_rounds.max(1) {
            alone.push(run(0).await);
            watched.push(run(args.import_subscribers).await);
            watched.push(run(args.import_subscribers).await);
            alone.push(run(0).await);
        }
        let mean = |runs: &[ImportRun], f: fn(&ImportRun) -> f64| {
            runs.iter().map(f).sum::<f64>() / runs.len() as f64
        };
        let list = |runs: &[ImportRun]| {
            runs.iter()
                .map(|r| format!("{:.2}", r.seconds))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (a, w) = (mean(&alone, |r| r.seconds), mean(&watched, |r| r.seconds));
        println!(
            "import of {} contacts: {a:.2} s alone ({}), {w:.2} s with {} subscribers ({}): {:+.1}%; server RSS after {:.1} MiB",
            args.import,
            list(&alone),
            args.import_subscribers,
            list(&watched),
            (w / a - 1.0) * 100.0,
            rss_mib(pid)
        );
        let received = mean(&watched, |r| r.received as f64).max(1.0);
        println!(
            "per import, alone / watched: the import process's CPU {:.1} / {:.1} s, machine busy {:.0}% / {:.0}% while it ran; watched: {received:.0} changes received (LAGGED ones stand for many), server CPU {:.1} s ({:.2} µs a change), subscribers' CPU {:.1} s ({:.2} µs a change)",
            mean(&alone, |r| r.import_ms) / 1000.0,
            mean(&watched, |r| r.import_ms) / 1000.0,
            mean(&alone, |r| r.busy) * 100.0,
            mean(&watched, |r| r.busy) * 100.0,
            mean(&watched, |r| r.server_ms) / 1000.0,
            mean(&watched, |r| r.server_ms) * 1000.0 / received,
            mean(&watched, |r| r.subscribers_ms) / 1000.0,
            mean(&watched, |r| r.subscribers_ms) * 1000.0 / received,
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
