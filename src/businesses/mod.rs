//! Businesses: the organisations of a tenant that own contacts and tags (seed 002).
use async_graphql::{Enum, InputObject};
use entity::business::{Column, Model};
use entity::prelude::Business;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ColumnTrait, DatabaseConnection, IntoSimpleExpr, PaginatorTrait, QueryFilter, Select,
};

use crate::error::{Error, Result};
use crate::filter::{DateTimeFilter, check_search, name_contains};
use crate::paging::{self, Direction, KeyValue, Ordering, Page, PageArgs, SortKey};
use crate::scope::{TenantId, scoped};

/// Which businesses to return; every field given must match.
#[derive(InputObject, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BusinessFilter {
    /// Case-insensitive substring of the name (at most 255 characters).
    pub search: Option<String>,
    /// Exact name.
    pub name: Option<String>,
    /// Exact external reference.
    pub external_ref: Option<String>,
    /// Creation time range.
    pub created_at: Option<DateTimeFilter>,
    /// Last update time range.
    pub updated_at: Option<DateTimeFilter>,
}

/// A field businesses can be sorted by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BusinessOrderField {
    /// Name (byte order).
    Name,
    /// When the business was created.
    CreatedAt,
    /// When the business was last updated.
    UpdatedAt,
}

/// One sort key of an business list.
#[derive(InputObject, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BusinessOrder {
    /// What to sort by.
    pub field: BusinessOrderField,
    /// Which way.
    pub direction: Direction,
}

/// An business list request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BusinessQuery {
    /// Which businesses.
    pub filter: BusinessFilter,
    /// In which order (empty: by name).
    pub order: Vec<BusinessOrder>,
}

fn sort_key(order: &BusinessOrder) -> SortKey<Model> {
    let (name, expr, value): (&'static str, Expr, fn(&Model) -> KeyValue) = match order.field {
        BusinessOrderField::Name => ("NAME", Column::Name.into_simple_expr(), |m| {
            KeyValue::Text(m.name.clone())
        }),
        BusinessOrderField::CreatedAt => {
            ("CREATED_AT", Column::CreatedAt.into_simple_expr(), |m| {
                KeyValue::Int(m.created_at)
            })
        }
        BusinessOrderField::UpdatedAt => {
            ("UPDATED_AT", Column::UpdatedAt.into_simple_expr(), |m| {
                KeyValue::Int(m.updated_at)
            })
        }
    };
    SortKey {
        name,
        expr,
        direction: order.direction,
        value,
    }
}

/// The total order of `orders` (default: by name), ties broken by id.
pub fn ordering(orders: &[BusinessOrder]) -> Ordering<Model> {
    let by_name = BusinessOrder {
        field: BusinessOrderField::Name,
        direction: Direction::Asc,
    };
    Ordering::dedup(
        orders.iter().map(sort_key),
        sort_key(&by_name),
        Column::Id.into_simple_expr(),
        |m| m.id,
    )
}

fn filtered(tenant: TenantId, filter: &BusinessFilter) -> Result<Select<Business>> {
    let mut failures = Vec::new();
    let mut cond = Condition::all();
    if let Some(search) = &filter.search {
        check_search("filter.search", search, &mut failures);
        cond = cond.add(name_contains(Column::Name.into_simple_expr(), search));
    }
    if let Some(name) = &filter.name {
        cond = cond.add(Column::Name.eq(name.clone()));
    }
    if let Some(external_ref) = &filter.external_ref {
        cond = cond.add(Column::ExternalRef.eq(external_ref.clone()));
    }
    if let Some(range) = &filter.created_at {
        cond = cond.add(range.condition(Column::CreatedAt.into_simple_expr()));
    }
    if let Some(range) = &filter.updated_at {
        cond = cond.add(range.condition(Column::UpdatedAt.into_simple_expr()));
    }
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    Ok(scoped::<Business>(tenant).filter(cond))
}

/// One page of the tenant's businesses.
pub async fn page(
    db: &DatabaseConnection,
    tenant: TenantId,
    query: &BusinessQuery,
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

/// How many of the tenant's businesses match `filter`.
pub async fn count(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &BusinessFilter,
) -> Result<i64> {
    Ok(filtered(tenant, filter)?.count(db).await? as i64)
}
