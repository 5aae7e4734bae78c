//! The scheduler of `serve`: every poll it looks for sources whose `next_run_at` has come
//! (any tenant's; one indexed statement) and starts a run of each in the background. Several
//! `serve` processes on one database poll side by side: the source's lease lets one of them
//! run it, and the run moves `next_run_at` on as it starts, so the others pass it over.
use std::sync::Arc;
use std::time::Duration;

use entity::prelude::Source;
use entity::source::{self, Column};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::runs::RunTrigger;
use super::sync::{RunRequest, Syncer};
use crate::error::{Error, Result};
use crate::tenancy::TenantId;
use crate::time::now_millis;

/// Due sources started per poll, at most.
const STARTS_PER_POLL: u64 = 16;

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
    let due: Vec<source::Model> = Source::find()
        .filter(Column::NextRunAt.lte(now))
        .order_by_asc(Column::NextRunAt)
        .limit(STARTS_PER_POLL)
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
                    .col_expr(Column::NextRunAt, Expr::val(now + row.interval_ms))
                    .filter(Column::Id.eq(row.id))
                    .filter(Column::NextRunAt.lte(now))
                    .exec(db)
                    .await?;
            }
        }
    }
    Ok(started)
}
