//! Tags: labels of a business that contacts carry (seed 002).
use std::collections::HashMap;

use async_graphql::{Enum, ID, InputObject};
use entity::prelude::Tag;
use entity::tag::{Column, Model};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, DatabaseConnection, IntoSimpleExpr, PaginatorTrait, QueryFilter, Select,
};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::filter::{check_search, collect_id, name_contains};
use crate::paging::{self, Direction, KeyValue, Ordering, Page, PageArgs, SortKey};
use crate::scope::{TenantId, scoped};

/// Which tags to return; every field given must match.
#[derive(InputObject, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TagFilter {
    /// Case-insensitive substring of the name (at most 255 characters).
    pub search: Option<String>,
    /// Exact name.
    pub name: Option<String>,
    /// Tags of this business.
    pub business_id: Option<ID>,
}

/// A field tags can be sorted by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagOrderField {
    /// The tag's display order.
    DisplayOrder,
    /// Name (byte order).
    Name,
    /// When the tag was created.
    CreatedAt,
}

/// One sort key of a tag list.
#[derive(InputObject, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TagOrder {
    /// What to sort by.
    pub field: TagOrderField,
    /// Which way.
    pub direction: Direction,
}

/// A tag list request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TagQuery {
    /// Which tags.
    pub filter: TagFilter,
    /// In which order (empty: display order).
    pub order: Vec<TagOrder>,
}

fn sort_key(order: &TagOrder) -> SortKey<Model> {
    let (name, expr, value): (&'static str, Expr, fn(&Model) -> KeyValue) = match order.field {
        TagOrderField::DisplayOrder => (
            "DISPLAY_ORDER",
            Column::DisplayOrder.into_simple_expr(),
            |m| KeyValue::Int(i64::from(m.display_order)),
        ),
        TagOrderField::Name => ("NAME", Column::Name.into_simple_expr(), |m| {
            KeyValue::Text(m.name.clone())
        }),
        TagOrderField::CreatedAt => ("CREATED_AT", Column::CreatedAt.into_simple_expr(), |m| {
            KeyValue::Int(m.created_at)
        }),
    };
    SortKey {
        name,
        expr,
        direction: order.direction,
        value,
    }
}

/// The total order of `orders` (default: display order), ties broken by id.
pub fn ordering(orders: &[TagOrder]) -> Ordering<Model> {
    let by_display_order = TagOrder {
        field: TagOrderField::DisplayOrder,
        direction: Direction::Asc,
    };
    Ordering::dedup(
        orders.iter().map(sort_key),
        sort_key(&by_display_order),
        Column::Id.into_simple_expr(),
        |m| m.id,
    )
}

fn filtered(tenant: TenantId, filter: &TagFilter) -> Result<Select<Tag>> {
    let mut failures = Vec::new();
    let mut cond = Condition::all();
    if let Some(search) = &filter.search {
        check_search("filter.search", search, &mut failures);
        cond = cond.add(name_contains(Column::Name.into_simple_expr(), search));
    }
    if let Some(name) = &filter.name {
        cond = cond.add(Column::Name.eq(name.clone()));
    }
    if let Some(id) = &filter.business_id
        && let Some(id) = collect_id("filter.businessId", id, &mut failures)
    {
        cond = cond.add(Column::BusinessId.eq(id));
    }
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    Ok(scoped::<Tag>(tenant).filter(cond))
}

/// One page of the tenant's tags.
pub async fn page(
    db: &DatabaseConnection,
    tenant: TenantId,
    query: &TagQuery,
    args: &PageArgs,
) -> Result<Page<Model>> {
    paging::fetch_page(
        db,
        filtered(tenant, &query.filter)?,
        &ordering(&query.order),
        args,
    )
    .await
}

/// How many of the tenant's tags match `filter`.
pub async fn count(db: &DatabaseConnection, tenant: TenantId, filter: &TagFilter) -> Result<i64> {
    Ok(filtered(tenant, filter)?.count(db).await? as i64)
}

/// The same page of tags under each of `businesses`, in one statement (and their totals in
/// one more, when `with_totals`).
pub async fn pages_by_business(
    db: &DatabaseConnection,
    tenant: TenantId,
    businesses: &[Uuid],
    query: &TagQuery,
    args: &PageArgs,
    with_totals: bool,
) -> Result<HashMap<Uuid, Page<Model>>> {
    paging::fetch_pages_by_parent(
        db,
        filtered(tenant, &query.filter)?,
        Column::BusinessId.into_simple_expr(),
        businesses,
        &ordering(&query.order),
        args,
        with_totals,
    )
    .await
}
