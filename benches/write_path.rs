//! Write-path benchmark: `updateContact` throughput and latency with 8 concurrent clients,
//! each changing one contact per mutation (a different contact each time).
//!
//! `cargo bench --bench write_path -- [--contacts N] [--database-url URL] [--requests R]
//! [--concurrency C]` (defaults: 10,000 contacts, SQLite, 2,000 mutations, 8 clients).
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{SCENARIO_TIME, parse_args, post};
use entity::prelude::Contact;
use sea_orm::{EntityTrait, QuerySelect};
use serde_json::json;
use uuid::Uuid;

#[tokio::main]
async fn main() {
    let mut args = parse_args();
    if !std::env::args().any(|a| a == "--contacts") {
        args.contacts = 10_000;
    }
    if !std::env::args().any(|a| a == "--requests") {
        args.requests = 2_000;
    }
    let bench = common::start(&args).await;
    let ids: Arc<Vec<Uuid>> = Arc::new(
        Contact::find()
            .select_only()
            .column(entity::contact::Column::Id)
            .into_tuple()
            .all(&bench.pool)
            .await
            .expect("ids"),
    );
    let query = "mutation($input: UpdateContactInput!) { updateContact(input: $input) { contact { id updatedAt } } }";
    let next = Arc::new(AtomicUsize::new(0));
    let client = common::client();
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, url, ids, next) =
            (client.clone(), bench.url.clone(), ids.clone(), next.clone());
        let requests = args.requests;
        workers.push(tokio::spawn(async move {
            let mut times: Vec<Duration> = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= requests || started.elapsed() > SCENARIO_TIME {
                    return times;
                }
                let id = ids[(n * 7919) % ids.len()];
                let body = json!({ "query": query, "variables": { "input": {
                    "id": id.to_string(),
                    "patch": { "notes": format!("benchmark note {n}"), "role": format!("role {}", n % 13) } } } });
                let t = Instant::now();
                post(&client, &url, &body).await;
                times.push(t.elapsed());
            }
        }));
    }
    let mut times = Vec::new();
    for w in workers {
        times.extend(w.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    times.sort();
    println!(
        "{}: {} updateContact mutations, {} clients: {:.0} mutations/s, p50 {:.2} ms, p99 {:.2} ms",
        bench.backend,
        times.len(),
        args.concurrency,
        times.len() as f64 / elapsed.as_secs_f64(),
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[(times.len() * 99 / 100).min(times.len() - 1)].as_secs_f64() * 1000.0,
    );
}
