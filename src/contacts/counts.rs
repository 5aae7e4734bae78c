//! Exact counts of the live contacts under each parent, read from `contact_counts`, which the
//! database's triggers keep in the transaction of every write (migration 17). They answer
//! `totalCount` of an unfiltered `Account.contacts`, `Business.contacts` and `Tag.contacts`
//! without counting up to every contact of the parent (70,000 an account at a million
//! contacts); a filtered connection still counts its rows.
use std::collections::HashMap;

use entity::contact_count;
use entity::prelude::ContactCount;
use sea_orm::sea_query::{Expr, ExprTrait, PgFunc};
use sea_orm::{ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QuerySelect};
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
    let of_parents = if db.get_database_backend() == DbBackend::Postgres {
        Expr::col(contact_count::Column::ParentId).eq(PgFunc::any(Expr::val(parents.to_vec())))
    } else {
        Expr::col(contact_count::Column::ParentId).is_in(parents.iter().copied())
    };
    let rows: Vec<(Uuid, i64)> = ContactCount::find()
        .select_only()
        .columns([contact_count::Column::ParentId, contact_count::Column::Live])
        .filter(contact_count::Column::TenantId.eq(tenant.0))
        .filter(contact_count::Column::ParentKind.eq(kind(parent)))
        .filter(of_parents)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}
