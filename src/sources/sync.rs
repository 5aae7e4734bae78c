//! Live sync: fetches every page of a configured vendor API with that API's own paging and
//! applies each page atomically, together with the source's resume point, so that an
//! interrupted sync resumes at the page it stopped at, without gaps or duplicates. After a
//! complete run, APIs that can filter by update time (seed 003's `updated_at=gt:`) are asked
//! only for what changed since the watermark.
use std::time::Duration;

use entity::prelude::SourceState;
use entity::source_state;
use reqwest::StatusCode;
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, EntityTrait, IntoActiveModel};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::config::SourceConfig;
use super::import::{ImportOptions, ImportSummary, apply_records, check_tenant, prepare};
use super::{PagePosition, lease};
use crate::contacts::WriteSettings;
use crate::db::begin_write;
use crate::error::{Error, Result};
use crate::tenancy::TenantId;
use crate::time::{format_millis, now_millis, parse_rfc3339_millis};

/// How failed requests are retried (429 and 5xx, and failed connections).
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per page, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubles with each further one.
    pub backoff: Duration,
    /// Longest wait, also for `Retry-After`.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(30),
        }
    }
}

/// Where an unfinished run stands (stored as `source_states.cursor`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct RunCursor {
    /// Index of the list (account or business) being fetched.
    list: usize,
    /// The page to fetch next in that list.
    position: PagePosition,
    /// The watermark this run asks from (`updated_at` after it), if any.
    since: Option<String>,
    /// The newest update time seen by this run so far.
    newest: Option<String>,
}

/// Loads the state row of `source`, or a fresh one.
async fn load_state(db: &DatabaseConnection, source: &SourceConfig) -> Result<source_state::Model> {
    let found = SourceState::find_by_id((source.tenant, source.name.clone()))
        .one(db)
        .await?;
    Ok(found.unwrap_or_else(|| source_state::Model {
        tenant_id: source.tenant,
        name: source.name.clone(),
        format: source.format.name().to_string(),
        last_run_at: None,
        last_success_at: None,
        last_error: None,
        watermark: None,
        cursor: None,
        created: 0,
        updated: 0,
        unchanged: 0,
        warnings: 0,
        rejected: 0,
    }))
}

/// Writes `state` (one upsert).
async fn save_state(db: &impl sea_orm::ConnectionTrait, state: &source_state::Model) -> Result<()> {
    use source_state::Column as C;
    SourceState::insert(state.clone().into_active_model())
        .on_conflict(
            OnConflict::columns([C::TenantId, C::Name])
                .update_columns([
                    C::Format,
                    C::LastRunAt,
                    C::LastSuccessAt,
                    C::LastError,
                    C::Watermark,
                    C::Cursor,
                    C::Created,
                    C::Updated,
                    C::Unchanged,
                    C::Warnings,
                    C::Rejected,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The state of every configured source of `tenant` (sources never run have no row yet).
pub async fn states(
    db: &DatabaseConnection,
    sources: &[SourceConfig],
) -> Result<Vec<(SourceConfig, source_state::Model)>> {
    let mut out = Vec::new();
    for source in sources {
        out.push((source.clone(), load_state(db, source).await?));
    }
    Ok(out)
}

/// Runs one sync of `source`: resumes an interrupted run, or starts a new one (incremental
/// where the API allows it). Returns what it did; on failure the error is also kept in the
/// source's state, and the next run resumes at the page that failed.
pub async fn sync_source(
    db: &DatabaseConnection,
    client: &reqwest::Client,
    source: &SourceConfig,
    settings: WriteSettings,
    retry: RetryPolicy,
) -> Result<ImportSummary> {
    check_tenant(db, TenantId(source.tenant)).await?;
    let lease = lease::acquire(db, TenantId(source.tenant), &source.name).await?;
    let result = sync_holding_lease(db, client, source, settings, retry, &lease).await;
    // The lease is given back whatever happened; failing to, it lapses by itself.
    if let Err(err) = lease.release(db).await {
        tracing::warn!(source = %source.name, error = %err.detail(), "could not release a source's lease");
    }
    result
}

async fn sync_holding_lease(
    db: &DatabaseConnection,
    client: &reqwest::Client,
    source: &SourceConfig,
    settings: WriteSettings,
    retry: RetryPolicy,
    lease: &lease::Lease,
) -> Result<ImportSummary> {
    let mut state = load_state(db, source).await?;
    let resumed = state
        .cursor
        .as_deref()
        .and_then(|c| serde_json::from_str::<RunCursor>(c).ok());
    let mut cursor = match resumed {
        Some(cursor) => cursor,
        None => {
            state.created = 0;
            state.updated = 0;
            state.unchanged = 0;
            state.warnings = 0;
            state.rejected = 0;
            RunCursor {
                list: 0,
                position: PagePosition::first(),
                since: state.watermark.clone(),
                newest: state.watermark.clone(),
            }
        }
    };
    state.last_run_at = Some(now_millis());
    save_state(db, &state).await?;
    let result = run(
        db,
        client,
        source,
        (settings, retry),
        lease,
        &mut state,
        &mut cursor,
    )
    .await;
    if let Err(err) = &result {
        state.last_error = Some(err.detail());
        save_state(db, &state).await?;
    }
    result
}

async fn run(
    db: &DatabaseConnection,
    client: &reqwest::Client,
    source: &SourceConfig,
    (settings, retry): (WriteSettings, RetryPolicy),
    lease: &lease::Lease,
    state: &mut source_state::Model,
    cursor: &mut RunCursor,
) -> Result<ImportSummary> {
    let connector = source.format.connector();
    let lists = source.lists();
    let mut summary = ImportSummary::default();
    while let Some((url, context)) = lists.get(cursor.list) {
        lease.renew(db).await?;
        let mut query = connector.page_query(&cursor.position);
        if let Some(since) = &cursor.since {
            query.extend(connector.since_query(since));
        }
        let payload = fetch(client, source, url, &query, retry).await?;
        let records = connector.records(payload.clone()).map_err(|err| {
            Error::BadPayload(format!(
                "source {}: malformed page {} of {url}: {err}",
                source.name, cursor.position.page
            ))
        })?;
        let count = records.len();
        let mut page = ImportSummary::default();
        let incoming = prepare(connector, records, context, settings, &mut page);
        for inc in &incoming {
            if let Some(updated) = inc.updated_at()
                && cursor
                    .newest
                    .as_deref()
                    .and_then(parse_rfc3339_millis)
                    .is_none_or(|newest| updated > newest)
            {
                cursor.newest = Some(format_millis(updated));
            }
        }
        // Where the next page is, or the next list, or the end of the run.
        let next = match connector.next_page(&cursor.position, &payload, count) {
            Some(position) => Some(RunCursor {
                position,
                ..cursor.clone()
            }),
            None if cursor.list + 1 < lists.len() => Some(RunCursor {
                list: cursor.list + 1,
                position: PagePosition::first(),
                ..cursor.clone()
            }),
            None => None,
        };
        let options = ImportOptions {
            tenant: TenantId(source.tenant),
            source: source.name.clone(),
            format: source.format,
            context: context.clone(),
            strict: false,
            settings,
        };
        // The page and the state that says it is done, in one transaction.
        let (txn, _lock) = begin_write(db).await?;
        let counts = apply_records(&txn, &options, &incoming, now_millis()).await?;
        page.add(counts);
        state.created += page.created as i64;
        state.updated += page.updated as i64;
        state.unchanged += page.unchanged as i64;
        state.warnings += page.warnings.len() as i64;
        state.rejected += page.rejected.len() as i64;
        match &next {
            Some(next) => {
                state.cursor = Some(serde_json::to_string(next).unwrap_or_default());
            }
            None => {
                state.cursor = None;
                state.watermark = cursor.newest.clone();
                state.last_success_at = Some(now_millis());
                state.last_error = None;
            }
        }
        save_state(&txn, state).await?;
        txn.commit().await?;
        summary.add(page);
        match next {
            Some(next) => *cursor = next,
            None => break,
        }
    }
    Ok(summary)
}

/// GETs one page, retrying 429, 5xx and failed connections with backoff (honouring
/// `Retry-After`); 401, 403, 412 and other client errors stop at once.
async fn fetch(
    client: &reqwest::Client,
    source: &SourceConfig,
    url: &str,
    query: &[(String, String)],
    retry: RetryPolicy,
) -> Result<Value> {
    let token = match &source.token_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            Error::Upstream(format!(
                "source {}: environment variable {var} (token_env) is not set",
                source.name
            ))
        })?),
        None => None,
    };
    let mut last_problem = String::new();
    for attempt in 0..retry.attempts.max(1) {
        let mut request = client
            .get(url)
            .query(query)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &source.headers {
            request = request.header(name, value);
        }
        let wait = match request.send().await {
            Err(err) => {
                last_problem = format!("request failed: {err}");
                None
            }
            Ok(response) => {
                let status = response.status();
                if status.is_success() {
                    let body = response.bytes().await.map_err(|err| {
                        Error::Upstream(format!("source {}: reading {url}: {err}", source.name))
                    })?;
                    return serde_json::from_slice(&super::payload::normalise(&body)).map_err(
                        |err| {
                            Error::BadPayload(format!(
                                "source {}: malformed page from {url}: not valid JSON: {err}",
                                source.name
                            ))
                        },
                    );
                }
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let body = response.text().await.unwrap_or_default();
                let detail = vendor_message(&body);
                if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                    last_problem = format!("{status}{detail}");
                    retry_after
                } else {
                    let what = match status.as_u16() {
                        401 => "the API refused the token (401)",
                        403 => "the token lacks a permission (403)",
                        412 => "the API reported a failed precondition (412)",
                        _ => "the API refused the request",
                    };
                    return Err(Error::Upstream(format!(
                        "source {}: {what}: {status}{detail}",
                        source.name
                    )));
                }
            }
        };
        if attempt + 1 < retry.attempts {
            let backoff = retry.backoff.saturating_mul(1 << attempt.min(16));
            tokio::time::sleep(wait.unwrap_or(backoff).min(retry.max_wait)).await;
        }
    }
    Err(Error::Upstream(format!(
        "source {}: gave up on {url} after {} attempts: {last_problem}",
        source.name, retry.attempts
    )))
}

/// `: message` from a vendor error body (`{ key, message }` or `{ error }`), if any.
fn vendor_message(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_default();
    let text = value
        .get("message")
        .or_else(|| value.get("error"))
        .and_then(Value::as_str);
    match text {
        Some(text) => format!(": {text}"),
        None => String::new(),
    }
}

/// The configured sources and an HTTP client to sync them, shared by the CLI and the
/// `syncSource` mutation.
#[derive(Clone, Debug, Default)]
pub struct Syncer {
    /// The sources file.
    pub sources: super::config::SourcesFile,
    /// The HTTP client (connection pool).
    pub client: reqwest::Client,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
}

impl Syncer {
    /// A syncer for `sources`, with a client that gives up on a request after 30 s.
    pub fn new(sources: super::config::SourcesFile) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("contact-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            sources,
            client,
            retry: RetryPolicy::default(),
        }
    }

    /// Syncs the source named `name` if it belongs to `tenant` (else `NOT_FOUND`).
    pub async fn sync(
        &self,
        db: &DatabaseConnection,
        tenant: Option<TenantId>,
        name: &str,
        settings: WriteSettings,
    ) -> Result<ImportSummary> {
        let source = self
            .sources
            .get(name)
            .filter(|s| tenant.is_none_or(|t| t.0 == s.tenant))
            .ok_or_else(|| Error::NotFound(format!("Source {name:?}")))?;
        sync_source(db, &self.client, source, settings, self.retry).await
    }
}
