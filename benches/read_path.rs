//! Read-path benchmark: seeds a database, serves it on 127.0.0.1:0 (`contact-gateway serve`
//! in a process of its own) and measures over HTTP, for each scenario: requests/s, p50,
//! p99, the server's CPU time per request (from its process's CPU time) and the time spent
//! in SQL per request (from its own statement timings):
//! - the nested accounts → contacts query of issue 19 at three sizes (50/10, 5/5, 100/20),
//!   and the older nested query with account, business and tags,
//! - `contacts(first: 20)` on the first page and at a cursor deep in the data,
//! - `search` latency: strings many contacts contain, few contain, and of 1–2 characters,
//!   and `totalCount` of one.
//!
//! `cargo bench --bench read_path -- [--contacts N] [--accounts A] [--database-url URL]
//! [--requests R] [--concurrency C]`; `--accounts 2000` spreads the contacts over 2,000 new
//! accounts (issue 19's data set: 50 contacts per account at 100,000). Without a URL it uses
//! a SQLite file in a temporary directory; a PostgreSQL URL names a server, on which a fresh database `cg_bench_<N>` is created.
//! Each scenario stops after R requests or 20 seconds. `BENCH_SERVER_BIN=path` serves with
//! another build of `contact-gateway` (say, the commit before a change), to compare the two
//! with the same data and clients.
mod common;

use common::{Bench, Stats, measure_server, parse_args, post, report_split};
use serde_json::{Value, json};

#[tokio::main]
async fn main() {
    let args = parse_args();
    let bench = common::start_process(&args).await;
    let url = bench.url.clone();
    let measure = |body: Value, requests: usize| run(&bench, body, requests, args.concurrency);
    println!("| query | requests | req/s | p50 ms | p99 ms | server CPU ms/req | SQL ms/req |");
    println!("|---|---|---|---|---|---|---|");
    for (accounts, contacts) in [(50, 10), (5, 5), (100, 20)] {
        let query = format!(
            "{{ accounts(first: {accounts}, orderBy: [{{field: CREATED_AT, direction: DESC}}]) {{ totalCount edges {{ cursor node {{ id name contacts(first: {contacts}) {{ totalCount nodes {{ id firstName lastName email phone tags {{ name }} }} }} }} }} }} }}"
        );
        let stats = measure(json!({ "query": query }), args.requests).await;
        report_split(
            &format!("accounts({accounts}) → contacts({contacts}) with totalCounts and tags"),
            &stats,
        );
    }
    let nested = "{ accounts(first: 50) { totalCount edges { node { name contacts(first: 10) { totalCount edges { node { name email account { name } business { name } tags { name } } } } } } } }";
    let stats = measure(json!({ "query": nested }), args.requests).await;
    report_split(
        "nested accounts(50) → contacts(10) + account, business, tags",
        &stats,
    );

    let page = "query($after: String) { contacts(first: 20, after: $after) { edges { node { id name email } } pageInfo { endCursor } } }";
    let stats = measure(json!({ "query": page }), args.requests).await;
    report_split("contacts(first: 20), first page", &stats);

    // A cursor ~90% of the way through the default order (newest first): the first row of
    // the contacts older than the 90th percentile of creation times.
    let client = common::client();
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
        json!({ "query": page, "variables": { "after": cursor } }),
        args.requests,
    )
    .await;
    report_split("contacts(first: 20) after a cursor 90% deep", &stats);

    // Common strings (walked), rare ones (through the trigram index), 1–2 characters (walked).
    for term in [
        "anna",
        "mueller",
        "robotics",
        "+49151",
        "tomás mueller",
        "zzq",
        "a",
        "zz",
        "q",
    ] {
        let q = json!({ "query": "query($s: String) { contacts(first: 20, filter: { search: $s }) { edges { node { id name } } } }", "variables": { "s": term } });
        let stats = measure(q, args.requests).await;
        report_split(&format!("search \"{term}\" (first: 20)"), &stats);
    }
    let q = json!({ "query": "{ contacts(first: 20, filter: { search: \"mueller\" }) { totalCount } }" });
    let stats = measure(q, args.requests / 4).await;
    report_split("search \"mueller\" with totalCount", &stats);
    if let Some(server) = &bench.server {
        // At once, and once the server has been idle for a while: the allocator hands freed
        // memory back to the kernel only after a delay, on its next call.
        let at_once = server.rss_mib();
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        println!(
            "server RSS after the benchmark: {at_once:.1} MiB at once, {:.1} MiB after 5 s idle",
            server.rss_mib()
        );
    }
}

async fn run(bench: &Bench, body: Value, requests: usize, concurrency: usize) -> Stats {
    measure_server(
        &bench.url,
        bench.server.as_ref(),
        body,
        requests,
        concurrency,
    )
    .await
}
