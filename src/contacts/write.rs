//! Contact writes: create, patch (seed 001), delete, tag and resolve. Each runs in one
//! transaction; input is validated in full before anything is written.
use entity::prelude::{
    Account, Business, Contact, ContactAssignee, ContactSource, ContactTag, Tag,
};
use entity::{contact, contact_assignee, contact_source, contact_tag, tag, write_back};
use sea_orm::sea_query::{Expr, IntoIden, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, Iterable, JoinType, ModelTrait, QueryFilter, QuerySelect, QueryTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::ResolutionStatus;
use super::patch::{ContactPatch, Text, patch_text};
use super::rules::{Checker, MAX_SHORT, WriteSettings};
use crate::change::Change;
use crate::db::begin_write;
use crate::error::{Error, FieldFailure, Result, field_path};
use crate::events;
use crate::tenancy::{TenantId, find_by_ids, scoped};
use crate::time::{Timestamp, next_updated_at, now_millis};
use crate::write_back::outbox::{self, Targets};

/// Checks that the account and business a contact points to exist in the tenant; those it
/// pointed to `before` a change are not read again (the foreign keys keep them valid).
async fn check_parents(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    before: Option<&contact::Model>,
    contact: &contact::Model,
    path: &str,
    failures: &mut Vec<FieldFailure>,
) -> Result<()> {
    let kept = |id: Option<Uuid>, old: fn(&contact::Model) -> Option<Uuid>| {
        before.is_some_and(|b| old(b) == id)
    };
    if let Some(id) = contact.account_id
        && !kept(contact.account_id, |b| b.account_id)
        && find_by_ids::<Account>(txn, tenant, &[id]).await?.is_empty()
    {
        failures.push(FieldFailure::new(
            field_path(path, "accountId"),
            "no such account",
        ));
    }
    if let Some(id) = contact.business_id
        && !kept(contact.business_id, |b| b.business_id)
        && find_by_ids::<Business>(txn, tenant, &[id])
            .await?
            .is_empty()
    {
        failures.push(FieldFailure::new(
            field_path(path, "businessId"),
            "no such business",
        ));
    }
    Ok(())
}

/// The contact `id` of the tenant, locked for update (PostgreSQL) inside `txn`.
async fn locked_contact(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
) -> Result<contact::Model> {
    scoped::<Contact>(tenant)
        .filter(contact::Column::Id.eq(id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| Error::NotFound("Contact".to_string()))
}

/// The contact `id` of the tenant, locked as [`locked_contact`], with its writable sources
/// ([`Targets`]): one statement (the contact joined with its records) when the tenant has
/// writable sources, no more than [`locked_contact`] when it has none.
async fn locked_contact_and_targets(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
) -> Result<(contact::Model, Targets)> {
    let writable = crate::write_back::writable::writable_sources(txn, tenant).await?;
    if writable.is_empty() {
        return Ok((locked_contact(txn, tenant, id).await?, Targets::default()));
    }
    let records = ContactSource::belongs_to(Contact)
        .from(contact_source::Column::ContactId)
        .to(contact::Column::Id)
        .into();
    let mut select = scoped::<Contact>(tenant)
        .filter(contact::Column::Id.eq(id))
        .join_rev(JoinType::LeftJoin, records)
        .select_also(ContactSource);
    // Only the contact's row is locked: PostgreSQL refuses to lock the nullable side.
    QueryTrait::query(&mut select).lock_with_tables(LockType::Update, [Contact.into_iden()]);
    let rows = select.all(txn).await?;
    let contact = rows
        .first()
        .map(|(contact, _)| contact.clone())
        .ok_or_else(|| Error::NotFound("Contact".to_string()))?;
    let records = rows
        .into_iter()
        .filter_map(|(_, record)| record)
        .filter(|record| record.tenant_id == tenant.0)
        .collect();
    Ok((contact, Targets::of(&writable, records)))
}

/// The columns of `updated` that differ from `current`, as an active model with only those
/// set. The key columns are never written: an UPDATE that sets the primary key makes SQLite
/// check every table that references contacts, which cost most of an update.
fn changed_columns(current: &contact::Model, updated: &contact::Model) -> contact::ActiveModel {
    let mut active = <contact::ActiveModel as ActiveModelTrait>::default();
    for column in contact::Column::iter() {
        if matches!(column, contact::Column::Id | contact::Column::TenantId) {
            continue;
        }
        let value = updated.get(column);
        if current.get(column) != value {
            active.set(column, value);
        }
    }
    active
}

/// Writes what changed from `current` to `updated` if the stored row still has `current`'s
/// `updatedAt` (compare-and-set in the UPDATE's WHERE), and its assignee rows.
pub(crate) async fn write_contact(
    txn: &DatabaseTransaction,
    current: &contact::Model,
    updated: contact::Model,
) -> Result<contact::Model> {
    write_contact_queueing(txn, current, updated, Vec::new()).await
}

/// [`write_contact`], queueing `queued` in the outbox in the same round trip.
async fn write_contact_queueing(
    txn: &DatabaseTransaction,
    current: &contact::Model,
    updated: contact::Model,
    queued: Vec<write_back::Model>,
) -> Result<contact::Model> {
    let update = Contact::update_many()
        .set(changed_columns(current, &updated))
        .filter(contact::Column::Id.eq(current.id))
        .filter(contact::Column::TenantId.eq(current.tenant_id))
        .filter(contact::Column::UpdatedAt.eq(current.updated_at));
    // The change's event, its webhook deliveries and its queued write-backs ride with the
    // UPDATE.
    let event = events::updated(current, &updated);
    let deliveries =
        crate::webhooks::fan_out::deliveries(txn, std::slice::from_ref(&event)).await?;
    let mut inserts = vec![(events::insert_statement(vec![event]), 1)];
    if !deliveries.is_empty() {
        let rows = deliveries.len() as u64;
        inserts.push((crate::webhooks::fan_out::insert_statement(deliveries), rows));
    }
    if !queued.is_empty() {
        let rows = queued.len() as u64;
        inserts.push((outbox::insert_statement(queued), rows));
    }
    let changed = crate::db::insert_then_update(txn, inserts, update.into_query()).await?;
    events::feed::written();
    if changed != 1 {
        return Err(Error::PreconditionFailed(
            "the contact changed while it was being updated; read it again and retry".into(),
        ));
    }
    if updated.assignees != current.assignees {
        write_assignees(txn, &updated, true).await?;
    }
    if super::identity_keys::keys_differ(current, &updated) {
        super::identity_keys::replace_keys(txn, &[&updated]).await?;
    }
    Ok(updated)
}

pub(crate) async fn write_assignees(
    txn: &DatabaseTransaction,
    contact: &contact::Model,
    replace: bool,
) -> Result<()> {
    if replace {
        ContactAssignee::delete_many()
            .filter(contact_assignee::Column::TenantId.eq(contact.tenant_id))
            .filter(contact_assignee::Column::ContactId.eq(contact.id))
            .exec(txn)
            .await?;
    }
    let rows: Vec<contact_assignee::ActiveModel> = contact
        .assignees
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .map(|a| {
            contact_assignee::Model {
                tenant_id: contact.tenant_id,
                contact_id: contact.id,
                assignee: a.to_string(),
            }
            .into_active_model()
        })
        .collect();
    if !rows.is_empty() {
        ContactAssignee::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Patches contact `id`. With `expected_updated_at`, the write happens only if the stored
/// `updatedAt` is exactly that (seed 003's 412); otherwise `PRECONDITION_FAILED`. A patch
/// that changes nothing writes nothing and keeps `updatedAt`. Failing fields are named
/// relative to the patch (`email`, `address.city`).
pub async fn update_contact(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    patch: &ContactPatch,
    expected_updated_at: Option<Timestamp>,
    settings: WriteSettings,
) -> Result<contact::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let (current, targets) = locked_contact_and_targets(&txn, tenant, id).await?;
    if let Some(expected) = expected_updated_at
        && expected.millis() != current.updated_at
    {
        return Err(Error::PreconditionFailed(format!(
            "the contact was updated at {} since the expected {}; read it again and retry",
            crate::time::format_millis(current.updated_at),
            crate::time::format_millis(expected.millis()),
        )));
    }
    let mut updated = current.clone();
    let mut failures = patch.apply(&mut updated, "", settings);
    check_parents(&txn, tenant, Some(&current), &updated, "", &mut failures).await?;
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    if updated == current {
        return Ok(current);
    }
    updated.updated_at = next_updated_at(current.updated_at);
    // Queued with the change, or neither happens (a value a source refuses fails both).
    let queued = outbox::plan_update(tenant, &targets, &current, &updated, now_millis())?;
    let updated = write_contact_queueing(&txn, &current, updated, queued).await?;
    txn.commit().await?;
    Ok(updated)
}

/// A new contact of `tenant` with every field empty, created and updated at `now`.
pub fn blank_contact(tenant: TenantId, now: i64) -> contact::Model {
    contact::Model {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        account_id: None,
        business_id: None,
        external_ref: None,
        resolution_status: ResolutionStatus::Unresolved.as_str().to_string(),
        first_name: None,
        last_name: None,
        email: None,
        secondary_emails: json!([]),
        phone: None,
        secondary_phones: json!([]),
        company_name: None,
        website: None,
        linkedin: None,
        role: None,
        description: None,
        notes: None,
        address_street: None,
        address_city: None,
        address_state: None,
        address_country: None,
        address_postal_code: None,
        timezone: None,
        source: None,
        lead_source: None,
        status: None,
        pipeline_id: None,
        pipeline_stage: None,
        message_status: None,
        owner: None,
        assignees: json!([]),
        created_by: None,
        dnd_email: false,
        dnd_sms: false,
        dnd_call: false,
        dnd_whatsapp: false,
        is_test_contact: false,
        last_message_at: None,
        created_at: now,
        updated_at: now,
        sort_name: String::new(),
        search_text: String::new(),
        archived_at: None,
    }
}

/// Creates a contact from `fields` (absent fields are empty). Failing fields are named
/// relative to `fields`.
pub async fn create_contact(
    db: &DatabaseConnection,
    tenant: TenantId,
    fields: &ContactPatch,
    settings: WriteSettings,
) -> Result<contact::Model> {
    let mut contact = blank_contact(tenant, now_millis());
    let (txn, _lock) = begin_write(db).await?;
    let mut failures = fields.apply(&mut contact, "", settings);
    check_parents(&txn, tenant, None, &contact, "", &mut failures).await?;
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    let created = contact.clone().into_active_model().insert(&txn).await?;
    write_assignees(&txn, &created, false).await?;
    super::identity_keys::insert_keys(&txn, [&created]).await?;
    let event = events::event(
        tenant,
        created.id,
        events::kind::CREATED,
        created.created_at,
    );
    events::record(&txn, vec![event]).await?;
    txn.commit().await?;
    Ok(created)
}

/// Deletes contacts `ids` of `tenant` with their tag links, assignees, keys and source
/// records.
pub(crate) async fn delete_rows(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<()> {
    let ids = || ids.iter().copied();
    ContactTag::delete_many()
        .filter(contact_tag::Column::TenantId.eq(tenant.0))
        .filter(contact_tag::Column::ContactId.is_in(ids()))
        .exec(txn)
        .await?;
    ContactAssignee::delete_many()
        .filter(contact_assignee::Column::TenantId.eq(tenant.0))
        .filter(contact_assignee::Column::ContactId.is_in(ids()))
        .exec(txn)
        .await?;
    ContactSource::delete_many()
        .filter(contact_source::Column::TenantId.eq(tenant.0))
        .filter(contact_source::Column::ContactId.is_in(ids()))
        .exec(txn)
        .await?;
    super::identity_keys::delete_keys(txn, tenant.0, &ids().collect::<Vec<_>>()).await?;
    Contact::delete_many()
        .filter(contact::Column::TenantId.eq(tenant.0))
        .filter(contact::Column::Id.is_in(ids()))
        .exec(txn)
        .await?;
    Ok(())
}

/// Deletes contact `id` (its tag links, assignees and source records go with it); returns
/// its id.
pub async fn delete_contact(db: &DatabaseConnection, tenant: TenantId, id: Uuid) -> Result<Uuid> {
    let (txn, _lock) = begin_write(db).await?;
    let contact = locked_contact(&txn, tenant, id).await?;
    // Before its source records go with it.
    let now = now_millis();
    crate::write_back::outbox::queue_delete(&txn, tenant, contact.id, now).await?;
    delete_rows(&txn, tenant, &[contact.id]).await?;
    events::record(
        &txn,
        vec![events::event(
            tenant,
            contact.id,
            events::kind::DELETED,
            now,
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(contact.id)
}

/// Brings an archived contact back into lists and counts (`NOT_FOUND` when the tenant has no
/// contact `id`; a live contact is returned as it is). Its vendor records stay marked deleted
/// at their sources, so the next FULL sync run does not archive it again; a record that
/// reappears upstream is restored by that run.
pub async fn restore_contact(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
) -> Result<contact::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let mut contact = locked_contact(&txn, tenant, id).await?;
    if contact.archived_at.is_some() {
        Contact::update_many()
            .col_expr(
                contact::Column::ArchivedAt,
                sea_orm::sea_query::Expr::val(Option::<i64>::None),
            )
            .filter(contact::Column::TenantId.eq(tenant.0))
            .filter(contact::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        contact.archived_at = None;
        let event = events::event(tenant, id, events::kind::RESTORED, now_millis());
        events::record(&txn, vec![event]).await?;
    }
    txn.commit().await?;
    Ok(contact)
}

/// Tags named by id or by name, as given to `addTagsToContact`/`removeTagsFromContact`.
#[derive(Clone, Debug, Default)]
pub struct TagRefs {
    /// Tag ids.
    pub tag_ids: Option<Vec<Uuid>>,
    /// Tag names, looked up in the contact's business.
    pub tag_names: Option<Vec<String>>,
}

/// Resolves `refs` to tags of the tenant; unknown ones are validation failures.
async fn resolve_tags(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    contact: &contact::Model,
    refs: &TagRefs,
) -> Result<Vec<tag::Model>> {
    let mut failures = Vec::new();
    let mut tags = Vec::new();
    let ids = refs.tag_ids.as_deref().unwrap_or_default();
    let found = if ids.is_empty() {
        Default::default()
    } else {
        find_by_ids::<Tag>(txn, tenant, ids).await?
    };
    for (i, id) in ids.iter().enumerate() {
        let field = format!("tagIds[{i}]");
        match found.get(id) {
            Some(t) if Some(t.business_id) == contact.business_id => tags.push(t.clone()),
            Some(_) => failures.push(FieldFailure::new(
                field,
                "the tag belongs to another business than the contact's",
            )),
            None => failures.push(FieldFailure::new(field, "no such tag")),
        }
    }
    for (i, name) in refs.tag_names.iter().flatten().enumerate() {
        let field = format!("tagNames[{i}]");
        let Some(business) = contact.business_id else {
            failures.push(FieldFailure::new(
                field,
                "the contact has no business to look tag names up in; give tag ids",
            ));
            continue;
        };
        let found = scoped::<Tag>(tenant)
            .filter(tag::Column::BusinessId.eq(business))
            .filter(tag::Column::Name.eq(name.trim()))
            .one(txn)
            .await?;
        match found {
            Some(t) => tags.push(t),
            None => failures.push(FieldFailure::new(
                field,
                "no tag of that name in the contact's business",
            )),
        }
    }
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    tags.sort_by_key(|t| t.id);
    tags.dedup_by_key(|t| t.id);
    Ok(tags)
}

/// Adds tags to a contact; tags it already has are left as they are.
pub async fn add_tags(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    refs: &TagRefs,
) -> Result<contact::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let (contact, targets) = locked_contact_and_targets(&txn, tenant, id).await?;
    let tags = resolve_tags(&txn, tenant, &contact, refs).await?;
    let existing: Vec<Uuid> = ContactTag::find()
        .filter(contact_tag::Column::TenantId.eq(tenant.0))
        .filter(contact_tag::Column::ContactId.eq(contact.id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|l| l.tag_id)
        .collect();
    let now = now_millis();
    let new: Vec<contact_tag::ActiveModel> = tags
        .iter()
        .filter(|t| !existing.contains(&t.id))
        .map(|t| contact_tag::Model::new(tenant.0, contact.id, t.id, now).into_active_model())
        .collect();
    let contact = if new.is_empty() {
        contact
    } else {
        ContactTag::insert_many(new).exec(&txn).await?;
        crate::write_back::outbox::queue_tags(&txn, tenant, &targets, contact.id, now).await?;
        touch(&txn, contact).await?
    };
    txn.commit().await?;
    Ok(contact)
}

/// Removes tags from a contact; tags it does not have are ignored.
pub async fn remove_tags(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    refs: &TagRefs,
) -> Result<contact::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let (contact, targets) = locked_contact_and_targets(&txn, tenant, id).await?;
    let tags = resolve_tags(&txn, tenant, &contact, refs).await?;
    let removed = ContactTag::delete_many()
        .filter(contact_tag::Column::TenantId.eq(tenant.0))
        .filter(contact_tag::Column::ContactId.eq(contact.id))
        .filter(contact_tag::Column::TagId.is_in(tags.iter().map(|t| t.id)))
        .exec(&txn)
        .await?;
    let contact = if removed.rows_affected == 0 {
        contact
    } else {
        let now = now_millis();
        crate::write_back::outbox::queue_tags(&txn, tenant, &targets, contact.id, now).await?;
        touch(&txn, contact).await?
    };
    txn.commit().await?;
    Ok(contact)
}

/// Moves a contact's `updatedAt` forward after a change to its links.
async fn touch(txn: &DatabaseTransaction, current: contact::Model) -> Result<contact::Model> {
    let mut updated = current.clone();
    updated.updated_at = next_updated_at(current.updated_at);
    let update = Contact::update_many()
        .col_expr(contact::Column::UpdatedAt, Expr::val(updated.updated_at))
        .filter(contact::Column::Id.eq(current.id))
        .filter(contact::Column::TenantId.eq(current.tenant_id));
    let mut event = events::updated(&current, &updated);
    event.changed_fields = Some(serde_json::json!(["tags"]).to_string());
    let deliveries =
        crate::webhooks::fan_out::deliveries(txn, std::slice::from_ref(&event)).await?;
    let mut inserts = vec![(events::insert_statement(vec![event]), 1)];
    if !deliveries.is_empty() {
        let rows = deliveries.len() as u64;
        inserts.push((crate::webhooks::fan_out::insert_statement(deliveries), rows));
    }
    crate::db::insert_then_update(txn, inserts, update.into_query()).await?;
    events::feed::written();
    Ok(updated)
}

/// Sets how a contact was identified and its CRM reference (seed 000's manual resolution).
/// Nothing is written back: no vendor's write API takes these fields
/// (`write_back::fields::writable_fields`).
pub async fn set_resolution(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    status: ResolutionStatus,
    external_ref: Change<String>,
) -> Result<contact::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let current = locked_contact(&txn, tenant, id).await?;
    let mut updated = current.clone();
    updated.resolution_status = status.as_str().to_string();
    let mut check = Checker::new("", WriteSettings::default());
    patch_text(
        &mut check,
        "externalRef",
        &external_ref,
        &mut updated.external_ref,
        Text::Short(MAX_SHORT),
    );
    if !check.failures.is_empty() {
        return Err(Error::Validation(check.failures));
    }
    if updated == current {
        return Ok(current);
    }
    updated.updated_at = next_updated_at(current.updated_at);
    let updated = write_contact(&txn, &current, updated).await?;
    txn.commit().await?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use sea_orm::ActiveValue;

    use super::*;

    #[test]
    fn an_update_sets_only_the_changed_columns_and_never_the_key() {
        let current = blank_contact(TenantId(Uuid::now_v7()), 1_000);
        let mut updated = current.clone();
        updated.first_name = Some("Inés".into());
        updated.updated_at = 1_001;
        let active = changed_columns(&current, &updated);
        let set: Vec<String> = contact::Column::iter()
            .filter(|column| matches!(active.get(*column), ActiveValue::Set(_)))
            .map(|column| format!("{column:?}"))
            .collect();
        assert_eq!(set, ["FirstName", "UpdatedAt"]);
        // Even a changed key (which no write makes) is not written.
        updated.id = Uuid::now_v7();
        assert!(matches!(
            changed_columns(&current, &updated).get(contact::Column::Id),
            ActiveValue::NotSet
        ));
    }
}
