//! Tags: labels of a business that contacts carry (seed 002).
use std::collections::HashMap;

use entity::contact_tag;
use entity::prelude::{Business, ContactTag, Tag};
use entity::tag::{Column, Model};
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, IntoSimpleExpr, PaginatorTrait, QueryFilter, Select,
};
use uuid::Uuid;

use crate::contacts::rules::{Checker, MAX_SHORT, WriteSettings};
use crate::db::begin_write;
use crate::error::{Error, FieldFailure, Result};
use crate::filter::{check_search, collect_id, folded_contains};
use crate::paging::{self, Direction, KeyValue, Ordering, Page, PageArgs, SortKey};
use crate::tenancy::{TenantId, find_by_ids, scoped};
use crate::time::{next_updated_at, now_millis};

/// Which tags to return; every field given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TagFilter {
    /// Case-insensitive substring of the name (at most 255 characters).
    pub search: Option<String>,
    /// Exact name.
    pub name: Option<String>,
    /// Tags of this business (a UUID's text; checked when the filter is built).
    pub business_id: Option<String>,
}

/// A field tags can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagOrderField {
    /// The tag's display order.
    DisplayOrder,
    /// Name (byte order).
    Name,
    /// When the tag was created.
    CreatedAt,
}

/// One sort key of a tag list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
        text: order.field == TagOrderField::Name,
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
        cond = cond.add(folded_contains(
            Column::NameFolded.into_simple_expr(),
            search,
        ));
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
        <Column as sea_orm::Iterable>::iter(),
        Column::BusinessId.into_simple_expr(),
        businesses,
        &ordering(&query.order),
        args,
        with_totals,
        |row| sea_orm::FromQueryResult::from_query_result(row, ""),
    )
    .await
}

/// Changes to a tag: only the fields present change.
#[derive(Clone, Debug, Default)]
pub struct TagPatch {
    /// New name, unique within the tag's business (at most 255 characters).
    pub name: Option<String>,
    /// New display order.
    pub display_order: Option<i32>,
}

/// A name for a tag of `business`: valid, and not taken by another of its tags.
async fn check_name(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    business: Uuid,
    except: Option<Uuid>,
    field: &str,
    name: &str,
) -> Result<String> {
    let mut check = Checker::new("", WriteSettings::default());
    let name = check.text(field, name, MAX_SHORT);
    let Some(name) = name else {
        let mut failures = check.failures;
        if failures.is_empty() {
            failures.push(FieldFailure::new(field, "must not be empty"));
        }
        return Err(Error::Validation(failures));
    };
    let taken = scoped::<Tag>(tenant)
        .filter(Column::BusinessId.eq(business))
        .filter(Column::Name.eq(name.clone()))
        .one(txn)
        .await?;
    if taken.is_some_and(|t| Some(t.id) != except) {
        return Err(Error::invalid(
            field,
            "a tag of this name exists in the business already",
        ));
    }
    Ok(name)
}

/// Creates a tag in a business; without a display order it goes last. Failing fields are
/// named as in its input (`name`, `businessId`).
pub async fn create(
    db: &DatabaseConnection,
    tenant: TenantId,
    business: Uuid,
    name: &str,
    display_order: Option<i32>,
) -> Result<Model> {
    let (txn, _lock) = begin_write(db).await?;
    if find_by_ids::<Business>(&txn, tenant, &[business])
        .await?
        .is_empty()
    {
        return Err(Error::invalid("businessId", "no such business"));
    }
    let name = check_name(&txn, tenant, business, None, "name", name).await?;
    let display_order = match display_order {
        Some(order) => order,
        None => {
            scoped::<Tag>(tenant)
                .filter(Column::BusinessId.eq(business))
                .all(&txn)
                .await?
                .iter()
                .map(|t| t.display_order)
                .max()
                .unwrap_or(0)
                + 1
        }
    };
    let now = now_millis();
    let tag = Model {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        business_id: business,
        name_folded: entity::fold(&name),
        name,
        display_order,
        created_at: now,
        updated_at: now,
    };
    tag.clone().into_active_model().insert(&txn).await?;
    txn.commit().await?;
    Ok(tag)
}

/// Renames or reorders a tag; failing fields are named relative to the patch.
pub async fn update(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    patch: &TagPatch,
) -> Result<Model> {
    let (txn, _lock) = begin_write(db).await?;
    let current = find_by_ids::<Tag>(&txn, tenant, &[id])
        .await?
        .remove(&id)
        .ok_or_else(|| Error::NotFound("Tag".into()))?;
    let mut updated = current.clone();
    if let Some(name) = &patch.name {
        updated.name =
            check_name(&txn, tenant, current.business_id, Some(id), "name", name).await?;
        updated.name_folded = entity::fold(&updated.name);
    }
    if let Some(order) = patch.display_order {
        updated.display_order = order;
    }
    if updated == current {
        return Ok(current);
    }
    updated.updated_at = next_updated_at(current.updated_at);
    updated
        .clone()
        .into_active_model()
        .reset_all()
        .update(&txn)
        .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes a tag and its links to contacts.
pub async fn delete(db: &DatabaseConnection, tenant: TenantId, id: Uuid) -> Result<Uuid> {
    let (txn, _lock) = begin_write(db).await?;
    if find_by_ids::<Tag>(&txn, tenant, &[id]).await?.is_empty() {
        return Err(Error::NotFound("Tag".into()));
    }
    ContactTag::delete_many()
        .filter(contact_tag::Column::TenantId.eq(tenant.0))
        .filter(contact_tag::Column::TagId.eq(id))
        .exec(&txn)
        .await?;
    Tag::delete_many()
        .filter(Column::TenantId.eq(tenant.0))
        .filter(Column::Id.eq(id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(id)
}
