//! Changing and running sources: `createSource`, `updateSource`, `deleteSource`,
//! `syncSource` (scope `sources:manage`).
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject};

use super::RequestContext;
use super::source::{Source, SyncRun, with_state};
use crate::change::Change;
use crate::error::Error;
use crate::sources::catalog::{self, SourcePatch};
use crate::sources::definition::SourceDraft;
use crate::sources::runs::{RUNS_KEPT, RunMode, RunTrigger};
use crate::sources::sync::{RunRequest, Syncer};
use crate::write_back::config::WriteBackDraft;

/// An extra request header.
#[derive(InputObject)]
pub struct HeaderInput {
    /// Header name, e.g. `X-Api-Version` (not `Authorization`: use `token`).
    pub name: String,
    /// Its value.
    pub value: String,
}

/// How a source is written back to (issue 17); a field left out takes the format's
/// default.
#[derive(InputObject)]
pub struct SourceWriteInput {
    /// `PATCH` (default) or `POST` (`PUT` is refused: a change sends only the fields that
    /// changed).
    pub method: Option<String>,
    /// The record's URL with `{id}` (the vendor id), and optionally `{accountId}` /
    /// `{businessId}`; default: seed 001's `/api/contacts/{id}` on the list URL's host for
    /// `account-contacts`, the list URL plus `/{id}` for the others.
    pub url: Option<String>,
    /// `none`, `if-match` or `if-unmodified-since` (the default for `client-contacts`, seed
    /// 003; `none` for the others).
    pub precondition: Option<String>,
    /// What a conflict (412/409) leads to: `manual` (default), `source-wins` or
    /// `gateway-wins`.
    pub conflict_policy: Option<String>,
    /// Whether `deleteContact` deletes the record at the vendor too (default false).
    pub delete: Option<bool>,
}

impl From<SourceWriteInput> for WriteBackDraft {
    fn from(input: SourceWriteInput) -> Self {
        WriteBackDraft {
            method: input.method,
            url: input.url,
            precondition: input.precondition,
            conflict_policy: input.conflict_policy,
            delete: input.delete,
        }
    }
}

fn headers(list: Vec<HeaderInput>) -> Vec<(String, String)> {
    list.into_iter().map(|h| (h.name, h.value)).collect()
}

/// Input of `createSource`. Durations are humantime strings: `"90s"`, `"15m"`, `"1d"`.
#[derive(InputObject)]
pub struct CreateSourceInput {
    /// Unique in your tenant: 1–100 letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// `account-contacts`, `business-contacts`, `client-contacts` or `pipeline-contacts`.
    pub format: String,
    /// The list URL (http or https); `{accountId}` / `{businessId}` need `accounts` /
    /// `businesses`; `account-contacts` needs `{accountId}`.
    pub url: String,
    /// Values of `{accountId}`.
    #[graphql(default)]
    pub accounts: Vec<String>,
    /// Values of `{businessId}`.
    #[graphql(default)]
    pub businesses: Vec<String>,
    /// Extra request headers.
    #[graphql(default)]
    pub headers: Vec<HeaderInput>,
    /// The vendor's bearer token; stored encrypted, never returned (see `credential`).
    pub token: Option<String>,
    /// Time between scheduled runs; at least `30s`, default `15m`.
    pub interval: Option<String>,
    /// Time between FULL runs; at least `30s`, default `1d`.
    pub full_every: Option<String>,
    /// How far before the watermark incremental runs ask from; default `5m`.
    pub overlap: Option<String>,
    /// Requests per minute to pace runs to (1–60000); none by default.
    pub max_requests_per_minute: Option<i32>,
    /// Whether the scheduler runs it; default true (it is then first due at once).
    pub enabled: Option<bool>,
    /// How contact changes are written back to the vendor; left out, the source is
    /// read-only.
    pub write: Option<SourceWriteInput>,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Input of `updateSource`: the source `name` and the fields to change (left out: kept).
#[derive(InputObject)]
pub struct UpdateSourceInput {
    /// The source to change (names do not change).
    pub name: String,
    /// New format.
    pub format: Option<String>,
    /// New list URL.
    pub url: Option<String>,
    /// New values of `{accountId}`.
    pub accounts: Option<Vec<String>>,
    /// New values of `{businessId}`.
    pub businesses: Option<Vec<String>>,
    /// New extra headers (the whole list).
    pub headers: Option<Vec<HeaderInput>>,
    /// A new bearer token; `null` removes the stored one.
    pub token: MaybeUndefined<String>,
    /// New time between scheduled runs.
    pub interval: Option<String>,
    /// New time between FULL runs.
    pub full_every: Option<String>,
    /// New overlap.
    pub overlap: Option<String>,
    /// New pacing; `null` removes it.
    pub max_requests_per_minute: MaybeUndefined<i32>,
    /// Enables or disables the schedule.
    pub enabled: Option<bool>,
    /// New write settings (the whole set; what it leaves out takes the format's default);
    /// `null` makes the source read-only.
    pub write: MaybeUndefined<SourceWriteInput>,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

fn change<T>(value: MaybeUndefined<T>) -> Change<T> {
    match value {
        MaybeUndefined::Undefined => Change::Keep,
        MaybeUndefined::Null => Change::Clear,
        MaybeUndefined::Value(v) => Change::Set(v),
    }
}

/// Result of `createSource` and `updateSource`.
#[derive(SimpleObject)]
pub struct SourcePayload {
    /// The source as stored.
    pub source: Source,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Input of `deleteSource`.
#[derive(InputObject)]
pub struct DeleteSourceInput {
    /// The source to delete.
    pub name: String,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of `deleteSource`.
#[derive(SimpleObject)]
pub struct DeleteSourcePayload {
    /// The deleted source's id.
    pub deleted_source_id: ID,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// What a run reads.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// What changed since the watermark, less the overlap (seed 003); every record for
    /// APIs that cannot filter by update time.
    Incremental,
    /// Every record; records no longer there are marked deleted.
    Full,
}

/// Input of `syncSource`.
#[derive(InputObject)]
pub struct SyncSourceInput {
    /// The source's name.
    pub name: String,
    /// Left out: FULL when `fullEvery` has passed since the last FULL run, else INCREMENTAL.
    /// An interrupted run is resumed first, in its own mode.
    pub mode: Option<SyncMode>,
    /// Wait for the run to end (bounded by the request's time limit; the run goes on if
    /// the request gives up).
    #[graphql(default = false)]
    pub wait: bool,
    /// Let deletion detection mark more than the allowed share of the source's records
    /// deleted (by default a run that would is refused with `SUSPICIOUS_DELETION`).
    #[graphql(default = false)]
    pub allow_mass_deletion: bool,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of `syncSource`.
#[derive(SimpleObject)]
pub struct SyncSourcePayload {
    /// The run: just started, or ended when `wait` was true.
    pub run: SyncRun,
    /// The source after starting (or ending) the run.
    pub source: Source,
    /// Contacts created by the run so far.
    pub created: i64,
    /// Contacts changed by the run so far.
    pub updated: i64,
    /// Records of the run that changed nothing, so far.
    pub unchanged: i64,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Changing and running sources.
#[derive(Default)]
pub struct SourceMutations;

/// Changing and running sources.
#[Object]
impl SourceMutations {
    /// Adds a vendor API to your tenant; every failing field is reported at once
    /// (`VALIDATION_FAILED`) and nothing is written. Needs `sources:manage`.
    async fn create_source(
        &self,
        ctx: &Context<'_>,
        input: CreateSourceInput,
    ) -> async_graphql::Result<SourcePayload> {
        let request = RequestContext::of(ctx)?;
        let syncer = ctx.data::<Arc<Syncer>>()?;
        let draft = SourceDraft {
            name: input.name,
            format: input.format,
            url: input.url,
            accounts: input.accounts,
            businesses: input.businesses,
            headers: headers(input.headers),
            interval: input.interval,
            full_every: input.full_every,
            overlap: input.overlap,
            max_requests_per_minute: input.max_requests_per_minute.map(i64::from),
            enabled: input.enabled,
            write: input.write.map(Into::into),
        };
        let row = catalog::create(
            request.db,
            syncer.key.as_ref(),
            request.tenant,
            &draft,
            input.token.as_deref(),
        )
        .await
        .map_err(|err| err.under("input"))?;
        let source = one_source(ctx, row).await?;
        Ok(SourcePayload {
            source,
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Changes one of your sources; the result is checked as a whole, and nothing is written
    /// when any field fails. Also lifts a suspension. Needs `sources:manage`.
    async fn update_source(
        &self,
        ctx: &Context<'_>,
        input: UpdateSourceInput,
    ) -> async_graphql::Result<SourcePayload> {
        let request = RequestContext::of(ctx)?;
        let syncer = ctx.data::<Arc<Syncer>>()?;
        let patch = SourcePatch {
            format: input.format,
            url: input.url,
            accounts: input.accounts,
            businesses: input.businesses,
            headers: input.headers.map(headers),
            interval: input.interval,
            full_every: input.full_every,
            overlap: input.overlap,
            max_requests_per_minute: change(input.max_requests_per_minute).map(i64::from),
            enabled: input.enabled,
            token: change(input.token),
            write: change(input.write).map(Into::into),
        };
        let row = catalog::update(
            request.db,
            syncer.key.as_ref(),
            request.tenant,
            &input.name,
            &patch,
        )
        .await
        .map_err(|err| err.under("input"))?;
        let source = one_source(ctx, row).await?;
        Ok(SourcePayload {
            source,
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Deletes one of your sources with its runs and sync state; the contacts it brought
    /// and their vendor records stay. Needs `sources:manage`.
    async fn delete_source(
        &self,
        ctx: &Context<'_>,
        input: DeleteSourceInput,
    ) -> async_graphql::Result<DeleteSourcePayload> {
        let request = RequestContext::of(ctx)?;
        let id = catalog::delete(request.db, request.tenant, &input.name).await?;
        Ok(DeleteSourcePayload {
            deleted_source_id: ID(id.to_string()),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Starts a run of one of your sources now and returns it (`wait: true`: once it has
    /// ended). `SOURCE_RUNNING` when a run of it is under way anywhere; a failed run ends
    /// with `status: FAILED` and its `error { code message }` (`UPSTREAM_FAILED`,
    /// `BAD_PAYLOAD`, `RATE_LIMITED`, `SUSPICIOUS_DELETION`). Needs `sources:manage`.
    /// Example: `syncSource(input: { name: "crm", wait: true }) { run { status created } }`.
    async fn sync_source(
        &self,
        ctx: &Context<'_>,
        input: SyncSourceInput,
    ) -> async_graphql::Result<SyncSourcePayload> {
        let request = RequestContext::of(ctx)?;
        let syncer = ctx.data::<Arc<Syncer>>()?;
        let run_request = RunRequest {
            mode: input.mode.map(|m| match m {
                SyncMode::Incremental => RunMode::Incremental,
                SyncMode::Full => RunMode::Full,
            }),
            trigger: RunTrigger::Manual,
            allow_mass_deletion: input.allow_mass_deletion,
        };
        let (mut run, handle) = syncer
            .spawn(request.db, request.tenant, &input.name, run_request)
            .await?;
        if input.wait {
            run = handle
                .await
                .map_err(|err| Error::Internal(format!("the sync run panicked: {err}")))??;
        }
        let row = catalog::find(request.db, request.tenant, &input.name).await?;
        let source = one_source(ctx, row).await?;
        Ok(SyncSourcePayload {
            created: run.created,
            updated: run.updated,
            unchanged: run.unchanged,
            run: SyncRun(run),
            source,
            client_mutation_id: input.client_mutation_id,
        })
    }
}

async fn one_source(
    ctx: &Context<'_>,
    row: entity::source::Model,
) -> async_graphql::Result<Source> {
    with_state(ctx, &[row], RUNS_KEPT)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| Error::NotFound("Source".into()).into())
}
