//! Running it in production: request ids, JSON logs, metrics by operation, graceful
//! shutdown, `--version`.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::spawn_app;

#[tokio::test]
async fn requests_carry_an_id_and_metrics_count_operations_by_name_and_outcome() {
    let app = spawn_app().await;
    let given = app
        .client
        .post(format!("{}/graphql", app.base_url))
        .header("x-request-id", "req-42")
        .json(&serde_json::json!({ "query": "query Dashboard { contacts(first: 1) { totalCount } }" }))
        .send()
        .await
        .expect("response");
    assert_eq!(
        given
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("req-42")
    );
    let made = app
        .client
        .post(format!("{}/graphql", app.base_url))
        .json(&serde_json::json!({ "query": "query Broken { noSuchField }" }))
        .send()
        .await
        .expect("response");
    let id = made
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "a fresh id: {id:?}");

    let metrics = app.metrics_text().await;
    for line in [
        r#"contact_gateway_graphql_operations_total{operation="Dashboard",outcome="ok"} 1"#,
        r#"contact_gateway_graphql_operations_total{operation="Broken",outcome="request_error"} 1"#,
        r#"contact_gateway_graphql_operation_duration_seconds_count{operation="Dashboard",outcome="ok"} 1"#,
        r#"contact_gateway_db_pool_connections{state="idle"}"#,
        r#"contact_gateway_db_pool_connections{state="in_use"}"#,
        "contact_gateway_sql_statement_duration_seconds_count",
    ] {
        assert!(metrics.contains(line), "missing {line}\n{metrics}");
    }
}

/// The binary serving on a free port of a fresh SQLite database, with its stdout address.
struct Served {
    child: Child,
    address: String,
    key: String,
    _dir: tempfile::TempDir,
}

fn serve(args: &[&str]) -> Served {
    let dir = tempfile::tempdir().expect("dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_contact-gateway"))
        .args(args)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("ops.db").display()),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut address, mut key) = (String::new(), String::new());
    while address.is_empty() || key.is_empty() {
        let line = lines.next().expect("server output").expect("line");
        if let Some(rest) = line.strip_prefix("contact-gateway listening on http://") {
            address = rest.trim().to_string();
        }
        if let Some(rest) = line.strip_prefix("demo API key: ") {
            key = rest.trim().to_string();
        }
    }
    Served {
        child,
        address,
        key,
        _dir: dir,
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn json_logs_have_the_request_id_operation_and_duration() {
    let mut served = serve(&["--log-format", "json"]);
    let client = reqwest::Client::new();
    let response = client
        .post(format!("http://{}/graphql", served.address))
        .bearer_auth(&served.key)
        .header("x-request-id", "trace-me-7")
        .json(
            &serde_json::json!({ "query": "query Overview { contacts(first: 2) { totalCount } }" }),
        )
        .send()
        .await
        .expect("response");
    assert_eq!(response.status(), 200);
    terminate(&served.child);
    let status = served.child.wait().expect("exit");
    assert!(status.success());
    let mut logs = String::new();
    served
        .child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut logs)
        .expect("logs");
    let operation = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|entry| entry["fields"]["message"] == "graphql operation")
        .unwrap_or_else(|| panic!("no JSON line for the operation:\n{logs}"));
    assert_eq!(operation["fields"]["operation"], "Overview");
    assert_eq!(operation["fields"]["outcome"], "ok");
    assert!(operation["fields"]["duration_ms"].as_f64().is_some());
    assert_eq!(operation["span"]["request_id"], "trace-me-7");
    assert_eq!(operation["level"], "INFO");
}

#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_zero() {
    let mut served = serve(&[]);
    let body = r#"{"query":"{ contacts(first: 3) { totalCount } }"}"#;
    let mut stream = TcpStream::connect(&served.address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    // The headers ask for `100 Continue`, which the server sends once the handler reads the
    // body: from then on the request is in flight. Then SIGTERM, then the body.
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        served.address,
        served.key,
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("head");
    stream.flush().expect("flush");
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("interim response");
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100"),
        "{}",
        String::from_utf8_lossy(&interim)
    );
    terminate(&served.child);
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(body.as_bytes()).expect("body");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("totalCount"), "{response}");
    let status = served.child.wait().expect("exit");
    assert_eq!(status.code(), Some(0));
    // And it no longer accepts connections.
    assert!(TcpStream::connect(&served.address).is_err());
}

#[test]
fn version_and_help_name_every_option_with_its_variable() {
    let version = Command::new(env!("CARGO_BIN_EXE_contact-gateway"))
        .arg("--version")
        .output()
        .expect("version");
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("contact-gateway {}", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(env!("CARGO_BIN_EXE_contact-gateway"))
        .args(["serve", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&help.stdout);
    for variable in [
        "LISTEN_ADDR",
        "DATABASE_URL",
        "LOG_FORMAT",
        "NO_DEMO",
        "GATEWAY_PRODUCTION",
        "SOURCES_FILE",
        "MAX_DEPTH",
    ] {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable}:\n{help}"
        );
    }
    // Every long option but --help has an environment variable.
    let options = help
        .lines()
        .filter(|l| l.trim_start().starts_with("--"))
        .count();
    let variables = help.matches("[env: ").count();
    assert_eq!(options, variables, "{help}");
}
