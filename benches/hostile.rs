//! How fast hostile queries are rejected: p50/p99 per class over HTTP, 8 clients.
//! `cargo bench --bench hostile -- [--database-url URL]` (1,000 contacts).
mod common;

use common::{SCENARIO_TIME, parse_args};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn rejection_times(url: &str, body: &Value, requests: usize) -> (Duration, Duration) {
    let client = common::client();
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < requests && started.elapsed() < SCENARIO_TIME {
        let t = Instant::now();
        let response: Value = client
            .post(url)
            .json(body)
            .send()
            .await
            .expect("response")
            .json()
            .await
            .unwrap_or(Value::Null);
        times.push(t.elapsed());
        assert!(
            response.get("errors").is_some() || response.is_null(),
            "not rejected: {response}"
        );
    }
    times.sort();
    (
        times[times.len() / 2],
        times[(times.len() * 99 / 100).min(times.len() - 1)],
    )
}

#[tokio::main]
async fn main() {
    let mut args = parse_args();
    if !std::env::args().any(|a| a == "--contacts") {
        args.contacts = 1_000;
    }
    let bench = common::start(&args).await;
    let mut deep = String::from("__typename");
    for _ in 0..60 {
        deep = format!("account {{ contacts(first: 1) {{ nodes {{ {deep} }} }} }}");
    }
    let cases: Vec<(&str, Value)> = vec![
        (
            "depth 60",
            json!({ "query": format!("{{ contacts(first: 1) {{ nodes {{ {deep} }} }} }}") }),
        ),
        (
            "2,000 aliases",
            json!({ "query": format!("{{ {}}}", (0..2000).map(|i| format!("x{i}:__typename ")).collect::<String>()) }),
        ),
        (
            "3,000 directives",
            json!({ "query": format!("{{ __typename {}}}", "@skip(if:false)".repeat(3000)) }),
        ),
        (
            "cost bomb (100×100×100)",
            json!({ "query": "{ businesses(first: 100) { nodes { tags(first: 100) { nodes { contacts(first: 100) { nodes { name } } } } } } }" }),
        ),
        (
            "circular fragments",
            json!({ "query": "{ contacts { nodes { ...A } } } fragment A on Contact { account { name } ...B } fragment B on Contact { ...A }" }),
        ),
        (
            "300 kB search string",
            json!({ "query": "query($s: String) { contacts(filter: { search: $s }) { totalCount } }", "variables": { "s": "x".repeat(300_000) } }),
        ),
        (
            "batch of 500",
            Value::Array(
                (0..500)
                    .map(|_| json!({ "query": "{ __typename }" }))
                    .collect(),
            ),
        ),
    ];
    println!("{}: rejection time of hostile queries", bench.backend);
    println!("| query | p50 ms | p99 ms |");
    println!("|---|---|---|");
    for (name, body) in cases {
        let (p50, p99) = rejection_times(&bench.url, &body, 200).await;
        println!(
            "| {name} | {:.2} | {:.2} |",
            p50.as_secs_f64() * 1000.0,
            p99.as_secs_f64() * 1000.0
        );
    }
}
