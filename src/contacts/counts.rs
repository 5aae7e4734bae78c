//! Exact counts of the live contacts under each parent, read from `contact_counts`, which the
//! database's triggers keep in the transaction of every write (migration 17). They answer
//! `totalCount` of an unfiltered `Account.contacts`, `Business.contacts` and `Tag.contacts`
//! without counting up to every contact of the parent (70,000 an account at a million
//! contacts); a filtered connection still counts its rows.
//!
//! On PostgreSQL the triggers append each statement's changes to `contact_count_deltas`
//! (migration 19: appending locks nothing another writer waits for, so transactions that
//! change the same parents cannot deadlock); a read adds them to the counts, and
//! [`fold_deltas`], run every [`FOLD_PERIOD`] by `serve`, moves them into `contact_counts`.
use std::collections::HashMap;

use entity::contact_count;
use entity::prelude::ContactCount;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QuerySelect, Statement, Value,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::ContactParent;
use crate::error::Result;
use crate::tenancy::TenantId;

/// The `parent_kind` of `parent` in `contact_counts`.
fn kind(parent: ContactParent) -> &'static str {
    match parent {
        ContactParent::Account => "account",
        ContactParent::Business => "business",
        ContactParent::Tag => "tag",
    }
}

/// The live contacts of each of `parents` (a parent without any is absent): one statement,
/// whose parents are one array parameter on PostgreSQL.
pub async fn live_by_parent(
    db: &DatabaseConnection,
    tenant: TenantId,
    parent: ContactParent,
    parents: &[Uuid],
) -> Result<HashMap<Uuid, i64>> {
    if parents.is_empty() {
        return Ok(HashMap::new());
    }
    if db.get_database_backend() == DbBackend::Postgres {
        return live_with_deltas(db, tenant, parent, parents).await;
    }
    let rows: Vec<(Uuid, i64)> = ContactCount::find()
        .select_only()
        .columns([contact_count::Column::ParentId, contact_count::Column::Live])
        .filter(contact_count::Column::TenantId.eq(tenant.0))
        .filter(contact_count::Column::ParentKind.eq(kind(parent)))
        // SQLite only: PostgreSQL returned above.
        .filter(crate::db::one_of(
            contact_count::Column::ParentId,
            parents,
            DbBackend::Sqlite,
        ))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// [`live_by_parent`] on PostgreSQL: the counts plus the deltas not folded yet, in one
/// statement (so one snapshot), the parents one array parameter.
async fn live_with_deltas(
    db: &DatabaseConnection,
    tenant: TenantId,
    parent: ContactParent,
    parents: &[Uuid],
) -> Result<HashMap<Uuid, i64>> {
    const SQL: &str = "SELECT parent_id, sum(live)::bigint AS live FROM ( \
         SELECT parent_id, live FROM contact_counts \
          WHERE tenant_id = $1 AND parent_kind = $2 AND parent_id = ANY($3) \
         UNION ALL SELECT parent_id, d FROM contact_count_deltas \
          WHERE tenant_id = $1 AND parent_kind = $2 AND parent_id = ANY($3)) counts \
         GROUP BY parent_id";
    let values: [Value; 3] = [
        tenant.0.into(),
        kind(parent).into(),
        parents.to_vec().into(),
    ];
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            SQL,
            values,
        ))
        .await?;
    let mut live = HashMap::with_capacity(rows.len());
    for row in rows {
        live.insert(
            row.try_get::<Uuid>("", "parent_id")?,
            row.try_get::<i64>("", "live")?,
        );
    }
    Ok(live)
}

/// How often `serve` folds the counts' deltas into `contact_counts` ([`fold_deltas`]).
pub const FOLD_PERIOD: std::time::Duration = std::time::Duration::from_secs(2);

/// Moves the committed deltas of the counts into `contact_counts` (PostgreSQL; nothing to do
/// on SQLite), in statements of at most 10,000 deltas (`migration::FOLD_CONTACT_COUNT_DELTAS`),
/// each taking the count rows it changes in key order, until none is left. Several processes
/// may fold at once: a delta is deleted, and so added, by one of them only. Returns the
/// number of deltas moved.
///
/// # Errors
/// A database error; the statements before it stay done.
pub async fn fold_deltas(db: &DatabaseConnection) -> Result<u64> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(0);
    }
    let mut moved = 0;
    loop {
        let folded = db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                migration::FOLD_CONTACT_COUNT_DELTAS,
            ))
            .await?
            .map(|row| row.try_get::<i64>("", "folded"))
            .transpose()?
            .unwrap_or(0);
        moved += u64::try_from(folded).unwrap_or(0);
        if folded < migration::FOLD_CONTACT_COUNT_DELTAS_BATCH {
            return Ok(moved);
        }
    }
}

/// Folds the counts' deltas every [`FOLD_PERIOD`] until `stopping` is cancelled; a failed
/// fold is logged and tried again at the next period (the deltas wait in the table, and
/// reads add them meanwhile).
pub async fn fold_deltas_until(db: DatabaseConnection, stopping: CancellationToken) {
    let mut every = tokio::time::interval(FOLD_PERIOD);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stopping.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(error) = fold_deltas(&db).await {
            tracing::warn!(error = %error.detail(), "folding the contact counts' deltas failed");
        }
    }
}
