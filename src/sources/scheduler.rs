//! The scheduler of `serve`: every poll it looks for sources whose `next_run_at` has come
//! (any tenant's; one indexed statement) and starts a run of each in the background. Several
//! `serve` processes on one database poll side by side: the source's lease lets one of them
//! run it, and the run moves `next_run_at` on as it starts, so the others pass it over.
use std::sync::Arc;
use std::time::Duration;

use entity::prelude::{Source, SourceLease};
use entity::source::{self, Column};
use entity::source_lease;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::runs::RunTrigger;
use super::sync::{RunRequest, Syncer};
use crate::error::{Error, Result};
use crate::tenancy::TenantId;
use crate::time::now_millis;

/// Due sources started per poll, at most.
const STARTS_PER_POLL: u64 = 16;
/// Runs under way in one process, at most: past it the scheduler starts none (the sources
/// stay due, for this process's next poll or another process's).
pub const MAX_RUNS_PER_PROCESS: usize = 8;

/// Polls every `poll` until the syncer shuts down.
pub async fn run(db: DatabaseConnection, syncer: Arc<Syncer>, poll: Duration) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = syncer.stopped() => return,
        }
        if let Err(err) = start_due(&db, &syncer).await {
            tracing::warn!(error = %err.detail(), "the scheduler could not look for due sources");
        }
    }
}

/// Starts a run of every source that is due now; returns how many started.
pub async fn start_due(db: &DatabaseConnection, syncer: &Arc<Syncer>) -> Result<usize> {
    let now = now_millis();
    let room = MAX_RUNS_PER_PROCESS.saturating_sub(syncer.running());
    if room == 0 {
        return Ok(0);
    }
    // Sources running now (anywhere) are passed over: they would take every start of the
    // poll and keep the others waiting.
    let leased = Query::select()
        .expr(Expr::val(1))
        .from(SourceLease)
        .and_where(
            Expr::col((SourceLease, source_lease::Column::TenantId))
                .equals((Source, Column::TenantId)),
        )
        .and_where(
            Expr::col((SourceLease, source_lease::Column::Name)).equals((Source, Column::Name)),
        )
        .and_where(Expr::col((SourceLease, source_lease::Column::ExpiresAt)).gte(now))
        .to_owned();
    let due: Vec<source::Model> = Source::find()
        .filter(Column::NextRunAt.lte(now))
        .filter(Expr::exists(leased).not())
        .order_by_asc(Column::NextRunAt)
        .limit(Ord::min(STARTS_PER_POLL, room as u64))
        .all(db)
        .await?;
    let mut started = 0;
    for row in due {
        if syncer.is_stopping() {
            break;
        }
        let request = RunRequest {
            mode: None,
            trigger: RunTrigger::Schedule,
            allow_mass_deletion: false,
        };
        match syncer
            .spawn(db, TenantId(row.tenant_id), &row.name, request)
            .await
        {
            Ok(_) => started += 1,
            // Another process runs it.
            Err(Error::SourceRunning(_)) => {}
            Err(err) => {
                // A run that cannot start (its token does not open, say) waits for its next
                // turn instead of being retried at every poll.
                tracing::warn!(source = %row.name, error = %err.detail(), "a scheduled run could not start");
                Source::update_many()
                    .col_expr(
                        Column::NextRunAt,
                        Expr::val(now.saturating_add(row.interval_ms)),
                    )
                    .filter(Column::Id.eq(row.id))
                    .filter(Column::NextRunAt.lte(now))
                    .exec(db)
                    .await?;
            }
        }
    }
    Ok(started)
}
