//! A sync run: fetches the pages of one source with its API's own paging and applies each
//! page atomically, together with the source's resume point, so that an interrupted run
//! resumes at the page it stopped at, without gaps or duplicates. An incremental run of an
//! API that filters by update time (seed 003's `updated_at=gt:`) asks from the watermark
//! less the source's overlap, so that records stamped in the watermark's second, or
//! committed late, are read again (which changes nothing). A run that listed every record
//! detects deletions at the end ([`super::deletions`]).
//!
//! A run holds the source's lease ([`super::lease`]) from start to end and is recorded in
//! `sync_runs` ([`super::runs`]).
use std::sync::Arc;
use std::time::{Duration, Instant};

use entity::prelude::{Source, SourceState};
use entity::{source, source_state, sync_run};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::catalog;
use super::config::SourceConfig;
use super::deletions::{self, SeenIds};
use super::fetch::{Fetcher, RetryPolicy};
use super::import::{ImportOptions, Incoming, apply_records, check_tenant, record_hash};
use super::runs::{self, RunMode, RunTrigger};
use super::{MapContext, PagePosition, lease, mapping};
use crate::contacts::WriteSettings;
use crate::db::begin_write;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::secrets::SecretKey;
use crate::tenancy::TenantId;
use crate::time::{format_millis, now_millis, parse_rfc3339_millis};
use check::{Checker, FetchedPage, Page, RawPage};

mod check;

/// Records written per transaction by a run, at most (ten pages of 100).
pub const BATCH_RECORDS: usize = 1_000;
/// The longest fetched pages wait to be written (a slow or paced vendor).
pub const BATCH_WAIT: Duration = Duration::from_secs(1);
/// How often a run renews its lease while it only fetches (its batches renew it too).
const LEASE_RENEW_EVERY: Duration = Duration::from_secs(60);

/// Pages fetched and checked ahead of the writer, at most.
pub const PAGES_AHEAD: usize = 10;

/// Pages fetched and checked but not written yet, all of one list.
#[derive(Default)]
struct Batch {
    /// What the list's URL says of its records.
    context: Option<MapContext>,
    incoming: Vec<Incoming>,
    /// Vendor ids to restore if they were marked deleted (only when the source has any).
    ids: Vec<String>,
    /// Records of the batch, those held already included.
    records: usize,
    /// Records the source held already, byte for byte (not in `incoming`).
    unchanged: usize,
    warnings: usize,
    /// The resume point after the last page: `Some(None)` when it was the run's last.
    after: Option<Option<RunCursor>>,
    /// The newest vendor update time seen (the watermark once the run ends).
    newest: Option<String>,
    /// When the first page of the batch arrived.
    started: Option<Instant>,
}

impl Batch {
    fn add(
        &mut self,
        context: &MapContext,
        page: Page,
        after: Option<RunCursor>,
        newest: Option<String>,
    ) {
        if self.context.is_none() {
            self.context = Some(context.clone());
        }
        self.ids.extend(page.ids);
        self.records += page.incoming.len() + page.unchanged;
        self.incoming.extend(page.incoming);
        self.unchanged += page.unchanged;
        self.warnings += page.warnings;
        self.newest = newest;
        self.after = Some(after);
        self.started.get_or_insert_with(Instant::now);
    }

    fn is_full(&self) -> bool {
        self.records >= BATCH_RECORDS || self.started.is_some_and(|at| at.elapsed() >= BATCH_WAIT)
    }
}

/// The default most a FULL run may mark deleted, as a share of the source's records.
pub const DEFAULT_MAX_DELETION_SHARE: f64 = 0.5;

/// Where an unfinished run stands (stored as `source_states.cursor`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct RunCursor {
    /// Index of the list (account or business) being fetched.
    list: usize,
    /// The page to fetch next in that list.
    position: PagePosition,
    /// What this run asks from (`updated_at` after it), if anything.
    since: Option<String>,
    /// The newest update time seen by this run so far.
    newest: Option<String>,
    /// The run's mode (`INCREMENTAL` or `FULL`); older cursors have none (incremental).
    #[serde(default)]
    mode: Option<String>,
}

/// What to run.
#[derive(Clone, Copy, Debug)]
pub struct RunRequest {
    /// `None`: FULL when the source's `fullEvery` has passed since its last FULL run (or it
    /// never had one), else INCREMENTAL.
    pub mode: Option<RunMode>,
    /// Who asked.
    pub trigger: RunTrigger,
    /// Lifts the share limit of deletion detection.
    pub allow_mass_deletion: bool,
}

/// Runs sources: the HTTP client, retry policy and secret key every run shares, and the
/// runs under way (so that shutdown can stop them between pages and wait for them).
pub struct Syncer {
    /// The HTTP client (connection pool).
    pub client: reqwest::Client,
    /// How failed requests are retried.
    pub retry: RetryPolicy,
    /// Opens sources' tokens.
    pub key: Option<SecretKey>,
    /// Where runs are counted (none on the command line).
    pub metrics: Option<Metrics>,
    /// How imported values are checked.
    pub settings: WriteSettings,
    /// The most a FULL run may mark deleted without `allowMassDeletion`, 0.0–1.0.
    pub max_deletion_share: f64,
    /// Whether sources may reach private and loopback addresses.
    allow_private_networks: bool,
    stopping: CancellationToken,
    tasks: TaskTracker,
}

/// A run that holds its source's lease and has its `sync_runs` row, ready to go.
pub struct StartedRun {
    source: SourceConfig,
    row: source::Model,
    lease: lease::Lease,
    run: sync_run::Model,
    cursor: RunCursor,
    state: source_state::Model,
    /// Whether the run reads every page from the first (not resumed): only then can it tell
    /// which records are gone.
    from_start: bool,
    allow_mass_deletion: bool,
}

impl StartedRun {
    /// The run's row as it started.
    pub fn run(&self) -> &sync_run::Model {
        &self.run
    }
}

impl Syncer {
    /// A syncer whose client gives up on a request after 30 s, follows no redirects, and
    /// reaches only public addresses unless `allow_private_networks` (see
    /// [`super::network`]).
    pub fn new(
        key: Option<SecretKey>,
        settings: WriteSettings,
        metrics: Option<Metrics>,
        allow_private_networks: bool,
    ) -> Self {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("contact-gateway/", env!("CARGO_PKG_VERSION")));
        if !allow_private_networks {
            builder = builder.dns_resolver(Arc::new(super::network::PublicOnly));
        }
        let client = builder.build().unwrap_or_default();
        Self {
            allow_private_networks,
            client,
            retry: RetryPolicy::default(),
            key,
            metrics,
            settings,
            max_deletion_share: DEFAULT_MAX_DELETION_SHARE,
            stopping: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }

    /// Asks every run under way to stop after its current page (or during a wait), and the
    /// scheduler to start no more; returns at once.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// [`Syncer::stop`], then waits for the runs under way.
    pub async fn shut_down(&self) {
        self.stop();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Runs under way in this process.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    /// Whether shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Resolves when shutdown begins.
    pub async fn stopped(&self) {
        self.stopping.cancelled().await;
    }

    /// Takes the lease of the tenant's source `name` and records a run of it as started
    /// (`NOT_FOUND`, `SOURCE_RUNNING`); [`Syncer::finish`] does the rest.
    pub async fn start(
        &self,
        db: &DatabaseConnection,
        tenant: TenantId,
        name: &str,
        request: RunRequest,
    ) -> Result<StartedRun> {
        check_tenant(db, tenant).await?;
        let row = catalog::find(db, tenant, name).await?;
        let source = catalog::runnable(&row, self.key.as_ref())?;
        let lease = lease::acquire(db, tenant, name).await?;
        match self
            .start_holding(db, tenant, row, source, &lease, request)
            .await
        {
            Ok(started) => Ok(StartedRun { lease, ..started }),
            Err(err) => {
                release(db, lease, name).await;
                Err(err)
            }
        }
    }

    async fn start_holding(
        &self,
        db: &DatabaseConnection,
        tenant: TenantId,
        row: source::Model,
        source: SourceConfig,
        lease: &lease::Lease,
        request: RunRequest,
    ) -> Result<StartedRun> {
        let mut state = load_state(db, &source).await?;
        let supports_since = source.settings.format.connector().since_query("").is_some();
        let resumed = state
            .cursor
            .as_deref()
            .and_then(|c| serde_json::from_str::<RunCursor>(c).ok());
        let now = now_millis();
        let lists = source.lists().len();
        let (cursor, from_start) = match resumed {
            // A resume point past the source's lists (they were shortened) starts afresh.
            Some(cursor) if cursor.list < lists => (cursor, false),
            _ => {
                // The state's counts are those of the last run.
                state.created = 0;
                state.updated = 0;
                state.unchanged = 0;
                state.warnings = 0;
                state.rejected = 0;
                let mode = choose_mode(
                    request.mode,
                    supports_since,
                    row.last_full_at,
                    row.full_every_ms,
                    now,
                );
                let since = match mode {
                    RunMode::Full => None,
                    RunMode::Incremental => state
                        .watermark
                        .as_deref()
                        .and_then(parse_rfc3339_millis)
                        .map(|w| format_millis(w - row.overlap_ms)),
                };
                let cursor = RunCursor {
                    list: 0,
                    position: PagePosition::first(),
                    since,
                    newest: state.watermark.clone(),
                    mode: Some(mode.as_str().to_string()),
                };
                (cursor, true)
            }
        };
        let mode = cursor
            .mode
            .as_deref()
            .and_then(RunMode::parse)
            .unwrap_or(RunMode::Incremental);
        let run = runs::start(db, tenant, row.id, mode, request.trigger).await?;
        // The schedule moves on as the run starts: a run that dies does not make the
        // scheduler retry at once.
        schedule_next(db, &row, run.started_at).await?;
        Ok(StartedRun {
            source,
            row,
            lease: lease.clone(),
            run,
            cursor,
            state,
            from_start,
            allow_mass_deletion: request.allow_mass_deletion,
        })
    }

    /// Runs `started` to its end, records how it ended and gives the lease back. Returns the
    /// finished run (a failed run is `status: FAILED` with its error, not an `Err`).
    pub async fn finish(
        &self,
        db: &DatabaseConnection,
        started: StartedRun,
    ) -> Result<sync_run::Model> {
        let clock = Instant::now();
        let StartedRun {
            source,
            row,
            lease,
            mut run,
            mut cursor,
            mut state,
            from_start,
            allow_mass_deletion,
        } = started;
        let mut fetcher = Fetcher::new(
            &self.client,
            &source,
            self.retry,
            self.metrics.as_ref(),
            &self.stopping,
            self.allow_private_networks,
        );
        let outcome = self
            .pages(
                db,
                &source,
                &lease,
                &mut fetcher,
                &mut state,
                &mut cursor,
                &mut run,
                from_start,
            )
            .await;
        let outcome = match outcome {
            Ok(Some(seen)) => self
                .detect_deletions(db, &source, &seen, allow_mass_deletion, &mut run)
                .await
                .map(|()| true),
            Ok(None) => Ok(false),
            Err(err) => Err(err),
        };
        run.requests = fetcher.requests as i64;
        run.retries = fetcher.retries as i64;
        // The lease is given back whatever the bookkeeping does.
        let recorded = self
            .record(db, &source, &row, &mut state, run, outcome)
            .await;
        release(db, lease, &source.settings.name).await;
        let run = recorded?;
        if let Some(metrics) = &self.metrics {
            metrics.record_run(
                source.tenant,
                &source.settings.name,
                if run.error_code.is_some() {
                    "failed"
                } else {
                    "succeeded"
                },
                clock.elapsed().as_secs_f64(),
                &[
                    ("created", run.created as u64),
                    ("updated", run.updated as u64),
                    ("unchanged", run.unchanged as u64),
                    ("deleted", run.deleted as u64),
                    ("warnings", run.warnings as u64),
                    ("rejected", run.rejected as u64),
                ],
            );
        }
        Ok(run)
    }

    /// Records how a run ended: its row, the source's state (unless another run took the
    /// lease over: that state is the other run's now), a suspension when the vendor refused
    /// the token, and the time of a complete FULL run.
    async fn record(
        &self,
        db: &DatabaseConnection,
        source: &SourceConfig,
        row: &source::Model,
        state: &mut source_state::Model,
        run: sync_run::Model,
        outcome: Result<bool>,
    ) -> Result<sync_run::Model> {
        let error = outcome.as_ref().err();
        if let Some(err) = error {
            tracing::warn!(source = %source.settings.name, error = %err.detail(), "sync run failed");
            if !matches!(err, Error::SourceRunning(_)) {
                state.last_error = Some(err.detail());
                save_state(db, state).await?;
            }
            if matches!(err, Error::UpstreamRefused(_)) {
                catalog::suspend(db, row.id, &err.message()).await?;
            }
        }
        if matches!(outcome, Ok(true)) && run.mode == RunMode::Full.as_str() {
            Source::update_many()
                .col_expr(source::Column::LastFullAt, Expr::val(run.started_at))
                .filter(source::Column::Id.eq(row.id))
                .exec(db)
                .await?;
        }
        runs::finish(db, run, error).await
    }

    /// Starts a run and lets it go on in the background (tracked, so shutdown waits for it).
    pub async fn spawn(
        self: &Arc<Self>,
        db: &DatabaseConnection,
        tenant: TenantId,
        name: &str,
        request: RunRequest,
    ) -> Result<(
        sync_run::Model,
        tokio::task::JoinHandle<Result<sync_run::Model>>,
    )> {
        let started = self.start(db, tenant, name, request).await?;
        let run = started.run().clone();
        let (syncer, db) = (self.clone(), db.clone());
        let handle = self
            .tasks
            .spawn(async move { syncer.finish(&db, started).await });
        Ok((run, handle))
    }

    /// Fetches and applies pages from `cursor` to the end, in three stages that run side by
    /// side, each up to [`PAGES_AHEAD`] pages ahead of the next: fetching and parsing
    /// ([`Syncer::read_pages`]), checking and mapping ([`Syncer::check_page`]), and writing,
    /// in batches
    /// ([`Batch`]): up to [`BATCH_RECORDS`] records, or what arrived within [`BATCH_WAIT`], of
    /// one list, in one transaction with the resume point after the last of them. A failure or
    /// a shutdown first writes the pages fetched before it, so the next run resumes at the
    /// page that failed. Returns the vendor ids seen when the run listed every record of the
    /// source from the first page (then deletions can be detected), else `None`.
    #[allow(clippy::too_many_arguments)]
    async fn pages(
        &self,
        db: &DatabaseConnection,
        source: &SourceConfig,
        lease: &lease::Lease,
        fetcher: &mut Fetcher<'_>,
        state: &mut source_state::Model,
        cursor: &mut RunCursor,
        run: &mut sync_run::Model,
        from_start: bool,
    ) -> Result<Option<SeenIds>> {
        let tenant = TenantId(source.tenant);
        let lists_everything = cursor.since.is_none() && from_start;
        let mut seen = SeenIds::default();
        let restore = deletions::any_deleted(db, tenant, &source.settings.name).await?;
        state.last_run_at = Some(run.started_at);
        save_state(db, state).await?;
        let start_newest = cursor.newest.clone();
        let (raw_pages, raw_arriving) = tokio::sync::mpsc::channel::<Result<RawPage>>(PAGES_AHEAD);
        let (pages, mut arriving) = tokio::sync::mpsc::channel::<Result<FetchedPage>>(PAGES_AHEAD);
        let read = async {
            let read = self
                .read_pages(source, lease, db, fetcher, cursor, &mut seen, &raw_pages)
                .await;
            if let Err(err) = read {
                // The next stage learns of it after the pages before it.
                let _ = raw_pages.send(Err(err)).await;
            }
            drop(raw_pages);
        };
        // Mapping and validating is the run's heaviest work: on a task of its own it runs
        // on the other core while this one fetches and writes.
        let checker = tokio::spawn(
            Checker {
                db: db.clone(),
                source: source.clone(),
                settings: self.settings,
                restore,
                newest: start_newest,
            }
            .run(raw_arriving, pages),
        );
        let write = async {
            let mut batch = Batch::default();
            while let Some(fetched) = arriving.recv().await {
                let fetched = match fetched {
                    Ok(fetched) => fetched,
                    Err(err) => {
                        // What was fetched before the failure is kept; the next run starts
                        // after it.
                        if let Err(written) = self
                            .write_batch(db, source, lease, &mut batch, state, run)
                            .await
                        {
                            tracing::warn!(source = %source.settings.name, error = %written.detail(), "could not write the pages fetched before a failure");
                        }
                        return Err(err);
                    }
                };
                let list_ends = fetched.list_ends;
                batch.add(
                    &fetched.context,
                    fetched.page,
                    fetched.after,
                    fetched.newest,
                );
                if list_ends || batch.is_full() {
                    self.write_batch(db, source, lease, &mut batch, state, run)
                        .await?;
                }
            }
            self.write_batch(db, source, lease, &mut batch, state, run)
                .await
        };
        let ((), written) = futures::join!(read, write);
        if let Err(err) = checker.await {
            return Err(Error::Internal(format!("the page checker failed: {err}")));
        }
        written?;
        Ok(lists_everything.then_some(seen))
    }

    /// Fetches and parses pages from `cursor` on, fingerprints their records, and hands them
    /// on (to [`Syncer::check_page`]).
    #[allow(clippy::too_many_arguments)]
    async fn read_pages(
        &self,
        source: &SourceConfig,
        lease: &lease::Lease,
        db: &DatabaseConnection,
        fetcher: &mut Fetcher<'_>,
        cursor: &mut RunCursor,
        seen: &mut SeenIds,
        pages: &tokio::sync::mpsc::Sender<Result<RawPage>>,
    ) -> Result<()> {
        let connector = source.settings.format.connector();
        let lists = source.lists();
        let lists_everything = cursor.since.is_none();
        let mut renewed = Instant::now();
        while let Some((url, context)) = lists.get(cursor.list) {
            if self.is_stopping() {
                return Err(Error::Interrupted(format!(
                    "source {}: the server is shutting down; the next run resumes at page {} \
                     of {url}",
                    source.settings.name, cursor.position.page
                )));
            }
            // Written batches renew the lease; a long wait on the vendor needs it here too.
            if renewed.elapsed() > LEASE_RENEW_EVERY {
                lease.renew(db).await?;
                renewed = Instant::now();
            }
            let mut query = connector.page_query(&cursor.position);
            if let Some(since) = &cursor.since {
                query.extend(connector.since_query(since));
            }
            let payload = fetcher.get(url, &query).await?;
            let name = format!("page {} of {url}", cursor.position.page);
            let records = connector.records(payload.clone()).map_err(|err| {
                Error::BadPayload(format!(
                    "source {}: malformed {name}: {err}",
                    source.settings.name
                ))
            })?;
            let count = records.len();
            let fingerprints: Vec<(String, String)> = records
                .iter()
                .filter_map(|r| {
                    let id = mapping::record_id(r, connector.id_field()).ok()?;
                    Some((id, record_hash(&r.to_string())))
                })
                .collect();
            if lists_everything {
                for (id, _) in &fingerprints {
                    seen.insert(id);
                }
            }
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
            let raw = RawPage {
                name,
                context: context.clone(),
                records,
                fingerprints,
                list_ends: next.as_ref().is_none_or(|n| n.list != cursor.list),
                after: next.clone(),
            };
            if pages.send(Ok(raw)).await.is_err() {
                // A later stage stopped (and says why).
                return Ok(());
            }
            match next {
                Some(next) => *cursor = next,
                None => break,
            }
        }
        Ok(())
    }

    /// Writes `batch` in one transaction, with the resume point after its last page (or, when
    /// that page was the run's last, the new watermark), and empties it.
    async fn write_batch(
        &self,
        db: &DatabaseConnection,
        source: &SourceConfig,
        lease: &lease::Lease,
        batch: &mut Batch,
        state: &mut source_state::Model,
        run: &mut sync_run::Model,
    ) -> Result<()> {
        let Some(after) = batch.after.take() else {
            return Ok(());
        };
        let tenant = TenantId(source.tenant);
        let options = ImportOptions {
            tenant,
            source: source.settings.name.clone(),
            format: source.settings.format,
            context: batch.context.take().unwrap_or_default(),
            strict: false,
            settings: self.settings,
        };
        let incoming = std::mem::take(&mut batch.incoming);
        let ids = std::mem::take(&mut batch.ids);
        let warnings = std::mem::take(&mut batch.warnings);
        let held = std::mem::take(&mut batch.unchanged) as u64;
        batch.records = 0;
        batch.started = None;
        let (txn, _lock) = begin_write(db).await?;
        // Still this run's source (not taken over, not deleted), checked in the batch's own
        // transaction: a run that lost it writes nothing more.
        lease.renew(&txn).await?;
        let mut counts = apply_records(&txn, &options, &incoming, now_millis()).await?;
        counts.unchanged += held;
        if !ids.is_empty() {
            deletions::restore_seen(&txn, tenant, &source.settings.name, &ids).await?;
        }
        match &after {
            Some(next) => {
                state.cursor = Some(serde_json::to_string(next).unwrap_or_default());
            }
            None => {
                state.cursor = None;
                state.watermark = batch.newest.take();
                state.last_success_at = Some(now_millis());
                state.last_error = None;
            }
        }
        state.created += counts.created as i64;
        state.updated += counts.updated as i64;
        state.unchanged += counts.unchanged as i64;
        state.warnings += warnings as i64;
        save_state(&txn, state).await?;
        txn.commit().await?;
        run.created += counts.created as i64;
        run.updated += counts.updated as i64;
        run.unchanged += counts.unchanged as i64;
        run.warnings += warnings as i64;
        Ok(())
    }

    /// Marks what a complete listing did not see as deleted, within the share limit.
    async fn detect_deletions(
        &self,
        db: &DatabaseConnection,
        source: &SourceConfig,
        seen: &SeenIds,
        allow_mass_deletion: bool,
        run: &mut sync_run::Model,
    ) -> Result<()> {
        let tenant = TenantId(source.tenant);
        let missing = deletions::find_missing(db, tenant, &source.settings.name, seen).await?;
        deletions::check_share(
            &source.settings.name,
            missing.stored,
            missing.records.len() as u64,
            self.max_deletion_share,
            allow_mass_deletion,
        )?;
        if missing.records.is_empty() {
            return Ok(());
        }
        let (txn, _lock) = begin_write(db).await?;
        let marked = deletions::mark_deleted(&txn, tenant, &missing, now_millis()).await?;
        txn.commit().await?;
        run.deleted = marked as i64;
        Ok(())
    }
}

/// The mode of a new run: what was asked for; else FULL once `full_every_ms` has passed
/// since the last complete FULL run (or there was none), INCREMENTAL before. An API that
/// cannot filter by update time (`supports_since` false) is always read in FULL.
pub fn choose_mode(
    requested: Option<RunMode>,
    supports_since: bool,
    last_full_at: Option<i64>,
    full_every_ms: i64,
    now: i64,
) -> RunMode {
    match requested {
        _ if !supports_since => RunMode::Full,
        Some(mode) => mode,
        None if last_full_at.is_none_or(|at| now - at >= full_every_ms) => RunMode::Full,
        None => RunMode::Incremental,
    }
}

/// Gives `lease` back; failing to, it lapses by itself.
async fn release(db: &DatabaseConnection, lease: lease::Lease, name: &str) {
    if let Err(err) = lease.release(db).await {
        tracing::warn!(source = %name, error = %err.detail(), "could not release a source's lease");
    }
}

/// Sets when the scheduler runs `row` next: `interval` after `now`, unless it is disabled
/// or suspended.
async fn schedule_next(db: &impl ConnectionTrait, row: &source::Model, now: i64) -> Result<()> {
    Source::update_many()
        .col_expr(source::Column::NextRunAt, Expr::val(now + row.interval_ms))
        .filter(source::Column::Id.eq(row.id))
        .filter(source::Column::Enabled.eq(true))
        .filter(source::Column::Suspended.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Loads the state row of `source`, or a fresh one.
async fn load_state(db: &DatabaseConnection, source: &SourceConfig) -> Result<source_state::Model> {
    let found = SourceState::find_by_id((source.tenant, source.settings.name.clone()))
        .one(db)
        .await?;
    Ok(found.unwrap_or_else(|| source_state::Model {
        tenant_id: source.tenant,
        name: source.settings.name.clone(),
        format: source.settings.format.name().to_string(),
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
async fn save_state(db: &impl ConnectionTrait, state: &source_state::Model) -> Result<()> {
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

/// The sync state of each of `sources` (of one tenant), in one statement.
pub async fn states(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    names: &[String],
) -> Result<std::collections::HashMap<String, source_state::Model>> {
    Ok(SourceState::find()
        .filter(source_state::Column::TenantId.eq(tenant.0))
        .filter(source_state::Column::Name.is_in(names.iter().cloned()))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn a_run_is_full_when_asked_when_due_and_when_the_api_cannot_filter() {
        use RunMode::{Full, Incremental};
        // Never had a FULL run: FULL.
        assert_eq!(choose_mode(None, true, None, DAY, 10), Full);
        // fullEvery not yet passed: INCREMENTAL; passed: FULL.
        assert_eq!(choose_mode(None, true, Some(0), DAY, DAY - 1), Incremental);
        assert_eq!(choose_mode(None, true, Some(0), DAY, DAY), Full);
        // Asked for: as asked.
        assert_eq!(choose_mode(Some(Full), true, Some(0), DAY, 1), Full);
        assert_eq!(
            choose_mode(Some(Incremental), true, None, DAY, 1),
            Incremental
        );
        // An API without update-time filtering lists everything every time.
        assert_eq!(choose_mode(Some(Incremental), false, Some(0), DAY, 1), Full);
    }
}
