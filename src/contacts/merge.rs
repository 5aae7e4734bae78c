//! Merging duplicates: one transaction that folds source contacts into a target.
use std::collections::HashSet;

use entity::prelude::{Contact, ContactSource, ContactTag};
use entity::{contact, contact_source, contact_tag};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect};
use serde_json::Value;
use uuid::Uuid;

use super::rules::MAX_LIST;
use super::write::{delete_rows, write_contact};
use super::{ResolutionStatus, search_text, sort_name};
use crate::db::begin_write;
use crate::error::{Error, FieldFailure, Result};
use crate::tenancy::TenantId;
use crate::time::next_updated_at;

/// Most contacts merged into one at a time.
pub const MAX_MERGE_SOURCES: usize = 50;

/// Fills the empty fields of `target` from `source`.
fn fill_empty(target: &mut contact::Model, source: &contact::Model) {
    macro_rules! fill {
        ($($field:ident),*) => {$(
            if target.$field.is_none() {
                target.$field = source.$field.clone();
            }
        )*};
    }
    fill!(
        account_id,
        business_id,
        first_name,
        last_name,
        email,
        phone,
        company_name,
        website,
        linkedin,
        role,
        description,
        notes,
        address_street,
        address_city,
        address_state,
        address_country,
        address_postal_code,
        timezone,
        source,
        lead_source,
        status,
        pipeline_id,
        pipeline_stage,
        message_status,
        owner,
        created_by,
        last_message_at
    );
    if target.external_ref.is_none() && source.external_ref.is_some() {
        target.external_ref = source.external_ref.clone();
    }
    if ResolutionStatus::parse(&target.resolution_status) == ResolutionStatus::Unresolved {
        target.resolution_status = source.resolution_status.clone();
    }
}

fn strings(list: &Value) -> impl Iterator<Item = String> + '_ {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
}

/// The union of lists, in order, without `primary` and without repeats.
fn united(primary: Option<&str>, lists: Vec<Vec<String>>) -> Vec<String> {
    let mut seen: HashSet<String> = primary.into_iter().map(str::to_string).collect();
    lists
        .into_iter()
        .flatten()
        .filter(|v| seen.insert(v.clone()))
        .collect()
}

/// Merges contacts `merged` into `target`: the target keeps its values and fills its empty
/// fields from the merged contacts in the order given; tags, assignees and secondary emails
/// and phones are united (a merged contact's primary email or phone that differs from the
/// target's becomes a secondary one); the merged contacts' vendor records move to the
/// target, so later imports update it; the merged contacts are deleted. Returns the target
/// after the merge and the deleted ids. Failing fields are named as in the GraphQL input
/// (`sourceIds[1]`).
pub async fn merge_contacts(
    db: &sea_orm::DatabaseConnection,
    tenant: TenantId,
    target_id: Uuid,
    merged: &[Uuid],
) -> Result<(contact::Model, Vec<Uuid>)> {
    let mut failures = Vec::new();
    let mut sources = Vec::new();
    for (i, &id) in merged.iter().enumerate() {
        if id == target_id {
            failures.push(FieldFailure::new(
                format!("sourceIds[{i}]"),
                "the target cannot be merged into itself",
            ));
        } else if sources.contains(&id) {
            failures.push(FieldFailure::new(
                format!("sourceIds[{i}]"),
                "given more than once",
            ));
        } else {
            sources.push(id);
        }
    }
    if merged.is_empty() || merged.len() > MAX_MERGE_SOURCES {
        failures.push(FieldFailure::new(
            "sourceIds",
            format!("give between 1 and {MAX_MERGE_SOURCES} contacts"),
        ));
    }
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }

    let (txn, _lock) = begin_write(db).await?;
    let mut all = sources.clone();
    all.push(target_id);
    let rows = Contact::find()
        .filter(contact::Column::TenantId.eq(tenant.0))
        .filter(contact::Column::Id.is_in(all))
        .lock_exclusive()
        .all(&txn)
        .await?;
    let find = |id: Uuid| rows.iter().find(|c| c.id == id).cloned();
    let target = find(target_id).ok_or_else(|| Error::NotFound("Contact".into()))?;
    let others: Vec<contact::Model> = sources
        .iter()
        .map(|id| find(*id).ok_or_else(|| Error::NotFound("Contact".into())))
        .collect::<Result<_>>()?;

    let mut merged = target.clone();
    for other in &others {
        fill_empty(&mut merged, other);
    }
    let emails = united(
        merged.email.as_deref(),
        std::iter::once(strings(&target.secondary_emails).collect())
            .chain(others.iter().map(|o| {
                o.email
                    .iter()
                    .cloned()
                    .chain(strings(&o.secondary_emails))
                    .collect()
            }))
            .collect(),
    );
    let phones = united(
        merged.phone.as_deref(),
        std::iter::once(strings(&target.secondary_phones).collect())
            .chain(others.iter().map(|o| {
                o.phone
                    .iter()
                    .cloned()
                    .chain(strings(&o.secondary_phones))
                    .collect()
            }))
            .collect(),
    );
    let assignees = united(
        None,
        std::iter::once(&target)
            .chain(&others)
            .map(|c| strings(&c.assignees).collect())
            .collect(),
    );
    for (field, list) in [
        ("secondaryEmails", &emails),
        ("secondaryPhones", &phones),
        ("assignees", &assignees),
    ] {
        if list.len() > MAX_LIST {
            failures.push(FieldFailure::new(
                "sourceIds",
                format!(
                    "the merged contact would have {} {field}, more than {MAX_LIST}",
                    list.len()
                ),
            ));
        }
    }
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    merged.secondary_emails = Value::from(emails);
    merged.secondary_phones = Value::from(phones);
    merged.assignees = Value::from(assignees);
    merged.sort_name = sort_name(merged.first_name.as_deref(), merged.last_name.as_deref());
    merged.search_text = search_text(&merged);
    merged.updated_at = next_updated_at(target.updated_at);

    // Tags of the sources onto the target.
    let tag_ids: Vec<Uuid> = ContactTag::find()
        .select_only()
        .column(contact_tag::Column::TagId)
        .filter(contact_tag::Column::TenantId.eq(tenant.0))
        .filter(contact_tag::Column::ContactId.is_in(sources.clone()))
        .into_tuple()
        .all(&txn)
        .await?;
    let links: Vec<contact_tag::ActiveModel> = tag_ids
        .into_iter()
        .collect::<HashSet<Uuid>>()
        .into_iter()
        .map(|tag_id| {
            contact_tag::Model {
                tenant_id: tenant.0,
                contact_id: target.id,
                tag_id,
                created_at: merged.updated_at,
            }
            .into_active_model()
        })
        .collect();
    if !links.is_empty() {
        ContactTag::insert_many(links)
            .on_conflict_do_nothing()
            .exec(&txn)
            .await?;
    }
    // Vendor records follow the contact they now describe.
    ContactSource::update_many()
        .col_expr(contact_source::Column::ContactId, Expr::value(target.id))
        .filter(contact_source::Column::TenantId.eq(tenant.0))
        .filter(contact_source::Column::ContactId.is_in(sources.clone()))
        .exec(&txn)
        .await?;
    delete_rows(&txn, tenant, &sources).await?;
    let merged = write_contact(&txn, &target, merged).await?;
    txn.commit().await?;
    Ok((merged, sources))
}
