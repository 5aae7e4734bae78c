//! Sources as data: created, changed, listed and deleted through GraphQL (scope
//! `sources:manage`), validated as a whole, their tokens sealed at rest and never shown;
//! run on a schedule; one run per source across server processes.
use std::sync::atomic::Ordering;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};

use crate::common::{
    TestApp, client_with_key, failing_fields, single_error, spawn_app, spawn_app_with, tenant_of,
};
use crate::vendors::{TOKEN, Vendor, start_vendor};

const SOURCE_FIELDS: &str = "id name format url accounts businesses headers { name value }
    credential { set last4 } interval fullEvery overlap maxRequestsPerMinute enabled state
    suspended nextRunAt lastRun { status mode trigger created error { code } }";

/// `createSource(input: $input)`; returns the whole response.
pub(crate) async fn create(app: &TestApp, input: Value) -> Value {
    let query = format!(
        "mutation($input: CreateSourceInput!) {{ createSource(input: $input) {{ source {{ {SOURCE_FIELDS} }} }} }}"
    );
    app.graphql(&query, json!({ "input": input })).await
}

/// A `createSource` input for the stand-in vendor at `url`, with its token and headers.
pub(crate) fn crm(url: &str) -> Value {
    json!({
        "name": "crm", "format": "client-contacts", "url": url, "token": TOKEN,
        "headers": [{ "name": "X-Api-Version", "value": "2" }, { "name": "X-Company", "value": "acme" }],
        "interval": "90s", "maxRequestsPerMinute": 6000, "enabled": false
    })
}

/// Every row of `sources` as text, as a database dump would show it.
async fn dump_sources(app: &TestApp) -> String {
    let backend = app.db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT row_to_json(s)::text AS t FROM sources s",
        _ => {
            "SELECT hex(id) || name || url || headers || coalesce(token, '') || coalesce(token_last4, '') || coalesce(write_back, '') AS t FROM sources"
        }
    };
    app.db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .expect("dump")
        .iter()
        .map(|r| r.try_get::<String>("", "t").expect("t"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) async fn count(app: &TestApp, table: &str) -> i64 {
    let backend = app.db.get_database_backend();
    app.db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT count(*) AS n FROM {table}"),
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n")
}

#[tokio::test]
async fn a_source_is_created_listed_changed_and_deleted_and_its_token_never_shown() {
    let vendor = Vendor::with_clients(3, "2025-02-01T00:00:00.000Z");
    let url = start_vendor(vendor.clone()).await;
    let app = spawn_app().await;

    let response = create(&app, crm(&url)).await;
    let text = response.to_string();
    assert!(!text.contains(TOKEN), "the token is never returned: {text}");
    let source = &response["data"]["createSource"]["source"];
    assert_eq!(source["name"], "crm", "{response}");
    // Shorter than 16 characters: not even its last four are shown.
    assert_eq!(source["credential"], json!({ "set": true, "last4": null }));
    assert_eq!(source["interval"], "1m 30s");
    assert_eq!(source["fullEvery"], "1day");
    assert_eq!(source["overlap"], "5m");
    assert_eq!(source["maxRequestsPerMinute"], 6000);
    assert_eq!(source["state"], "DISABLED");
    assert_eq!(source["nextRunAt"], Value::Null);
    assert_eq!(
        source["headers"][1],
        json!({ "name": "X-Company", "value": "acme" })
    );

    // At rest the token is sealed: a dump of the table does not hold it.
    let dump = dump_sources(&app).await;
    assert!(dump.contains("v1."), "{dump}");
    assert!(!dump.contains(TOKEN), "{dump}");

    // The sealed token works: a run authenticates with it.
    let run = app
        .data(
            r#"mutation { syncSource(input: { name: "crm", wait: true }) { run { status created trigger } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        run["syncSource"]["run"],
        json!({ "status": "SUCCEEDED", "created": 3, "trigger": "MANUAL" })
    );

    let listed = app
        .data(
            &format!("{{ sources(first: 10) {{ totalCount nodes {{ {SOURCE_FIELDS} }} }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(listed["sources"]["totalCount"], 1);
    let node = &listed["sources"]["nodes"][0];
    assert_eq!(node["lastRun"]["status"], "SUCCEEDED");
    assert_eq!(node["lastRun"]["mode"], "FULL");
    assert!(!listed.to_string().contains(TOKEN));

    // Enabled: due at once. The token is removed with null.
    let updated = app
        .data(
            r#"mutation { updateSource(input: { name: "crm", enabled: true, token: null, interval: "15m" }) {
                source { enabled state nextRunAt interval credential { set last4 } } } }"#,
            json!({}),
        )
        .await;
    let source = &updated["updateSource"]["source"];
    assert_eq!(source["enabled"], true);
    assert_eq!(source["state"], "IDLE");
    assert_eq!(source["interval"], "15m");
    assert_eq!(source["credential"], json!({ "set": false, "last4": null }));
    assert!(source["nextRunAt"].is_string(), "{updated}");

    let deleted = app
        .data(
            r#"mutation { deleteSource(input: { name: "crm" }) { deletedSourceId } }"#,
            json!({}),
        )
        .await;
    assert_eq!(deleted["deleteSource"]["deletedSourceId"], node["id"]);
    assert_eq!(count(&app, "sources").await, 0);
    assert_eq!(count(&app, "sync_runs").await, 0, "its runs go with it");
    assert_eq!(
        app.contact_ids(json!({ "email": "person1@example.com" }))
            .await
            .len(),
        1,
        "its contacts stay"
    );
}

#[tokio::test]
async fn an_invalid_source_names_every_failing_field_and_writes_nothing() {
    let app = spawn_app().await;
    let response = create(
        &app,
        json!({ "name": "bad name", "format": "csv", "url": "ftp://example.com/{accountId}",
                "interval": "10s", "fullEvery": "soon", "maxRequestsPerMinute": 0,
                "headers": [{ "name": "Authorization", "value": "Bearer x" }] }),
    )
    .await;
    let error = single_error(&response, "VALIDATION_FAILED");
    assert_eq!(
        failing_fields(error),
        [
            "input.name",
            "input.format",
            "input.url",
            "input.accounts",
            "input.headers[0].name",
            "input.interval",
            "input.fullEvery",
            "input.maxRequestsPerMinute"
        ]
    );
    assert_eq!(count(&app, "sources").await, 0);

    // A name in use, and an update that would break the source, change nothing either.
    let url = "http://127.0.0.1:9/api/contacts";
    create(&app, crm(url)).await;
    let before = dump_sources(&app).await;
    let again = create(&app, crm(url)).await;
    assert_eq!(
        failing_fields(single_error(&again, "VALIDATION_FAILED")),
        ["input.name"]
    );
    let broken = app
        .graphql(
            r#"mutation { updateSource(input: { name: "crm", url: "http://x/{businessId}", interval: "1s" }) { source { name } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        failing_fields(single_error(&broken, "VALIDATION_FAILED")),
        ["input.businesses", "input.interval"]
    );
    let unwritable = app
        .graphql(
            r#"mutation { updateSource(input: { name: "crm", write: { method: "PUT", url: "https://x/contacts", precondition: "maybe", conflictPolicy: "coin" } }) { source { name } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        failing_fields(single_error(&unwritable, "VALIDATION_FAILED")),
        [
            "input.write.method",
            "input.write.url",
            "input.write.precondition",
            "input.write.conflictPolicy"
        ]
    );
    assert_eq!(dump_sources(&app).await, before);
    let missing = app
        .graphql(
            r#"mutation { updateSource(input: { name: "nope", enabled: true }) { source { name } } }"#,
            json!({}),
        )
        .await;
    single_error(&missing, "NOT_FOUND");
}

#[tokio::test]
async fn sources_need_their_scope_and_stay_in_their_tenant() {
    let app = spawn_app().await;
    create(&app, crm("http://127.0.0.1:9/api/contacts")).await;
    let tenant = tenant_of(&app).await;
    let with = |scopes: &'static [contact_gateway::auth::Scope], tenant| {
        let db = app.db.clone();
        async move {
            let key = contact_gateway::auth::api_keys::create_key(&db, tenant, scopes, None, None)
                .await
                .expect("key");
            client_with_key(&key.key)
        }
    };
    use contact_gateway::auth::Scope;
    let contacts_only = with(&[Scope::ContactsRead, Scope::ContactsWrite], tenant).await;
    let post = |client: reqwest::Client, query: &'static str| {
        let url = format!("{}/graphql", app.base_url);
        async move {
            client
                .post(url)
                .json(&json!({ "query": query }))
                .send()
                .await
                .expect("send")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    for query in [
        "{ sources { totalCount } }",
        r#"mutation { deleteSource(input: { name: "crm" }) { deletedSourceId } }"#,
        r#"mutation { syncSource(input: { name: "crm" }) { run { id } } }"#,
    ] {
        let response = post(contacts_only.clone(), query).await;
        let error = single_error(&response, "FORBIDDEN");
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains("sources:manage"),
            "{error}"
        );
    }
    // A key with only sources:manage manages sources but reads no contacts.
    let sources_only = with(&[Scope::SourcesManage], tenant).await;
    let listed = post(sources_only.clone(), "{ sources { totalCount } }").await;
    assert_eq!(listed["data"]["sources"]["totalCount"], 1, "{listed}");
    single_error(
        &post(sources_only, "{ contacts { totalCount } }").await,
        "FORBIDDEN",
    );

    // Another tenant sees none of them and reaches none by name.
    let other = contact_gateway::auth::api_keys::create_tenant(&app.db, "other")
        .await
        .expect("tenant");
    let theirs = with(
        &[Scope::ContactsRead, Scope::SourcesManage],
        contact_gateway::tenancy::TenantId(other.id),
    )
    .await;
    let listed = post(theirs.clone(), "{ sources { totalCount nodes { name } } }").await;
    assert_eq!(listed["data"]["sources"]["totalCount"], 0, "{listed}");
    let one = post(theirs.clone(), r#"{ source(name: "crm") { name } }"#).await;
    assert_eq!(one["data"]["source"], Value::Null);
    for query in [
        r#"mutation { deleteSource(input: { name: "crm" }) { deletedSourceId } }"#,
        r#"mutation { syncSource(input: { name: "crm" }) { run { id } } }"#,
        r#"mutation { updateSource(input: { name: "crm", enabled: true }) { source { name } } }"#,
    ] {
        single_error(&post(theirs.clone(), query).await, "NOT_FOUND");
    }
    assert_eq!(count(&app, "sources").await, 1);
}

#[tokio::test]
async fn the_scheduler_runs_a_due_source_and_moves_its_next_run_on() {
    let vendor = Vendor::with_clients(5, "2025-02-01T00:00:00.000Z");
    let url = start_vendor(vendor.clone()).await;
    let app = spawn_app_with(|c| c.sync.no_scheduler = false).await;
    let mut input = crm(&url);
    input["enabled"] = json!(true);
    let created = create(&app, input).await;
    assert!(created["errors"].is_null(), "{created}");
    let run = wait_for_run(&app).await;
    assert_eq!(run["trigger"], "SCHEDULE", "{run}");
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["created"], 5);
    let source = app
        .data(
            r#"{ source(name: "crm") { nextRunAt lastRun { startedAt } } }"#,
            json!({}),
        )
        .await;
    let next = chrono::DateTime::parse_from_rfc3339(
        source["source"]["nextRunAt"].as_str().expect("next run"),
    )
    .expect("date");
    let started = chrono::DateTime::parse_from_rfc3339(
        source["source"]["lastRun"]["startedAt"]
            .as_str()
            .expect("started"),
    )
    .expect("date");
    assert_eq!(
        (next - started).num_seconds(),
        90,
        "the interval after the run's start"
    );
    // Not due again for 90 s: no second run.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(vendor.seen.lock().expect("lock").len(), 1);
}

/// Waits (up to 10 s) for the first run of `crm` to end; returns it.
async fn wait_for_run(app: &TestApp) -> Value {
    for _ in 0..200 {
        let data = app
            .data(
                r#"{ source(name: "crm") { runs(first: 5) { status trigger created mode error { code message } } } }"#,
                json!({}),
            )
            .await;
        if let Some(run) = data["source"]["runs"]
            .as_array()
            .and_then(|runs| runs.iter().find(|r| r["status"] != "RUNNING"))
        {
            return run.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no run of crm ended within 10 s");
}

/// Two `serve` processes on one database, both scheduling: a source due again and again
/// while its slow run goes on is still run by one of them at a time.
#[tokio::test]
async fn two_server_processes_never_run_one_source_at_once() {
    let vendor = Vendor::with_clients(250, "2025-02-01T00:00:00.000Z");
    vendor.delay_ms.store(300, Ordering::SeqCst);
    let url = start_vendor(vendor.clone()).await;
    let app = spawn_app().await;
    let mut input = crm(&url);
    input["enabled"] = json!(true);
    create(&app, input).await;
    let servers: Vec<ServerProcess> = (0..2).map(|_| ServerProcess::start(&app)).collect();
    // Keep the source due until three runs have ended (at most 20 s): each poll of either
    // process finds it due.
    let backend = app.db.get_database_backend();
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < until
        && count(&app, "sync_runs WHERE finished_at IS NOT NULL").await < 3
    {
        app.db
            .execute_raw(Statement::from_string(
                backend,
                "UPDATE sources SET next_run_at = 0",
            ))
            .await
            .expect("due");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(servers);
    assert_eq!(
        vendor.max_in_flight.load(Ordering::SeqCst),
        1,
        "two runs fetched at once"
    );
    let runs = app
        .data(
            r#"{ source(name: "crm") { runs(first: 50) { startedAt finishedAt status } } }"#,
            json!({}),
        )
        .await;
    let runs = runs["source"]["runs"].as_array().expect("runs").clone();
    assert!(runs.len() >= 3, "runs followed one another: {runs:?}");
    // Newest first: each run started after the one before it finished.
    for pair in runs.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        if let Some(finished) = older["finishedAt"].as_str() {
            assert!(
                newer["startedAt"].as_str().expect("start") >= finished,
                "overlapping runs: {runs:?}"
            );
        }
    }
}

/// A `contact-gateway` process on the database of an app (by default `serve`, scheduling
/// every 20 ms); killed when dropped.
pub(crate) struct ServerProcess(pub(crate) std::process::Child);

impl ServerProcess {
    pub(crate) fn start(app: &TestApp) -> Self {
        let args = ["serve", "--listen", "127.0.0.1:0", "--no-demo"];
        Self::spawn(app, &args, std::process::Stdio::null())
    }

    /// `serve` on a free port of 127.0.0.1, once it answers: the process and its base URL.
    pub(crate) async fn serve(app: &TestApp) -> (Self, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let server = Self::spawn(
            app,
            &["serve", "--listen", &listen, "--no-demo"],
            std::process::Stdio::null(),
        );
        let base_url = format!("http://{listen}");
        for _ in 0..200 {
            if reqwest::get(format!("{base_url}/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return (server, base_url);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the server did not start");
    }

    /// `contact-gateway <args>`, its standard error kept for [`ServerProcess::finish`].
    pub(crate) fn run(app: &TestApp, args: &[&str]) -> Self {
        Self::spawn(app, args, std::process::Stdio::piped())
    }

    fn spawn(app: &TestApp, args: &[&str], stderr: std::process::Stdio) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_contact-gateway"))
            .args(args)
            .env("DATABASE_URL", &app.database_url)
            .env("GATEWAY_SECRET_KEY", crate::common::TEST_SECRET_KEY)
            .env("SOURCES_ALLOW_PRIVATE_NETWORKS", "true")
            .env("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true")
            .env("SYNC_POLL_MS", "20")
            .env("WRITE_BACK_POLL_MS", "20")
            .env("WRITE_BACK_BACKOFF_MS", "100")
            .env("WRITE_BACK_LEASE_MS", "1000")
            .env("GATEWAY_PRODUCTION", "true")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("contact-gateway");
        Self(child)
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
    }

    /// Waits for the process to exit: its status and standard error (empty unless started
    /// with [`ServerProcess::run`]).
    pub(crate) async fn finish(mut self) -> (std::process::ExitStatus, String) {
        tokio::task::spawn_blocking(move || {
            let mut stderr = String::new();
            if let Some(mut pipe) = self.0.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            (self.0.wait().expect("wait"), stderr)
        })
        .await
        .expect("join")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The command line manages the same sources: `source create` seals the token from the
/// environment, `source list` never shows it, `source update` changes what its flags say,
/// `sync` runs a tenant's sources and `source delete` removes one.
// Multi-threaded: the stand-in vendor answers while a test thread waits for the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_manages_and_runs_sources() {
    let vendor = Vendor::with_clients(4, "2025-02-01T00:00:00.000Z");
    let url = start_vendor(vendor.clone()).await;
    let app = spawn_app().await;
    let tenant = tenant_of(&app).await.0.to_string();
    let cli = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_contact-gateway"))
            .args(args)
            .args(["--database-url", &app.database_url])
            .env("GATEWAY_SECRET_KEY", crate::common::TEST_SECRET_KEY)
            .env("SOURCES_ALLOW_PRIVATE_NETWORKS", "true")
            .env("WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "true")
            .env("CRM_TOKEN", TOKEN)
            .output()
            .expect("run the CLI");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    let (ok, out) = cli(&[
        "source",
        "create",
        "--tenant",
        &tenant,
        "--name",
        "crm",
        "--format",
        "client-contacts",
        "--url",
        &url,
        "--header",
        "X-Api-Version: 2",
        "--token-env",
        "CRM_TOKEN",
        "--interval",
        "10m",
        "--disabled",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = cli(&["source", "list", "--tenant", &tenant]);
    assert!(ok, "{out}");
    assert!(
        out.contains("crm") && out.contains("10m") && out.contains("\tset\t"),
        "{out}"
    );
    assert!(!out.contains(TOKEN), "{out}");

    // A bad change names its field and writes nothing.
    let (ok, out) = cli(&[
        "source",
        "update",
        "--tenant",
        &tenant,
        "--name",
        "crm",
        "--interval",
        "5s",
    ]);
    assert!(!ok);
    assert!(out.contains("interval"), "{out}");

    let (ok, out) = cli(&["sync", "--tenant", &tenant, "--source", "crm"]);
    assert!(ok, "{out}");
    assert!(out.contains("created 4"), "{out}");
    let source = app
        .data(
            r#"{ source(name: "crm") { interval lastRun { trigger status } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(source["source"]["interval"], "10m");
    assert_eq!(
        source["source"]["lastRun"],
        json!({ "trigger": "MANUAL", "status": "SUCCEEDED" })
    );

    let (ok, out) = cli(&["source", "delete", "--tenant", &tenant, "--name", "crm"]);
    assert!(ok, "{out}");
    assert_eq!(count(&app, "sources").await, 0);
}

/// A tenant chooses a source's URL: by default the server fetches only public hosts, and a
/// stored token is never sent to a host it was not given for.
#[tokio::test]
async fn a_source_reaches_only_public_hosts_and_its_token_stays_with_its_host() {
    let vendor = Vendor::with_clients(2, "2025-02-01T00:00:00.000Z");
    let url = start_vendor(vendor.clone()).await;
    let app = spawn_app_with(|c| c.sync.allow_private_networks = false).await;
    create(&app, crm(&url)).await;
    let data = app
        .data(
            r#"mutation { syncSource(input: { name: "crm", wait: true }) { run { status error { code message } } } }"#,
            json!({}),
        )
        .await;
    let error = &data["syncSource"]["run"]["error"];
    assert_eq!(error["code"], "UPSTREAM_FAILED", "{data}");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("not a public address"),
        "{error}"
    );
    assert!(
        vendor.seen.lock().expect("lock").is_empty(),
        "nothing was sent"
    );

    let moved = app
        .graphql(
            r#"mutation { updateSource(input: { name: "crm", url: "https://crm.example.com/api/contacts" }) { source { url } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        failing_fields(single_error(&moved, "VALIDATION_FAILED")),
        ["input.token"]
    );
    let moved = app
        .data(
            r#"mutation { updateSource(input: { name: "crm", url: "https://crm.example.com/api/contacts", token: null }) {
                source { url credential { set } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(moved["updateSource"]["source"]["credential"]["set"], false);
}
