//! The runs of a source (`sync_runs`): one row per run, written when it starts and when it
//! ends, the last [`RUNS_KEPT`] kept per source.
use std::collections::HashMap;

use entity::prelude::SyncRun;
use entity::sync_run::{self, Column};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::tenancy::TenantId;
use crate::time::now_millis;

/// Runs kept per source; older ones are deleted when a run ends.
pub const RUNS_KEPT: u64 = 50;

/// What a run reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Only what changed since the watermark (less the overlap), where the API can filter
    /// by update time; every record otherwise.
    Incremental,
    /// Every record; deletions are detected at the end.
    Full,
}

impl RunMode {
    /// As stored and shown: `INCREMENTAL`, `FULL`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Incremental => "INCREMENTAL",
            RunMode::Full => "FULL",
        }
    }

    /// From its stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "INCREMENTAL" => Some(RunMode::Incremental),
            "FULL" => Some(RunMode::Full),
            _ => None,
        }
    }
}

/// Who started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunTrigger {
    /// The scheduler of a `serve` process.
    Schedule,
    /// `syncSource` or `contact-gateway sync`.
    Manual,
    /// A vendor refused a write-back as a conflict: its current values are read at once.
    WriteConflict,
}

impl RunTrigger {
    /// As stored: `SCHEDULE`, `MANUAL`, `WRITE_CONFLICT`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Schedule => "SCHEDULE",
            RunTrigger::Manual => "MANUAL",
            RunTrigger::WriteConflict => "WRITE_CONFLICT",
        }
    }
}

/// Stored statuses.
pub const RUNNING: &str = "RUNNING";
/// A run that read every page it meant to and applied them.
pub const SUCCEEDED: &str = "SUCCEEDED";
/// A run that stopped on an error (`error_code`, `error_message`).
pub const FAILED: &str = "FAILED";

/// Records a run of `source_id` as started, after its lease is held. Runs of the source
/// still marked running belong to a process that died (the lease it held lapsed): they are
/// marked failed first.
pub async fn start(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    source_id: Uuid,
    mode: RunMode,
    trigger: RunTrigger,
) -> Result<sync_run::Model> {
    let now = now_millis();
    SyncRun::update_many()
        .col_expr(Column::Status, Expr::val(FAILED))
        .col_expr(Column::FinishedAt, Expr::val(now))
        .col_expr(
            Column::ErrorCode,
            Expr::val(crate::code::Code::Interrupted.as_str()),
        )
        .col_expr(
            Column::ErrorMessage,
            Expr::val("the process running it stopped; the next run resumed it"),
        )
        .filter(Column::SourceId.eq(source_id))
        .filter(Column::Status.eq(RUNNING))
        .exec(db)
        .await?;
    let run = sync_run::Model {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        source_id,
        mode: mode.as_str().to_string(),
        trigger: trigger.as_str().to_string(),
        started_at: now,
        finished_at: None,
        status: RUNNING.to_string(),
        created: 0,
        updated: 0,
        unchanged: 0,
        deleted: 0,
        warnings: 0,
        rejected: 0,
        requests: 0,
        retries: 0,
        error_code: None,
        error_message: None,
    };
    Ok(run.into_active_model().insert(db).await?)
}

/// Writes how `run` ended (its counts as they stand, and `error` if it failed) and deletes
/// the source's runs older than the last [`RUNS_KEPT`].
pub async fn finish(
    db: &impl ConnectionTrait,
    mut run: sync_run::Model,
    error: Option<&Error>,
) -> Result<sync_run::Model> {
    run.finished_at = Some(now_millis());
    match error {
        None => run.status = SUCCEEDED.to_string(),
        Some(err) => {
            run.status = FAILED.to_string();
            run.error_code = Some(err.code().as_str().to_string());
            run.error_message = Some(err.message());
        }
    }
    let mut active = run.clone().into_active_model();
    for column in [
        Column::FinishedAt,
        Column::Status,
        Column::Created,
        Column::Updated,
        Column::Unchanged,
        Column::Deleted,
        Column::Warnings,
        Column::Rejected,
        Column::Requests,
        Column::Retries,
        Column::ErrorCode,
        Column::ErrorMessage,
    ] {
        active.reset(column);
    }
    active.update(db).await?;
    let oldest_kept = SyncRun::find()
        .select_only()
        .column(Column::Id)
        .filter(Column::SourceId.eq(run.source_id))
        .order_by_desc(Column::Id)
        .offset(RUNS_KEPT - 1)
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db)
        .await?;
    if let Some(oldest) = oldest_kept {
        SyncRun::delete_many()
            .filter(Column::SourceId.eq(run.source_id))
            .filter(Column::Id.lt(oldest))
            .exec(db)
            .await?;
    }
    Ok(run)
}

/// The newest `first` runs of each of `sources` (of `tenant`), newest first, in one
/// statement per source set (a window over `sync_runs_source`).
pub async fn newest(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    sources: &[Uuid],
    first: u64,
) -> Result<HashMap<Uuid, Vec<sync_run::Model>>> {
    let mut out: HashMap<Uuid, Vec<sync_run::Model>> = HashMap::new();
    if sources.is_empty() || first == 0 {
        return Ok(out);
    }
    // At most RUNS_KEPT rows per source exist, so reading them all is bounded.
    let rows = SyncRun::find()
        .filter(Column::TenantId.eq(tenant.0))
        .filter(Column::SourceId.is_in(sources.iter().copied()))
        .order_by_desc(Column::Id)
        .all(db)
        .await?;
    for row in rows {
        let runs = out.entry(row.source_id).or_default();
        if (runs.len() as u64) < first {
            runs.push(row);
        }
    }
    Ok(out)
}
