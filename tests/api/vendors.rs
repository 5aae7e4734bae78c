//! Stand-in vendor servers, and gateways whose sources file points at them.
//!
//! Every test that talks to a vendor API (sync now; write-back next) gets its stand-in
//! vendor from here instead of a hand-made server of its own, so that what a vendor does
//! (paging, auth, failures, slowness) is written once and means the same in every test:
//!
//! - [`Vendor`] stands in for seed 003's API (client contacts): `limit`/`offset` paging over
//!   the `records` a test puts there, `updated_at=gt:` filtering, Bearer auth, and scripted
//!   failures, malformed pages and delays. It records every request's query string. Its
//!   write side (`PATCH`/`DELETE /api/contacts/{id}`) applies only the fields sent, answers
//!   412 when `If-Unmodified-Since` is older than the record, 400 `invalid_data` past seed
//!   003's limits, 404 for an unknown id, honours `Idempotency-Key`, and records every
//!   write ([`Write`]).
//! - [`start_paged_vendors`] stands in for seeds 002 (business contacts, `page`/`limit`) and
//!   004 (pipeline contacts, `page`/`size`) with fixed records, recording every request.
//! - [`app_with_source`] and [`app_with_sources`] start a gateway whose sources file names
//!   such a server; [`SYNC`] syncs the source `crm` of [`app_with_source`].
//!
//! Every stand-in wants `Authorization: Bearer vendor-token` ([`TOKEN`]); the gateways read
//! it from the environment variable [`TOKEN_ENV`], which [`app_with_sources`] sets.
//! A new vendor behaviour belongs here, as a field of the stand-in it concerns (or a new
//! stand-in), documented, once a test uses it.
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{TestApp, spawn_app, spawn_app_on_database_of, tenant_of};

/// The token every stand-in vendor accepts (as `Authorization: Bearer <TOKEN>`).
pub(crate) const TOKEN: &str = "vendor-token";

/// The environment variable the sources files of [`app_with_sources`] name as `token_env`.
pub(crate) const TOKEN_ENV: &str = "CG_TEST_VENDOR_TOKEN";

/// Whether a request carries `Authorization: Bearer <TOKEN>`.
fn authorised(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(TOKEN)
}

/// Serves `router` on a free port of 127.0.0.1 until the test ends.
async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

// ----- seed 003: client contacts, limit/offset -----

/// A scripted failure: status and `Retry-After` (`"+N"` sends the HTTP date N seconds
/// from now).
pub(crate) type Scripted = (u16, Option<&'static str>);

/// A stand-in for seed 003's API: `limit`/`offset` paging over `records`, Bearer auth
/// ([`TOKEN`], and an `X-Api-Version` header), `updated_at=gt:` filtering, and failures
/// scripted per request. Clones share their state: keep one to script and inspect the
/// server that [`start_vendor`] runs.
#[derive(Clone, Default)]
pub(crate) struct Vendor {
    /// The records, in the order pages are cut from (see [`client_record`]).
    pub(crate) records: Arc<Mutex<Vec<Value>>>,
    /// How long each page takes to answer (ms).
    pub(crate) delay_ms: Arc<AtomicU64>,
    /// Responses to give instead of a page, first to last (status, Retry-After); each is
    /// used once, by the next authorised request.
    pub(crate) failures: Arc<Mutex<Vec<Scripted>>>,
    /// The offset whose page is malformed (a JSON object, not an array), if any.
    pub(crate) malformed_at: Arc<Mutex<Option<u64>>>,
    /// Every request's query string.
    pub(crate) seen: Arc<Mutex<Vec<String>>>,
    /// When each request arrived, in order.
    pub(crate) seen_at: Arc<Mutex<Vec<std::time::Instant>>>,
    /// Requests being answered now, and the most there ever were at once.
    pub(crate) in_flight: Arc<AtomicU64>,
    pub(crate) max_in_flight: Arc<AtomicU64>,
    /// Every write request, in order of arrival.
    pub(crate) writes: Arc<Mutex<Vec<Write>>>,
    /// Responses to give instead of applying a write, first to last (status,
    /// Retry-After); each is used once.
    pub(crate) write_failures: Arc<Mutex<Vec<Scripted>>>,
    /// The answer given to each idempotency key that was applied.
    pub(crate) applied: Arc<Mutex<HashMap<String, Value>>>,
    /// How long a write's answer takes once it is applied (ms).
    pub(crate) write_delay_ms: Arc<AtomicU64>,
}

/// A write request as the vendor saw it.
#[derive(Clone, Debug)]
pub(crate) struct Write {
    pub(crate) method: String,
    /// The record id of the path.
    pub(crate) id: String,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) if_unmodified_since: Option<String>,
    pub(crate) body: Value,
    /// When it arrived.
    pub(crate) at: std::time::Instant,
}

impl Vendor {
    /// A vendor holding client records `1..=n`, all last updated at `updated`.
    pub(crate) fn with_clients(n: u64, updated: &str) -> Self {
        let vendor = Vendor::default();
        *vendor.records.lock().expect("lock") =
            (1..=n).map(|i| client_record(i, updated)).collect();
        vendor
    }
}

async fn vendor_contacts(
    State(vendor): State<Vendor>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    uri: Uri,
) -> Response {
    vendor
        .seen
        .lock()
        .expect("lock")
        .push(uri.query().unwrap_or_default().to_string());
    vendor
        .seen_at
        .lock()
        .expect("lock")
        .push(std::time::Instant::now());
    let now = vendor.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    vendor.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let response = answer(&vendor, &headers, &query).await;
    vendor.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

/// The response of [`vendor_contacts`] to one request.
async fn answer(vendor: &Vendor, headers: &HeaderMap, query: &HashMap<String, String>) -> Response {
    let delay = vendor.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if !authorised(headers) || headers.get("x-api-version").is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"key": "unauthorized", "message": "bad token"})),
        )
            .into_response();
    }
    let scripted = {
        let mut failures = vendor.failures.lock().expect("lock");
        (!failures.is_empty()).then(|| failures.remove(0))
    };
    if let Some((status, retry_after)) = scripted {
        let mut response = (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(json!({"key": "x", "message": "scripted"})),
        )
            .into_response();
        if let Some(value) = retry_after {
            // `+N`: an HTTP date N seconds from now.
            let value = match value.strip_prefix('+') {
                Some(secs) => {
                    let at = chrono::Utc::now()
                        + chrono::Duration::seconds(secs.parse().expect("seconds"));
                    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
                }
                None => value.to_string(),
            };
            response
                .headers_mut()
                .insert("retry-after", value.parse().expect("header"));
        }
        return response;
    }
    let offset: u64 = query
        .get("offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let limit: usize = query
        .get("limit")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    if *vendor.malformed_at.lock().expect("lock") == Some(offset) {
        return (StatusCode::OK, axum::Json(json!({"unexpected": true}))).into_response();
    }
    let since = query
        .get("updated_at")
        .and_then(|v| v.strip_prefix("gt:"))
        .map(str::to_string);
    let records = vendor.records.lock().expect("lock").clone();
    let page: Vec<Value> = records
        .into_iter()
        .filter(|r| {
            since
                .as_deref()
                .is_none_or(|s| r["updated_at"].as_str().unwrap_or_default() > s)
        })
        .skip(offset as usize)
        .take(limit)
        .collect();
    axum::Json(Value::Array(page)).into_response()
}

/// Seed 003's limits (characters) of the fields it takes.
const CLIENT_LIMITS: [(&str, usize); 6] = [
    ("email", 150),
    ("name", 100),
    ("surname", 100),
    ("role", 75),
    ("linkedin", 250),
    ("description", 100),
];

fn error(status: StatusCode, key: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "key": key, "message": message })),
    )
        .into_response()
}

async fn vendor_write(
    State(vendor): State<Vendor>,
    Path(id): Path<String>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    vendor.writes.lock().expect("lock").push(Write {
        method: method.to_string(),
        id: id.clone(),
        idempotency_key: header("idempotency-key"),
        if_unmodified_since: header("if-unmodified-since"),
        body: body.clone(),
        at: std::time::Instant::now(),
    });
    if !authorised(&headers) {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "bad token");
    }
    let scripted = {
        let mut failures = vendor.write_failures.lock().expect("lock");
        (!failures.is_empty()).then(|| failures.remove(0))
    };
    if let Some((status, retry_after)) = scripted {
        let mut response = error(
            StatusCode::from_u16(status).expect("status"),
            "x",
            "scripted",
        );
        if let Some(value) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", value.parse().expect("header"));
        }
        return response;
    }
    let key = header("idempotency-key");
    if let Some(answer) = key
        .as_ref()
        .and_then(|k| vendor.applied.lock().expect("lock").get(k).cloned())
    {
        return axum::Json(answer).into_response();
    }
    let delete = method == axum::http::Method::DELETE;
    let answer = match apply_write(
        &vendor,
        &id,
        delete,
        header("if-unmodified-since"),
        &body,
        key,
    ) {
        Ok(Some(answer)) => answer,
        Ok(None) => return StatusCode::NO_CONTENT.into_response(),
        Err(response) => return *response,
    };
    let delay = vendor.write_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    axum::Json(answer).into_response()
}

/// Applies a write to record `id`: its answer (`None` for a delete), or the refusal.
fn apply_write(
    vendor: &Vendor,
    id: &str,
    delete: bool,
    if_unmodified_since: Option<String>,
    body: &Value,
    key: Option<String>,
) -> Result<Option<Value>, Box<Response>> {
    let mut records = vendor.records.lock().expect("lock");
    let Some(index) = records
        .iter()
        .position(|r| r["id"].as_u64().is_some_and(|n| n.to_string() == id))
    else {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "not_found",
            "Contact not found",
        )));
    };
    if let Some(since) = if_unmodified_since {
        let since = chrono::DateTime::parse_from_rfc2822(&since).expect("HTTP date");
        let updated = chrono::DateTime::parse_from_rfc3339(
            records[index]["updated_at"].as_str().unwrap_or_default(),
        )
        .expect("updated_at");
        if updated.timestamp() > since.timestamp() {
            return Err(Box::new(error(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failure",
                "the contact was changed since",
            )));
        }
    }
    if delete {
        records.remove(index);
        return Ok(None);
    }
    let fields = body.as_object().cloned().unwrap_or_default();
    let failures: Vec<Value> = CLIENT_LIMITS
        .iter()
        .filter(|(field, max)| {
            fields
                .get(*field)
                .and_then(Value::as_str)
                .is_some_and(|v| v.chars().count() > *max)
        })
        .map(|(field, max)| json!({ "field": field, "message": format!("at most {max} characters") }))
        .collect();
    if !failures.is_empty() {
        return Err(Box::new(
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "key": "invalid_data",
                "message": "You provided invalid data. Check 'failures' for details.",
                "failures": failures })),
            )
                .into_response(),
        ));
    }
    let record = &mut records[index];
    for (field, value) in fields {
        record[field] = value;
    }
    record["updated_at"] =
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
    let answer = record.clone();
    if let Some(key) = key {
        vendor
            .applied
            .lock()
            .expect("lock")
            .insert(key, answer.clone());
    }
    Ok(Some(answer))
}

/// Runs `vendor` on a free port; returns its contacts URL (`http://…/api/contacts`).
pub(crate) async fn start_vendor(vendor: Vendor) -> String {
    let app = axum::Router::new()
        .route("/api/contacts", get(vendor_contacts))
        .route(
            "/api/contacts/{id}",
            axum::routing::patch(vendor_write).delete(vendor_write),
        )
        .with_state(vendor);
    let address = serve(app).await;
    format!("http://{address}/api/contacts")
}

/// A seed 003 record: client contact `id` (`person{id}@example.com`), last updated at
/// `updated`.
pub(crate) fn client_record(id: u64, updated: &str) -> Value {
    json!({ "id": id, "client_id": 1 + id % 3, "email": format!("person{id}@example.com"),
            "name": format!("Person{id}"), "surname": "Example", "telephone": format!("+49301234{id:04}"),
            "created_at": "2025-01-01T00:00:00.000Z", "updated_at": updated })
}

// ----- seeds 002 and 004: business and pipeline contacts, page-numbered -----

/// A stand-in for seeds 002 (`/api/v1/businesses/{businessId}/contacts`, page/limit,
/// `{ data, pagination }`) and 004 (`/api/contacts`, page/size,
/// `{ success, data: { contacts, total, page, size } }`), recording every request.
///
/// Business `b1` has 150 contacts, any other business 30, each tagged with its business's
/// `VIP` tag; the pipeline API has 230 contacts of organisation `org-1` in pipeline `pl-1`.
/// A `PATCH` of a business contact (`…/contacts/{id}`) is recorded as `PATCH <path> <body>`
/// and answered `{}`. Returns the base URL (`http://…`).
pub(crate) async fn start_paged_vendors(seen: Arc<Mutex<Vec<String>>>) -> String {
    fn business_contact(business: &str, i: usize) -> Value {
        json!({ "id": format!("{business}-{i}"), "businessId": business,
                "firstName": format!("Help{i}"), "lastName": business.to_uppercase(),
                "email": format!("help{i}@{business}.example"),
                "createdAt": "2025-01-02T00:00:00.000Z", "updatedAt": "2025-01-03T00:00:00.000Z",
                "tags": [{ "id": format!("{business}-vip"), "name": "VIP", "displayOrder": 1 }] })
    }
    fn pipeline_contact(i: usize) -> Value {
        json!({ "_id": format!("p{i:04}"), "firstName": format!("Pipe{i}"), "lastName": "Line",
                "email": format!("pipe{i}@example.com"), "organizationId": "org-1",
                "pipelineId": "pl-1", "pipelineStage": "new",
                "createdAt": "2025-01-02T00:00:00.000Z", "updatedAt": "2025-01-03T00:00:00.000Z" })
    }
    type Params = Query<HashMap<String, String>>;
    let number = |query: &Params, key: &str| -> usize {
        query.get(key).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let record = {
        let seen = seen.clone();
        move |uri: &Uri| seen.lock().expect("lock").push(uri.to_string())
    };
    let business_record = record.clone();
    let businesses = move |Path(business): Path<String>,
                           headers: HeaderMap,
                           query: Params,
                           uri: Uri| async move {
        business_record(&uri);
        if !authorised(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let total = if business == "b1" { 150 } else { 30 };
        let (page, limit) = (number(&query, "page"), number(&query, "limit"));
        let data: Vec<Value> = (1..=total)
            .skip((page.max(1) - 1) * limit)
            .take(limit)
            .map(|i| business_contact(&business, i))
            .collect();
        axum::Json(json!({ "data": data, "pagination": {
            "page": page, "limit": limit, "total": total,
            "totalPages": total.div_ceil(limit.max(1)) } }))
        .into_response()
    };
    let pipeline = move |headers: HeaderMap, query: Params, uri: Uri| async move {
        record(&uri);
        if !authorised(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let total = 230;
        let (page, size) = (number(&query, "page"), number(&query, "size"));
        let contacts: Vec<Value> = (1..=total)
            .skip((page.max(1) - 1) * size)
            .take(size)
            .map(pipeline_contact)
            .collect();
        axum::Json(json!({ "success": true, "data": {
            "contacts": contacts, "total": total, "page": page, "size": size } }))
        .into_response()
    };
    let written = seen.clone();
    let write = move |headers: HeaderMap, uri: Uri, body: String| async move {
        written
            .lock()
            .expect("lock")
            .push(format!("PATCH {} {body}", uri.path()));
        if !authorised(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        axum::Json(json!({})).into_response()
    };
    let app = axum::Router::new()
        .route("/api/v1/businesses/{business}/contacts", get(businesses))
        .route(
            "/api/v1/businesses/{business}/contacts/{id}",
            axum::routing::patch(write),
        )
        .route("/api/contacts", get(pipeline));
    let address = serve(app).await;
    format!("http://{address}")
}

// ----- gateways with a sources file -----

/// A server running on what it needs to stay alive: the first server's database (and its
/// temporary directory) and the sources file (`dir/sources.toml`).
pub(crate) struct WithSource {
    app: TestApp,
    _first: TestApp,
    pub(crate) dir: tempfile::TempDir,
}

impl std::ops::Deref for WithSource {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// A server whose sources file has one source `crm` (client contacts, with the headers
/// [`Vendor`] wants) for the demo tenant at `url`.
pub(crate) async fn app_with_source(url: &str) -> WithSource {
    app_with_sources(|tenant| {
        format!(
            "[[sources]]\nname = \"crm\"\nformat = \"client-contacts\"\nurl = \"{url}\"\ntenant = \"{tenant}\"\ntoken_env = \"{TOKEN_ENV}\"\nheaders = {{ \"X-Api-Version\" = \"2\", \"X-Company\" = \"acme\" }}\n"
        )
    })
    .await
}

/// A server whose sources file is `sources(demo tenant id)`, with [`TOKEN_ENV`] set to
/// [`TOKEN`].
pub(crate) async fn app_with_sources(sources: impl FnOnce(Uuid) -> String) -> WithSource {
    app_with_sources_and(sources, |_| {}).await
}

/// [`app_with_sources`], the second server's configuration changed by `configure`.
pub(crate) async fn app_with_sources_and(
    sources: impl FnOnce(Uuid) -> String,
    configure: impl FnOnce(&mut contact_gateway::config::Config),
) -> WithSource {
    let first = spawn_app().await;
    let tenant = tenant_of(&first).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("sources.toml");
    std::fs::write(&path, sources(tenant.0)).expect("write");
    // SAFETY: set once, to the same value, by every test that reads it.
    unsafe { std::env::set_var(TOKEN_ENV, TOKEN) };
    let app = spawn_app_on_database_of(&first, |c| {
        c.sources_file = Some(path);
        configure(c);
    })
    .await;
    WithSource {
        app,
        _first: first,
        dir,
    }
}

/// Runs the source `crm` of [`app_with_source`] and waits for the run.
pub(crate) const SYNC: &str = r#"mutation { syncSource(input: { name: "crm", wait: true }) {
    created updated unchanged
    run { id mode status created updated unchanged deleted requests retries error { code message } }
    source { name state lastError watermark resumable created unchanged lastSuccessAt } } }"#;

/// The error code of the run a [`SYNC`] answer reports (null when it succeeded).
pub(crate) fn run_error(data: &Value) -> Value {
    data["syncSource"]["run"]["error"]["code"].clone()
}
