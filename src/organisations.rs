//! Writes shared by accounts and businesses, which have the same shape: a name, an external
//! reference, and contacts that point to them.
use async_graphql::{ID, InputObject, MaybeUndefined};
use entity::prelude::{Contact, ContactTag, Tag};
use entity::{contact, contact_tag, tag};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter,
};
use uuid::Uuid;

use crate::contacts::begin_write;
use crate::contacts::rules::{Checker, MAX_SHORT, WriteSettings};
use crate::error::{Error, Result};
use crate::filter::parse_id;
use crate::scope::{TenantEntity, TenantId, find_by_ids};
use crate::time::now_millis;

/// Changes to an account or business: only the fields present change.
#[derive(InputObject, Clone, Debug, Default)]
pub struct OrganisationPatch {
    /// New name (required to be non-empty; at most 255 characters).
    pub name: Option<String>,
    /// External reference; `null` clears it.
    pub external_ref: MaybeUndefined<String>,
}

/// An entity with the account/business shape.
pub trait Organisation: TenantEntity
where
    Self::Model: IntoActiveModel<Self::ActiveModel> + Clone + PartialEq,
    Self::ActiveModel: ActiveModelBehavior + Send,
{
    /// What it is called in messages ("Account").
    const LABEL: &'static str;
    /// Whether it owns tags, which are deleted with it.
    const OWNS_TAGS: bool;
    /// The contacts column that points to it.
    fn contact_column() -> contact::Column;
    /// A new row.
    fn new_model(
        tenant: TenantId,
        name: String,
        external_ref: Option<String>,
        now: i64,
    ) -> Self::Model;
    /// Name and external reference of a row, to change in place.
    fn fields(model: &mut Self::Model) -> (&mut String, &mut Option<String>, &mut i64);
}

/// Validated name and external reference, or every failure under `path`.
fn check(
    path: &str,
    name: Option<&str>,
    external_ref: &MaybeUndefined<String>,
    current: (Option<String>, Option<String>),
) -> Result<(String, Option<String>)> {
    let mut c = Checker::new(path, WriteSettings::default());
    let name = match name {
        Some(n) => c.text("name", n, MAX_SHORT),
        None => current.0,
    };
    let external_ref = match external_ref {
        MaybeUndefined::Undefined => current.1,
        MaybeUndefined::Null => None,
        MaybeUndefined::Value(v) => c.text("externalRef", v, MAX_SHORT),
    };
    let mut failures = c.failures;
    if name.is_none() && failures.iter().all(|f| !f.field.ends_with(".name")) {
        failures.push(crate::error::FieldFailure::new(
            format!("{path}.name"),
            "must not be empty",
        ));
    }
    match (name, failures.is_empty()) {
        (Some(name), true) => Ok((name, external_ref)),
        _ => Err(Error::Validation(failures)),
    }
}

/// Creates an account or business.
pub async fn create<E: Organisation>(
    db: &DatabaseConnection,
    tenant: TenantId,
    name: &str,
    external_ref: &MaybeUndefined<String>,
) -> Result<E::Model>
where
    E::Model: IntoActiveModel<E::ActiveModel> + Clone + PartialEq,
    E::ActiveModel: ActiveModelBehavior + Send,
{
    let (name, external_ref) = check("input", Some(name), external_ref, (None, None))?;
    let (txn, _lock) = begin_write(db).await?;
    let model = E::new_model(tenant, name, external_ref, now_millis());
    model.clone().into_active_model().insert(&txn).await?;
    txn.commit().await?;
    Ok(model)
}

/// Changes an account or business.
pub async fn update<E: Organisation>(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: &ID,
    patch: &OrganisationPatch,
) -> Result<E::Model>
where
    E::Model: IntoActiveModel<E::ActiveModel> + Clone + PartialEq,
    E::ActiveModel: ActiveModelBehavior + Send,
{
    let id = parse_id("input.id", id)?;
    let (txn, _lock) = begin_write(db).await?;
    let current = find_by_ids::<E>(&txn, tenant, &[id])
        .await?
        .remove(&id)
        .ok_or_else(|| Error::NotFound(E::LABEL.to_string()))?;
    let mut updated = current.clone();
    let (name, external_ref, updated_at) = E::fields(&mut updated);
    let (new_name, new_ref) = check(
        "input.patch",
        patch.name.as_deref(),
        &patch.external_ref,
        (Some(name.clone()), external_ref.clone()),
    )?;
    if (&new_name, &new_ref) == (name, external_ref) {
        return Ok(current);
    }
    *name = new_name;
    *external_ref = new_ref;
    *updated_at = now_millis().max(*updated_at + 1);
    updated
        .clone()
        .into_active_model()
        .reset_all()
        .update(&txn)
        .await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes an account or business that no contact points to; otherwise `CONFLICT`.
pub async fn delete<E: Organisation>(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: &ID,
) -> Result<Uuid>
where
    E::Model: IntoActiveModel<E::ActiveModel> + Clone + PartialEq,
    E::ActiveModel: ActiveModelBehavior + Send,
{
    let id = parse_id("input.id", id)?;
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
        let tags: Vec<Uuid> = Tag::find()
            .filter(tag::Column::TenantId.eq(tenant.0))
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

impl Organisation for entity::prelude::Account {
    const LABEL: &'static str = "Account";
    const OWNS_TAGS: bool = false;

    fn contact_column() -> contact::Column {
        contact::Column::AccountId
    }

    fn new_model(
        tenant: TenantId,
        name: String,
        external_ref: Option<String>,
        now: i64,
    ) -> Self::Model {
        entity::account::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.0,
            name,
            external_ref,
            created_at: now,
            updated_at: now,
        }
    }

    fn fields(m: &mut Self::Model) -> (&mut String, &mut Option<String>, &mut i64) {
        (&mut m.name, &mut m.external_ref, &mut m.updated_at)
    }
}

impl Organisation for entity::prelude::Business {
    const LABEL: &'static str = "Business";
    const OWNS_TAGS: bool = true;

    fn contact_column() -> contact::Column {
        contact::Column::BusinessId
    }

    fn new_model(
        tenant: TenantId,
        name: String,
        external_ref: Option<String>,
        now: i64,
    ) -> Self::Model {
        entity::business::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.0,
            name,
            external_ref,
            created_at: now,
            updated_at: now,
        }
    }

    fn fields(m: &mut Self::Model) -> (&mut String, &mut Option<String>, &mut i64) {
        (&mut m.name, &mut m.external_ref, &mut m.updated_at)
    }
}
