//! Merging duplicates: one transaction that folds source contacts into a target.
//!
//! Three steps: [`check`] the ids given, [`plan`] the merged contact from the rows read (both
//! pure), [`write`] it with set-based statements.
use std::collections::HashSet;

use entity::prelude::{Contact, ContactSource, ContactTag};
use entity::{contact, contact_source, contact_tag};
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
};
use serde_json::Value;
use uuid::Uuid;

use super::rules::MAX_LIST;
use super::write::{delete_rows, write_contact};
use super::{ResolutionStatus, search_text, sort_name};
use crate::db::begin_write;
use crate::error::{Error, FieldFailure, Result};
use crate::events;
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
    let sources = check(target_id, merged)?;
    let (txn, _lock) = begin_write(db).await?;
    let mut ids = sources.clone();
    ids.push(target_id);
    let rows = Contact::find()
        .filter(contact::Column::TenantId.eq(tenant.0))
        .filter(contact::Column::Id.is_in(ids))
        .lock_exclusive()
        .all(&txn)
        .await?;
    let (target, others) = pick(rows, target_id, &sources)?;
    let merged = plan(&target, &others)?;
    let merged = write(&txn, tenant, &target, merged, &sources).await?;
    txn.commit().await?;
    Ok((merged, sources))
}

/// The contacts to merge into `target_id`: `merged`, each at most once, without the target,
/// and from 1 to [`MAX_MERGE_SOURCES`] of them; otherwise every failure.
fn check(target_id: Uuid, merged: &[Uuid]) -> Result<Vec<Uuid>> {
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
    Ok(sources)
}

/// The target and the merged contacts (in the order of `sources`) among the `rows` read;
/// `NOT_FOUND` when one is missing.
fn pick(
    rows: Vec<contact::Model>,
    target_id: Uuid,
    sources: &[Uuid],
) -> Result<(contact::Model, Vec<contact::Model>)> {
    let find = |id: Uuid| {
        rows.iter()
            .find(|c| c.id == id)
            .cloned()
            .ok_or_else(|| Error::NotFound("Contact".into()))
    };
    let target = find(target_id)?;
    let others = sources.iter().map(|id| find(*id)).collect::<Result<_>>()?;
    Ok((target, others))
}

/// The target after the merge of `others` into it (a new `updatedAt`), or why the merged
/// contact would be invalid (too many secondary emails, secondary phones or assignees).
fn plan(target: &contact::Model, others: &[contact::Model]) -> Result<contact::Model> {
    let mut merged = target.clone();
    for other in others {
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
        std::iter::once(target)
            .chain(others)
            .map(|c| strings(&c.assignees).collect())
            .collect(),
    );
    let mut failures = Vec::new();
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
    Ok(merged)
}

/// Writes the merge inside `txn`: the tags of `sources` onto the target and their vendor
/// records to it (a statement each), the sources deleted, the target updated from `target`
/// to `merged` (with its assignees and keys). Returns the target as written.
async fn write(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    target: &contact::Model,
    merged: contact::Model,
    sources: &[Uuid],
) -> Result<contact::Model> {
    txn.execute(&unite_tags(tenant, target.id, sources, merged.updated_at)?)
        .await?;
    // Vendor records follow the contact they now describe.
    ContactSource::update_many()
        .col_expr(contact_source::Column::ContactId, Expr::value(target.id))
        .filter(contact_source::Column::TenantId.eq(tenant.0))
        .filter(contact_source::Column::ContactId.is_in(sources.iter().copied()))
        .exec(txn)
        .await?;
    delete_rows(txn, tenant, sources).await?;
    let merged_away = sources
        .iter()
        .map(|&id| {
            let mut event = events::event(tenant, id, events::kind::MERGED, merged.updated_at);
            event.survivor_id = Some(target.id);
            event
        })
        .collect();
    events::record(txn, merged_away).await?;
    write_contact(txn, target, merged).await
}

/// `INSERT INTO contact_tags SELECT DISTINCT ... ON CONFLICT DO NOTHING`: links `target` to
/// every tag of `sources` it does not have yet, linked at `at`.
fn unite_tags(
    tenant: TenantId,
    target: Uuid,
    sources: &[Uuid],
    at: i64,
) -> Result<InsertStatement> {
    use contact_tag::Column;
    let tags = Query::select()
        .distinct()
        .column(Column::TenantId)
        .expr(Expr::val(target))
        .column(Column::TagId)
        .expr(Expr::val(at))
        .from(ContactTag)
        .and_where(Expr::col(Column::TenantId).eq(tenant.0))
        .and_where(Expr::col(Column::ContactId).is_in(sources.iter().copied()))
        .to_owned();
    let mut insert = Query::insert();
    insert
        .into_table(ContactTag)
        .columns([
            Column::TenantId,
            Column::ContactId,
            Column::TagId,
            Column::CreatedAt,
        ])
        .select_from(tags)
        .map_err(|err| Error::Internal(format!("uniting tags: {err}")))?
        .on_conflict(
            OnConflict::columns([Column::TenantId, Column::ContactId, Column::TagId])
                .do_nothing()
                .to_owned(),
        );
    Ok(insert)
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::SqliteQueryBuilder;
    use serde_json::json;

    use super::*;
    use crate::contacts::write::blank_contact;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn contact(n: u128) -> contact::Model {
        let mut c = blank_contact(TenantId(id(1)), 1_000);
        c.id = id(n);
        c
    }

    fn failures(result: Result<impl std::fmt::Debug>) -> Vec<(String, String)> {
        match result {
            Err(Error::Validation(failures)) => {
                failures.into_iter().map(|f| (f.field, f.message)).collect()
            }
            other => panic!("not a validation failure: {other:?}"),
        }
    }

    #[test]
    fn check_keeps_the_sources_in_order() {
        assert_eq!(check(id(1), &[id(3), id(2)]).unwrap(), vec![id(3), id(2)]);
    }

    #[test]
    fn check_refuses_the_target_repeats_and_counts_naming_each() {
        assert_eq!(
            failures(check(id(1), &[id(2), id(1), id(2)])),
            vec![
                (
                    "sourceIds[1]".into(),
                    "the target cannot be merged into itself".into()
                ),
                ("sourceIds[2]".into(), "given more than once".into()),
            ]
        );
        let between = format!("give between 1 and {MAX_MERGE_SOURCES} contacts");
        assert_eq!(
            failures(check(id(1), &[])),
            vec![("sourceIds".into(), between.clone())]
        );
        let many: Vec<Uuid> = (0..=MAX_MERGE_SOURCES as u128)
            .map(|n| id(10 + n))
            .collect();
        assert_eq!(
            failures(check(id(1), &many)),
            vec![("sourceIds".into(), between)]
        );
        assert!(check(id(1), &many[..MAX_MERGE_SOURCES]).is_ok());
    }

    #[test]
    fn pick_finds_the_target_and_the_sources_or_fails_not_found() {
        let rows = vec![contact(3), contact(1), contact(2)];
        let (target, others) = pick(rows.clone(), id(1), &[id(2), id(3)]).unwrap();
        assert_eq!(target.id, id(1));
        assert_eq!(
            others.iter().map(|c| c.id).collect::<Vec<_>>(),
            vec![id(2), id(3)]
        );
        for (target, sources) in [(id(9), vec![id(2)]), (id(1), vec![id(2), id(9)])] {
            match pick(rows.clone(), target, &sources) {
                Err(Error::NotFound(what)) => assert_eq!(what, "Contact"),
                other => panic!("not NOT_FOUND: {other:?}"),
            }
        }
    }

    #[test]
    fn the_target_keeps_its_values_and_fills_empty_ones_in_the_order_given() {
        let mut target = contact(1);
        target.first_name = Some("Ann".into());
        let mut b = contact(2);
        b.first_name = Some("Anna".into());
        b.last_name = Some("Berg".into());
        b.external_ref = Some("ext-b".into());
        b.resolution_status = "CRM_RESOLVED".into();
        b.account_id = Some(id(50));
        let mut c = contact(3);
        c.last_name = Some("Dahl".into());
        c.role = Some("Buyer".into());
        c.resolution_status = "MANUALLY_RESOLVED".into();
        let merged = plan(&target, &[b, c]).unwrap();
        assert_eq!(merged.id, id(1));
        assert_eq!(merged.first_name.as_deref(), Some("Ann"));
        assert_eq!(merged.last_name.as_deref(), Some("Berg"));
        assert_eq!(merged.role.as_deref(), Some("Buyer"));
        assert_eq!(merged.external_ref.as_deref(), Some("ext-b"));
        assert_eq!(merged.account_id, Some(id(50)));
        assert_eq!(merged.resolution_status, "CRM_RESOLVED");
        assert_eq!(merged.sort_name, sort_name(Some("Ann"), Some("Berg")));
        assert_eq!(merged.search_text, search_text(&merged));
        assert!(merged.updated_at > target.updated_at);
        assert_eq!(merged.created_at, target.created_at);
    }

    #[test]
    fn lists_are_united_and_other_primaries_become_secondary() {
        let mut target = contact(1);
        target.email = Some("a@example.com".into());
        target.secondary_emails = json!(["b@example.com"]);
        target.assignees = json!(["u1"]);
        let mut b = contact(2);
        b.email = Some("c@example.com".into());
        b.secondary_emails = json!(["a@example.com", "b@example.com", "d@example.com"]);
        b.phone = Some("+4930111".into());
        b.assignees = json!(["u2", "u1"]);
        let mut c = contact(3);
        c.email = Some("a@example.com".into());
        c.phone = Some("+4930222".into());
        c.secondary_phones = json!(["+4930111"]);
        let merged = plan(&target, &[b, c]).unwrap();
        assert_eq!(merged.email.as_deref(), Some("a@example.com"));
        assert_eq!(
            merged.secondary_emails,
            json!(["b@example.com", "c@example.com", "d@example.com"])
        );
        // The target had no phone: the first source's fills it.
        assert_eq!(merged.phone.as_deref(), Some("+4930111"));
        assert_eq!(merged.secondary_phones, json!(["+4930222"]));
        assert_eq!(merged.assignees, json!(["u1", "u2"]));
    }

    #[test]
    fn a_merge_that_would_make_lists_too_long_is_refused() {
        let target = contact(1);
        let mut b = contact(2);
        b.secondary_emails = json!(
            (0..=MAX_LIST)
                .map(|n| format!("{n}@example.com"))
                .collect::<Vec<_>>()
        );
        b.assignees = json!((0..=MAX_LIST).map(|n| format!("u{n}")).collect::<Vec<_>>());
        let n = MAX_LIST + 1;
        assert_eq!(
            failures(plan(&target, &[b])),
            vec![
                (
                    "sourceIds".into(),
                    format!(
                        "the merged contact would have {n} secondaryEmails, more than {MAX_LIST}"
                    )
                ),
                (
                    "sourceIds".into(),
                    format!("the merged contact would have {n} assignees, more than {MAX_LIST}")
                ),
            ]
        );
    }

    #[test]
    fn the_sources_tags_are_united_onto_the_target_in_one_statement() {
        let statement = unite_tags(TenantId(id(1)), id(2), &[id(3), id(4)], 77).unwrap();
        let (sql, values) = statement.build(SqliteQueryBuilder);
        assert_eq!(
            sql,
            r#"INSERT INTO "contact_tags" ("tenant_id", "contact_id", "tag_id", "created_at") SELECT DISTINCT "tenant_id", ?, "tag_id", ? FROM "contact_tags" WHERE "tenant_id" = ? AND "contact_id" IN (?, ?) ON CONFLICT ("tenant_id", "contact_id", "tag_id") DO NOTHING"#
        );
        let expected: Vec<sea_orm::Value> = vec![
            id(2).into(),
            77i64.into(),
            id(1).into(),
            id(3).into(),
            id(4).into(),
        ];
        assert_eq!(values.0, expected);
    }
}
