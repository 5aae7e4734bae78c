//! One run per source at a time, across every process on the database: a run takes the
//! source's lease (a `source_leases` row) before it starts, renews it after each page, and
//! gives it back at the end. A second run while the lease is held is refused with
//! `SOURCE_RUNNING`; a lease whose holder died (no renewal for [`LEASE_TTL_MS`]) is taken
//! over by the next run.
use entity::prelude::SourceLease;
use entity::source_lease::{self, Column};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::tenancy::TenantId;
use crate::time::{format_millis, now_millis};

/// How long a lease lasts without renewal (ms). A run renews it before it fetches a page and
/// again in the page's transaction; one page takes at most the rate-limit budget (5 min) and
/// its retries (5 × 30 s waits and 30 s requests), well within this.
pub const LEASE_TTL_MS: i64 = 15 * 60 * 1000;

/// A held lease on one source.
#[derive(Clone, Debug)]
pub struct Lease {
    tenant: TenantId,
    name: String,
    holder: Uuid,
}

/// Takes the lease of source `name`: free, or held by a run whose lease has lapsed. One
/// statement (an upsert whose update applies only to a lapsed lease), so two runs racing
/// for it cannot both win.
pub async fn acquire(db: &impl ConnectionTrait, tenant: TenantId, name: &str) -> Result<Lease> {
    let now = now_millis();
    let holder = Uuid::now_v7();
    let row = source_lease::Model {
        tenant_id: tenant.0,
        name: name.to_string(),
        holder,
        acquired_at: now,
        expires_at: now + LEASE_TTL_MS,
    };
    let taken = SourceLease::insert(row.into_active_model())
        .on_conflict(
            OnConflict::columns([Column::TenantId, Column::Name])
                .update_columns([Column::Holder, Column::AcquiredAt, Column::ExpiresAt])
                .action_and_where(Expr::col((SourceLease, Column::ExpiresAt)).lt(now))
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    if taken == 1 {
        return Ok(Lease {
            tenant,
            name: name.to_string(),
            holder,
        });
    }
    let since = SourceLease::find_by_id((tenant.0, name.to_string()))
        .one(db)
        .await?
        .map(|lease| format!(" (since {})", format_millis(lease.acquired_at)))
        .unwrap_or_default();
    Err(Error::SourceRunning(format!(
        "source {name} is already running{since}; wait for that run to finish"
    )))
}

/// Which of the tenant's sources `names` a run holds now (an unlapsed lease), in one
/// statement.
pub async fn held(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    names: &[String],
    now: i64,
) -> Result<std::collections::HashSet<String>> {
    Ok(SourceLease::find()
        .filter(Column::TenantId.eq(tenant.0))
        .filter(Column::Name.is_in(names.iter().cloned()))
        .filter(Column::ExpiresAt.gte(now))
        .all(db)
        .await?
        .into_iter()
        .map(|lease| lease.name)
        .collect())
}

impl Lease {
    /// Extends the lease; an error if another run has taken it over meanwhile (this run
    /// then stops, leaving the source to that run).
    pub async fn renew(&self, db: &impl ConnectionTrait) -> Result<()> {
        let renewed = SourceLease::update_many()
            .col_expr(Column::ExpiresAt, Expr::val(now_millis() + LEASE_TTL_MS))
            .filter(Column::TenantId.eq(self.tenant.0))
            .filter(Column::Name.eq(self.name.clone()))
            .filter(Column::Holder.eq(self.holder))
            .exec(db)
            .await?;
        if renewed.rows_affected == 1 {
            Ok(())
        } else {
            Err(Error::SourceRunning(format!(
                "source {}: this run's lease was taken over by another run",
                self.name
            )))
        }
    }

    /// Gives the lease back.
    pub async fn release(self, db: &impl ConnectionTrait) -> Result<()> {
        SourceLease::delete_many()
            .filter(Column::TenantId.eq(self.tenant.0))
            .filter(Column::Name.eq(self.name))
            .filter(Column::Holder.eq(self.holder))
            .exec(db)
            .await?;
        Ok(())
    }
}
