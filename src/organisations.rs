//! Accounts and businesses have the same shape (a name, an external reference, timestamps,
//! and contacts that point to them), so they share one implementation of their lists,
//! filters, orders and writes here, generic over [`Organisation`]; `accounts` and
//! `businesses` say what differs.
use entity::prelude::{Contact, ContactTag, Tag};
use entity::{contact, contact_tag, tag};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, IntoSimpleExpr,
    PaginatorTrait, QueryFilter, Select,
};
use uuid::Uuid;

use crate::change::Change;
use crate::contacts::rules::{Checker, MAX_SHORT, WriteSettings};
use crate::db::begin_write;
use crate::error::{Error, FieldFailure, Result, field_path};
use crate::filter::{DateTimeFilter, check_search, folded_contains};
use crate::paging::{self, Direction, KeyValue, Ordering, Page, PageArgs, SortKey};
use crate::tenancy::{TenantEntity, TenantId, find_by_ids, scoped};
use crate::time::{next_updated_at, now_millis};

/// The columns of an organisation table.
pub struct Columns<C> {
    /// `name`.
    pub name: C,
    /// `name_folded`: the name case-folded, for search.
    pub name_folded: C,
    /// `external_ref`.
    pub external_ref: C,
    /// `created_at`.
    pub created_at: C,
    /// `updated_at`.
    pub updated_at: C,
}

/// The fields of an organisation row, to read or change in place.
pub struct Fields<'a> {
    /// Name.
    pub name: &'a mut String,
    /// Name, case-folded (kept equal to `entity::fold(name)`).
    pub name_folded: &'a mut String,
    /// External reference.
    pub external_ref: &'a mut Option<String>,
    /// Creation time (ms).
    pub created_at: &'a mut i64,
    /// Last change (ms).
    pub updated_at: &'a mut i64,
}

/// An entity with the account/business shape.
pub trait Organisation: TenantEntity<Model: Sync> {
    /// What it is called in messages ("Account").
    const LABEL: &'static str;
    /// Whether it owns tags, which are deleted with it.
    const OWNS_TAGS: bool;
    /// The contacts column that points to it.
    fn contact_column() -> contact::Column;
    /// Its columns.
    fn columns() -> Columns<Self::Column>;
    /// A new row.
    fn new_model(
        tenant: TenantId,
        name: String,
        external_ref: Option<String>,
        now: i64,
    ) -> Self::Model;
    /// The fields of a row.
    fn fields(model: &mut Self::Model) -> Fields<'_>;
    /// Inserts (`insert`) or updates the row, every column set.
    fn save(
        txn: &DatabaseTransaction,
        model: Self::Model,
        insert: bool,
    ) -> impl Future<Output = Result<()>> + Send;
}

fn read<E: Organisation>(model: &E::Model) -> (String, Option<String>, i64, i64) {
    let mut copy = model.clone();
    let f = E::fields(&mut copy);
    (
        f.name.clone(),
        f.external_ref.clone(),
        *f.created_at,
        *f.updated_at,
    )
}

/// Which accounts or businesses to return; every field given must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct OrganisationFilter {
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

/// A field accounts and businesses can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrganisationOrderField {
    /// Name (byte order).
    Name,
    /// When it was created.
    CreatedAt,
    /// When it was last updated.
    UpdatedAt,
}

/// One sort key of an account or business list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OrganisationOrder {
    /// What to sort by.
    pub field: OrganisationOrderField,
    /// Which way.
    pub direction: Direction,
}

/// An account or business list request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct OrganisationQuery {
    /// Which rows.
    pub filter: OrganisationFilter,
    /// In which order (empty: by name).
    pub order: Vec<OrganisationOrder>,
}

fn sort_key<E: Organisation>(order: &OrganisationOrder) -> SortKey<E::Model> {
    let columns = E::columns();
    let (name, column) = match order.field {
        OrganisationOrderField::Name => ("NAME", columns.name),
        OrganisationOrderField::CreatedAt => ("CREATED_AT", columns.created_at),
        OrganisationOrderField::UpdatedAt => ("UPDATED_AT", columns.updated_at),
    };
    let value: fn(&E::Model) -> KeyValue = match order.field {
        OrganisationOrderField::Name => |m| KeyValue::Text(read::<E>(m).0),
        OrganisationOrderField::CreatedAt => |m| KeyValue::Int(read::<E>(m).2),
        OrganisationOrderField::UpdatedAt => |m| KeyValue::Int(read::<E>(m).3),
    };
    SortKey {
        name,
        expr: column.into_simple_expr(),
        direction: order.direction,
        value,
        text: order.field == OrganisationOrderField::Name,
    }
}

/// The total order of `orders` (default: by name), ties broken by id.
pub fn ordering<E: Organisation>(orders: &[OrganisationOrder]) -> Ordering<E::Model> {
    let by_name = OrganisationOrder {
        field: OrganisationOrderField::Name,
        direction: Direction::Asc,
    };
    Ordering::dedup(
        orders.iter().map(sort_key::<E>),
        sort_key::<E>(&by_name),
        E::id_column().into_simple_expr(),
        E::id_of,
    )
}

fn filtered<E: Organisation>(tenant: TenantId, filter: &OrganisationFilter) -> Result<Select<E>> {
    let columns = E::columns();
    let mut failures = Vec::new();
    let mut cond = Condition::all();
    if let Some(search) = &filter.search {
        check_search("filter.search", search, &mut failures);
        cond = cond.add(folded_contains(
            columns.name_folded.into_simple_expr(),
            search,
        ));
    }
    if let Some(name) = &filter.name {
        cond = cond.add(columns.name.eq(name.clone()));
    }
    if let Some(external_ref) = &filter.external_ref {
        cond = cond.add(columns.external_ref.eq(external_ref.clone()));
    }
    if let Some(range) = &filter.created_at {
        cond = cond.add(range.condition(columns.created_at.into_simple_expr()));
    }
    if let Some(range) = &filter.updated_at {
        cond = cond.add(range.condition(columns.updated_at.into_simple_expr()));
    }
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    Ok(scoped::<E>(tenant).filter(cond))
}

/// One page of the tenant's accounts or businesses.
pub async fn page<E: Organisation>(
    db: &DatabaseConnection,
    tenant: TenantId,
    query: &OrganisationQuery,
    args: &PageArgs,
) -> Result<Page<E::Model>> {
    let select = filtered::<E>(tenant, &query.filter)?;
    paging::fetch_page(db, select, &ordering::<E>(&query.order), args).await
}

/// How many of the tenant's accounts or businesses match `filter`.
pub async fn count<E: Organisation>(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &OrganisationFilter,
) -> Result<i64> {
    Ok(filtered::<E>(tenant, filter)?.count(db).await? as i64)
}

/// Changes to an account or business: only the fields present change.
#[derive(Clone, Debug, Default)]
pub struct OrganisationPatch {
    /// New name (not empty; at most 255 characters).
    pub name: Option<String>,
    /// External reference; `null` clears it.
    pub external_ref: Change<String>,
}

/// Validated name and external reference, or every failure under `path`.
fn check(
    path: &str,
    name: Option<&str>,
    external_ref: &Change<String>,
    current: (Option<String>, Option<String>),
) -> Result<(String, Option<String>)> {
    let mut c = Checker::new(path, WriteSettings::default());
    let name = match name {
        Some(n) => c.text("name", n, MAX_SHORT),
        None => current.0,
    };
    let external_ref = match external_ref {
        Change::Keep => current.1,
        Change::Clear => None,
        Change::Set(v) => c.text("externalRef", v, MAX_SHORT),
    };
    let mut failures = c.failures;
    if name.is_none() && failures.iter().all(|f| !f.field.ends_with(".name")) {
        failures.push(FieldFailure::new(
            field_path(path, "name"),
            "must not be empty",
        ));
    }
    match (name, failures.is_empty()) {
        (Some(name), true) => Ok((name, external_ref)),
        _ => Err(Error::Validation(failures)),
    }
}

/// Creates an account or business; failing fields are named as in its input (`name`).
pub async fn create<E: Organisation>(
    db: &DatabaseConnection,
    tenant: TenantId,
    name: &str,
    external_ref: &Change<String>,
) -> Result<E::Model> {
    let (name, external_ref) = check("", Some(name), external_ref, (None, None))?;
    let (txn, _lock) = begin_write(db).await?;
    let model = E::new_model(tenant, name, external_ref, now_millis());
    E::save(&txn, model.clone(), true).await?;
    txn.commit().await?;
    Ok(model)
}

/// Changes an account or business; a patch that changes nothing writes nothing. Failing
/// fields are named relative to the patch.
pub async fn update<E: Organisation>(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    patch: &OrganisationPatch,
) -> Result<E::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let mut model = find_by_ids::<E>(&txn, tenant, &[id])
        .await?
        .remove(&id)
        .ok_or_else(|| Error::NotFound(E::LABEL.to_string()))?;
    let fields = E::fields(&mut model);
    let (name, external_ref) = check(
        "",
        patch.name.as_deref(),
        &patch.external_ref,
        (Some(fields.name.clone()), fields.external_ref.clone()),
    )?;
    if (&name, &external_ref) == (&*fields.name, &*fields.external_ref) {
        return Ok(model);
    }
    *fields.name_folded = entity::fold(&name);
    *fields.name = name;
    *fields.external_ref = external_ref;
    *fields.updated_at = next_updated_at(*fields.updated_at);
    E::save(&txn, model.clone(), false).await?;
    txn.commit().await?;
    Ok(model)
}

/// Deletes an account or business that no contact points to (otherwise `CONFLICT`, saying
/// how many do); a business's tags go with it.
pub async fn delete<E: Organisation>(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<Uuid> {
    let (txn, _lock) = begin_write(db).await?;
    if find_by_ids::<E>(&txn, tenant, &[id]).await?.is_empty() {
        return Err(Error::NotFound(E::LABEL.to_string()));
    }
    let contacts = Contact::find()
        .filter(contact::Column::TenantId.eq(tenant.0))
        .filter(E::contact_column().eq(id))
        .count(&txn)
        .await?;
    if contacts > 0 {
        return Err(Error::Conflict(format!(
            "{} still has {contacts} contact{}; move or delete them first",
            E::LABEL,
            if contacts == 1 { "" } else { "s" }
        )));
    }
    if E::OWNS_TAGS {
        let tags: Vec<Uuid> = scoped::<Tag>(tenant)
            .filter(tag::Column::BusinessId.eq(id))
            .all(&txn)
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect();
        ContactTag::delete_many()
            .filter(contact_tag::Column::TenantId.eq(tenant.0))
            .filter(contact_tag::Column::TagId.is_in(tags.iter().copied()))
            .exec(&txn)
            .await?;
        Tag::delete_many()
            .filter(tag::Column::TenantId.eq(tenant.0))
            .filter(tag::Column::BusinessId.eq(id))
            .exec(&txn)
            .await?;
    }
    E::delete_many()
        .filter(E::tenant_column().eq(tenant.0))
        .filter(E::id_column().eq(id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(id)
}

/// Implements [`Organisation`] for an entity module with the account/business columns.
macro_rules! organisation {
    ($module:ident, $label:literal, owns_tags: $owns_tags:literal, contacts_by: $column:ident) => {
        impl $crate::organisations::Organisation for entity::$module::Entity {
            const LABEL: &'static str = $label;
            const OWNS_TAGS: bool = $owns_tags;

            fn contact_column() -> entity::contact::Column {
                entity::contact::Column::$column
            }

            fn columns() -> $crate::organisations::Columns<entity::$module::Column> {
                $crate::organisations::Columns {
                    name: entity::$module::Column::Name,
                    name_folded: entity::$module::Column::NameFolded,
                    external_ref: entity::$module::Column::ExternalRef,
                    created_at: entity::$module::Column::CreatedAt,
                    updated_at: entity::$module::Column::UpdatedAt,
                }
            }

            fn new_model(
                tenant: $crate::tenancy::TenantId,
                name: String,
                external_ref: Option<String>,
                now: i64,
            ) -> entity::$module::Model {
                entity::$module::Model {
                    id: uuid::Uuid::now_v7(),
                    tenant_id: tenant.0,
                    name_folded: entity::fold(&name),
                    name,
                    external_ref,
                    created_at: now,
                    updated_at: now,
                }
            }

            fn fields(m: &mut entity::$module::Model) -> $crate::organisations::Fields<'_> {
                $crate::organisations::Fields {
                    name: &mut m.name,
                    name_folded: &mut m.name_folded,
                    external_ref: &mut m.external_ref,
                    created_at: &mut m.created_at,
                    updated_at: &mut m.updated_at,
                }
            }

            async fn save(
                txn: &sea_orm::DatabaseTransaction,
                model: entity::$module::Model,
                insert: bool,
            ) -> $crate::error::Result<()> {
                use sea_orm::{ActiveModelTrait, IntoActiveModel};
                let active = model.into_active_model().reset_all();
                if insert {
                    active.insert(txn).await?;
                } else {
                    active.update(txn).await?;
                }
                Ok(())
            }
        }
    };
}

// Accounts: the customer companies contacts belong to (seed 000's accounts, seed 003's
// clients, seed 004's organisations); deleting one that still has contacts is refused.
organisation!(account, "Account", owns_tags: false, contacts_by: AccountId);

// Businesses: the organisations of a tenant that own contacts and tags (seed 002); deleting
// one deletes its tags, and is refused while it still has contacts.
organisation!(business, "Business", owns_tags: true, contacts_by: BusinessId);
