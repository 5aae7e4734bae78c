//! Reading the queue: a change, a contact's changes, the tenant's queue as a connection,
//! and its depth by state.

use entity::prelude::WriteBack as WriteBackRow;
use entity::write_back;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    Statement,
};
use uuid::Uuid;

use super::outbox::state;
use crate::error::{Error, Result};
use crate::tenancy::TenantId;

/// The tenant's change `id`.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<write_back::Model> {
    WriteBackRow::find_by_id(id)
        .filter(write_back::Column::TenantId.eq(tenant.0))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound("WriteBack".into()))
}

/// The changes queued for the contacts `ids` of the tenant, oldest first (one statement).
pub async fn of_contacts(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<Vec<write_back::Model>> {
    Ok(WriteBackRow::find()
        .filter(write_back::Column::TenantId.eq(tenant.0))
        .filter(write_back::Column::ContactId.is_in(ids.iter().copied()))
        .order_by_asc(write_back::Column::Id)
        .all(db)
        .await?)
}

/// Removes the delivered changes of every tenant delivered before `before` (epoch ms), and
/// their resolved conflicts with them; returns how many (one statement).
pub async fn purge_delivered(db: &DatabaseConnection, before: i64) -> Result<u64> {
    let purged = WriteBackRow::delete_many()
        .filter(write_back::Column::State.eq(state::DELIVERED))
        .filter(write_back::Column::DeliveredAt.lt(before))
        .exec(db)
        .await?;
    Ok(purged.rows_affected)
}

/// How many changes of the whole queue are in each state but `DELIVERED` (every state
/// listed, zero included).
pub async fn depth(db: &DatabaseConnection) -> Result<Vec<(String, i64)>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT state, COUNT(*) AS n FROM write_backs \
             WHERE state IN ('PENDING', 'DELIVERING', 'FAILED', 'CONFLICT') GROUP BY state",
        ))
        .await?;
    let mut depth: Vec<(String, i64)> = [
        state::PENDING,
        state::DELIVERING,
        state::FAILED,
        state::CONFLICT,
    ]
    .into_iter()
    .map(|s| (s.to_string(), 0))
    .collect();
    for row in rows {
        let name: String = row.try_get("", "state")?;
        let n: i64 = row.try_get("", "n")?;
        if let Some(entry) = depth.iter_mut().find(|(s, _)| *s == name) {
            entry.1 = n;
        }
    }
    Ok(depth)
}

/// What `writeBacks` lists: changes in one state, to one source, of one contact (each
/// optional).
#[derive(Clone, Debug, Default)]
pub struct QueueFilter {
    pub state: Option<String>,
    pub source: Option<String>,
    pub contact: Option<Uuid>,
}

/// The order of `writeBacks`: newest first (ids are UUIDv7).
pub fn ordering() -> crate::paging::Ordering<write_back::Model> {
    use crate::paging::{Direction, KeyValue, Ordering, SortKey};
    use sea_orm::IntoSimpleExpr;
    let by_creation = SortKey {
        name: "createdAt",
        expr: write_back::Column::CreatedAt.into_simple_expr(),
        direction: Direction::Desc,
        value: |m: &write_back::Model| KeyValue::Int(m.created_at),
        text: false,
    };
    Ordering::dedup(
        [],
        by_creation,
        write_back::Column::Id.into_simple_expr(),
        |m| m.id,
    )
}

fn filtered(tenant: TenantId, filter: &QueueFilter) -> sea_orm::Select<WriteBackRow> {
    let mut select = WriteBackRow::find().filter(write_back::Column::TenantId.eq(tenant.0));
    if let Some(state) = &filter.state {
        select = select.filter(write_back::Column::State.eq(state.clone()));
    }
    if let Some(source) = &filter.source {
        select = select.filter(write_back::Column::Source.eq(source.clone()));
    }
    if let Some(contact) = filter.contact {
        select = select.filter(write_back::Column::ContactId.eq(contact));
    }
    select
}

/// A page of the tenant's queue, newest first.
pub async fn page(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &QueueFilter,
    args: &crate::paging::PageArgs,
) -> Result<crate::paging::Page<write_back::Model>> {
    crate::paging::fetch_page(db, filtered(tenant, filter), &ordering(), args).await
}

/// How many changes of the tenant's queue match `filter`.
pub async fn count(db: &DatabaseConnection, tenant: TenantId, filter: &QueueFilter) -> Result<i64> {
    use sea_orm::PaginatorTrait;
    Ok(filtered(tenant, filter).count(db).await? as i64)
}
