//! `ContactSource` (provenance), `Source` (a tenant's vendor API, its schedule and the state
//! of its runs), `SyncRun`, the `sources` connection and `source(name:)`. Every root field
//! here needs the `sources:manage` scope (checked in `scopes.rs`).
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Json, Object, SimpleObject};
use entity::{contact_source, source, source_state, sync_run};

use super::RequestContext;
use super::connection::{Connection, TotalCount};
use crate::paging::PageArgs;
use crate::sources::catalog;
use crate::sources::definition::format_duration;
use crate::sources::runs::{self, RUNS_KEPT};
use crate::sources::{lease, sync};
use crate::time::{Timestamp, now_millis};

/// A vendor record behind a contact: which source, which id there, and the record as it
/// was received (fields with no place in the unified model stay readable here).
#[derive(Clone)]
pub struct ContactSource(pub contact_source::Model);

/// A vendor record behind a contact.
#[Object]
impl ContactSource {
    /// The source's name (as in `createSource`, the sources file or `import --source`).
    async fn source(&self) -> &str {
        &self.0.source
    }

    /// The vendor format, e.g. `business-contacts`.
    async fn format(&self) -> &str {
        &self.0.format
    }

    /// The record's id in the vendor system.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }

    /// When the record was last received with a change.
    async fn fetched_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.fetched_at)
    }

    /// When a FULL sync run no longer found the record at the source; null while it is there.
    async fn deleted_at(&self) -> Option<Timestamp> {
        self.0.deleted_at.map(Timestamp::from_millis)
    }

    /// The record exactly as received, as JSON.
    async fn record(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.record).unwrap_or_default())
    }
}

/// What a source is doing.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SourceStatus {
    /// Waiting for its next run.
    Idle,
    /// A run holds its lease now (in this or another server process).
    Running,
    /// Its last run failed, or the vendor refused its token (then it is off the schedule
    /// until it is updated; see `suspended`).
    Failed,
    /// `enabled: false`: the scheduler leaves it alone (`syncSource` still runs it).
    Disabled,
}

/// Whether a bearer token is stored, and how to tell which: never the token itself.
#[derive(SimpleObject, Clone)]
pub struct Credential {
    /// A token is stored (encrypted).
    pub set: bool,
    /// Its last four characters, when set.
    pub last4: Option<String>,
}

/// An extra request header sent to the vendor.
#[derive(SimpleObject, Clone)]
pub struct Header {
    /// Header name, e.g. `X-Api-Version`.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// What a run did, and how it ended.
#[derive(Clone)]
pub struct SyncRun(pub sync_run::Model);

/// An error a run ended with.
#[derive(SimpleObject, Clone)]
pub struct RunError {
    /// As in `extensions.code`: `UPSTREAM_FAILED`, `BAD_PAYLOAD`, `RATE_LIMITED`,
    /// `SUSPICIOUS_DELETION`, `SOURCE_RUNNING`, `INTERRUPTED`, ...
    pub code: String,
    /// What went wrong, naming the page where one did.
    pub message: String,
}

/// One run of a source (the last 50 of each source are kept).
#[Object]
impl SyncRun {
    /// The run's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// `INCREMENTAL` (what changed since the watermark, less the overlap) or `FULL`.
    async fn mode(&self) -> &str {
        &self.0.mode
    }
    /// `SCHEDULE`, `MANUAL` or `WRITE_CONFLICT` (a vendor refused a write-back: its
    /// values are read at once).
    async fn trigger(&self) -> &str {
        &self.0.trigger
    }
    /// When it started.
    async fn started_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.started_at)
    }
    /// When it ended; null while it runs.
    async fn finished_at(&self) -> Option<Timestamp> {
        self.0.finished_at.map(Timestamp::from_millis)
    }
    /// `RUNNING`, `SUCCEEDED` or `FAILED`.
    async fn status(&self) -> &str {
        &self.0.status
    }
    /// Contacts created.
    async fn created(&self) -> i64 {
        self.0.created
    }
    /// Contacts changed.
    async fn updated(&self) -> i64 {
        self.0.updated
    }
    /// Records that changed nothing.
    async fn unchanged(&self) -> i64 {
        self.0.unchanged
    }
    /// Records marked deleted at the source (FULL runs that read every page).
    async fn deleted(&self) -> i64 {
        self.0.deleted
    }
    /// Values not stored (invalid); the raw record keeps them.
    async fn warnings(&self) -> i64 {
        self.0.warnings
    }
    /// Records rejected.
    async fn rejected(&self) -> i64 {
        self.0.rejected
    }
    /// Requests sent to the vendor, retries included.
    async fn requests(&self) -> i64 {
        self.0.requests
    }
    /// Requests that repeated a failed or rate-limited one.
    async fn retries(&self) -> i64 {
        self.0.retries
    }
    /// Why it failed; null unless `status` is `FAILED`.
    async fn error(&self) -> Option<RunError> {
        Some(RunError {
            code: self.0.error_code.clone()?,
            message: self.0.error_message.clone().unwrap_or_default(),
        })
    }
}

/// A vendor API of your tenant: where and how it is fetched, its schedule, and its runs.
#[derive(Clone)]
pub struct Source {
    row: source::Model,
    state: Option<source_state::Model>,
    running: bool,
    runs: Vec<sync_run::Model>,
}

/// Every field of a page's Source goes through its resolver.
impl super::plain_fields::DirectFields for Source {}

/// A vendor API of your tenant.
#[Object]
impl Source {
    /// The source's id.
    async fn id(&self) -> ID {
        ID(self.row.id.to_string())
    }
    /// Its name, unique in your tenant (vendor records are matched by name and vendor id).
    async fn name(&self) -> &str {
        &self.row.name
    }
    /// Its payload format: `account-contacts`, `business-contacts`, `client-contacts` or
    /// `pipeline-contacts`.
    async fn format(&self) -> &str {
        &self.row.format
    }
    /// The list URL, `{accountId}` / `{businessId}` unfilled.
    async fn url(&self) -> &str {
        &self.row.url
    }
    /// Values of `{accountId}`, one list fetched per value.
    async fn accounts(&self) -> Vec<String> {
        serde_json::from_str(&self.row.accounts).unwrap_or_default()
    }
    /// Values of `{businessId}`, one list fetched per value.
    async fn businesses(&self) -> Vec<String> {
        serde_json::from_str(&self.row.businesses).unwrap_or_default()
    }
    /// Extra request headers.
    async fn headers(&self) -> Vec<Header> {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&self.row.headers).unwrap_or_default();
        map.into_iter()
            .map(|(name, value)| Header { name, value })
            .collect()
    }
    /// Whether a bearer token is stored, and its last four characters.
    async fn credential(&self) -> Credential {
        Credential {
            set: self.row.token.is_some(),
            last4: self.row.token_last4.clone(),
        }
    }
    /// Time between scheduled runs, e.g. `15m`.
    async fn interval(&self) -> String {
        format_duration(std::time::Duration::from_millis(
            self.row.interval_ms.max(0) as u64,
        ))
    }
    /// Time between FULL runs (which detect deletions), e.g. `1day`.
    async fn full_every(&self) -> String {
        format_duration(std::time::Duration::from_millis(
            self.row.full_every_ms.max(0) as u64,
        ))
    }
    /// How far before the watermark an incremental run asks from, e.g. `5m`.
    async fn overlap(&self) -> String {
        format_duration(std::time::Duration::from_millis(
            self.row.overlap_ms.max(0) as u64
        ))
    }
    /// Requests per minute runs pace themselves to; null for no pacing.
    async fn max_requests_per_minute(&self) -> Option<i32> {
        self.row.max_requests_per_minute
    }
    /// How contact changes are written back to the vendor; null for a read-only source.
    async fn write(&self) -> Option<super::write_back::SourceWrite> {
        let write: crate::write_back::config::WriteBack =
            serde_json::from_str(self.row.write_back.as_deref()?).ok()?;
        Some((&write).into())
    }
    /// Whether the scheduler runs it.
    async fn enabled(&self) -> bool {
        self.row.enabled
    }
    /// What it is doing now.
    async fn state(&self) -> SourceStatus {
        let last_failed = self
            .runs
            .first()
            .is_some_and(|run| run.status == runs::FAILED);
        if !self.row.enabled {
            SourceStatus::Disabled
        } else if self.running {
            SourceStatus::Running
        } else if self.row.suspended.is_some() || last_failed {
            SourceStatus::Failed
        } else {
            SourceStatus::Idle
        }
    }
    /// Why the scheduler stopped running it (the vendor refused its token); cleared by
    /// `updateSource`.
    async fn suspended(&self) -> Option<&str> {
        self.row.suspended.as_deref()
    }
    /// When the scheduler runs it next; null while disabled or suspended.
    async fn next_run_at(&self) -> Option<Timestamp> {
        self.row.next_run_at.map(Timestamp::from_millis)
    }
    /// Its newest run.
    async fn last_run(&self) -> Option<SyncRun> {
        self.runs.first().cloned().map(SyncRun)
    }
    /// Its newest runs, newest first (at most 50 are kept).
    async fn runs(
        &self,
        #[graphql(default = 10, validator(minimum = 0, maximum = 50))] first: i32,
    ) -> Vec<SyncRun> {
        self.runs
            .iter()
            .take(usize::try_from(first).unwrap_or_default())
            .cloned()
            .map(SyncRun)
            .collect()
    }
    /// When the last run started.
    async fn last_run_at(&self) -> Option<Timestamp> {
        self.state.as_ref()?.last_run_at.map(Timestamp::from_millis)
    }
    /// When the last run completed.
    async fn last_success_at(&self) -> Option<Timestamp> {
        self.state
            .as_ref()?
            .last_success_at
            .map(Timestamp::from_millis)
    }
    /// Why the last run stopped, if it failed.
    async fn last_error(&self) -> Option<&str> {
        self.state.as_ref()?.last_error.as_deref()
    }
    /// The newest vendor `updated_at` of the last complete run: an incremental run asks
    /// for records updated after it, less the overlap.
    async fn watermark(&self) -> Option<&str> {
        self.state.as_ref()?.watermark.as_deref()
    }
    /// Whether a run was interrupted and the next resumes at the page it stopped at.
    async fn resumable(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.cursor.is_some())
    }
    /// Contacts created by the last run (an interrupted run and its resumption count as one).
    async fn created(&self) -> i64 {
        self.state.as_ref().map_or(0, |s| s.created)
    }
    /// Contacts changed by the last run.
    async fn updated(&self) -> i64 {
        self.state.as_ref().map_or(0, |s| s.updated)
    }
    /// Records of the last run that changed nothing.
    async fn unchanged(&self) -> i64 {
        self.state.as_ref().map_or(0, |s| s.unchanged)
    }
    /// Values the last run did not store.
    async fn warnings(&self) -> i64 {
        self.state.as_ref().map_or(0, |s| s.warnings)
    }
    /// Records the last run rejected.
    async fn rejected(&self) -> i64 {
        self.state.as_ref().map_or(0, |s| s.rejected)
    }
}

/// Reading sources (scope `sources:manage`).
#[derive(Default)]
pub struct SourceQueries;

/// Reading sources.
#[Object]
impl SourceQueries {
    /// Your tenant's vendor APIs, by name, with their schedule and runs. Needs the
    /// `sources:manage` scope. Example: `sources(first: 10) { nodes { name state lastRun {
    /// status error { code message } } } }`.
    async fn sources(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(minimum = 0, maximum = 100))] first: Option<i32>,
        after: Option<String>,
        #[graphql(validator(minimum = 0, maximum = 100))] last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<Source>> {
        let request = RequestContext::of(ctx)?;
        let args = PageArgs::from_relay(first, after, last, before)?;
        let page = catalog::page(request.db, request.tenant, &args).await?;
        let ordering = catalog::ordering();
        let look = ctx.look_ahead();
        let wants_runs = ["edges", "nodes"].iter().any(|f| {
            let node = if *f == "edges" {
                look.field("edges").field("node")
            } else {
                look.field("nodes")
            };
            node.field("runs").exists()
        });
        let rows: Vec<source::Model> = page.rows.clone();
        let sources = with_state(ctx, &rows, if wants_runs { RUNS_KEPT } else { 1 }).await?;
        let db = request.db.clone();
        let tenant = request.tenant;
        let total = TotalCount::Deferred(Arc::new(move || {
            let db = db.clone();
            Box::pin(async move { catalog::count(&db, tenant).await })
        }));
        let by_id: std::cell::RefCell<HashMap<uuid::Uuid, Source>> =
            std::cell::RefCell::new(sources.into_iter().map(|s| (s.row.id, s)).collect());
        Ok(Connection::new(page, &ordering, total, |row| {
            by_id.borrow_mut().remove(&row.id).unwrap_or(Source {
                row,
                state: None,
                running: false,
                runs: Vec::new(),
            })
        }))
    }

    /// Your tenant's source `name`, or null. Needs the `sources:manage` scope.
    async fn source(
        &self,
        ctx: &Context<'_>,
        name: String,
    ) -> async_graphql::Result<Option<Source>> {
        let request = RequestContext::of(ctx)?;
        let row = match catalog::find(request.db, request.tenant, &name).await {
            Ok(row) => row,
            Err(crate::error::Error::NotFound(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        Ok(with_state(ctx, &[row], RUNS_KEPT).await?.into_iter().next())
    }
}

/// The sources of `rows` with their sync state, whether they run now, and their newest
/// `runs` runs: three statements whatever the number of rows.
pub async fn with_state(
    ctx: &Context<'_>,
    rows: &[source::Model],
    runs: u64,
) -> async_graphql::Result<Vec<Source>> {
    let request = RequestContext::of(ctx)?;
    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
    let ids: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
    let mut states = sync::states(request.db, request.tenant, &names).await?;
    let running = lease::held(request.db, request.tenant, &names, now_millis()).await?;
    let mut newest = runs::newest(request.db, request.tenant, &ids, runs).await?;
    Ok(rows
        .iter()
        .map(|row| Source {
            state: states.remove(&row.name),
            running: running.contains(&row.name),
            runs: newest.remove(&row.id).unwrap_or_default(),
            row: row.clone(),
        })
        .collect())
}
