//! The `write_backs` outbox, the queueing side: a change is queued in the transaction of
//! the contact change (so it is queued exactly when it commits), one row per writable source
//! of the contact. Claiming ([`super::claim`]), outcomes ([`super::outcomes`]) and reading
//! the queue ([`super::queue`]) are beside it.

use entity::prelude::{ContactSource, ContactTag, SourceEntity, Tag, WriteBack as WriteBackRow};
use entity::{contact, contact_source, contact_tag, source, source_entity, tag, write_back};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryTrait};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::config::{Precondition, WriteBack};
use super::fields::{changed_fields, check_limits};
use super::writable::WritableSource;
use crate::error::{Error, Result};
use crate::sources::Format;
use crate::tenancy::TenantId;

/// The states of a queued change.
pub mod state {
    pub const PENDING: &str = "PENDING";
    pub const DELIVERING: &str = "DELIVERING";
    pub const DELIVERED: &str = "DELIVERED";
    pub const FAILED: &str = "FAILED";
    pub const CONFLICT: &str = "CONFLICT";
}

/// `UPDATE` (send the changed fields) or `DELETE` (delete the record at the vendor).
pub mod operation {
    pub const UPDATE: &str = "UPDATE";
    pub const DELETE: &str = "DELETE";
}

/// A writable source of a contact: its record there and how to write to it.
struct Target {
    source: source::Model,
    format: Format,
    write: WriteBack,
    record: contact_source::Model,
}

/// The writable sources of a contact: its live records at sources that are written to,
/// read with the contact itself inside its write transaction (one statement,
/// [`crate::contacts::write`]), so that a change costs one more INSERT per source.
#[derive(Default)]
pub struct Targets(Vec<Target>);

impl Targets {
    /// The targets among `records` (a contact's records): those at a source in `writable`.
    pub fn of(writable: &[WritableSource], records: Vec<contact_source::Model>) -> Targets {
        Targets(
            records
                .into_iter()
                .filter(|record| record.deleted_at.is_none())
                .filter_map(|record| {
                    let source = writable.iter().find(|w| w.source.name == record.source)?;
                    Some(Target {
                        source: source.source.clone(),
                        format: source.format,
                        write: source.write.clone(),
                        record,
                    })
                })
                .collect(),
        )
    }
}

/// The contact's live records at sources that can be written to.
async fn targets(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    contact: Uuid,
) -> Result<Vec<Target>> {
    let writable = super::writable::writable_sources(db, tenant).await?;
    if writable.is_empty() {
        return Ok(Vec::new());
    }
    let records = ContactSource::find()
        .filter(contact_source::Column::TenantId.eq(tenant.0))
        .filter(contact_source::Column::ContactId.eq(contact))
        .filter(contact_source::Column::DeletedAt.is_null())
        .all(db)
        .await?;
    Ok(Targets::of(&writable, records).0)
}

/// The stored vendor record a change is for (its tenant, source and vendor id).
pub async fn record_of(
    db: &impl ConnectionTrait,
    change: &write_back::Model,
) -> Result<Option<contact_source::Model>> {
    Ok(ContactSource::find()
        .filter(contact_source::Column::TenantId.eq(change.tenant_id))
        .filter(contact_source::Column::Source.eq(change.source.clone()))
        .filter(contact_source::Column::ExternalId.eq(change.external_id.clone()))
        .one(db)
        .await?)
}

/// `text` as one URL path segment (RFC 3986 unreserved characters kept, the rest
/// percent-encoded).
fn segment(text: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

/// The write URL of a record: `{id}` (percent-encoded) and the record's `{accountId}` and
/// `{businessId}` at the vendor (from what its last import mapped).
pub fn record_url(template: &str, record: &contact_source::Model) -> String {
    let mapped: Value = serde_json::from_str(&record.mapped).unwrap_or_default();
    let part = |key: &str| {
        let value = mapped.get(key).and_then(Value::as_str).unwrap_or_default();
        segment(value)
    };
    template
        .replace("{id}", &segment(&record.external_id))
        .replace("{accountId}", &part("account"))
        .replace("{businessId}", &part("business"))
}

/// The vendor version a change is made against, for its precondition: the record's own
/// update time (`updated_at`, `updatedAt`) for `if-unmodified-since`, its `etag` for
/// `if-match` (when the vendor's records carry one).
pub fn base_version(precondition: Precondition, record: &str) -> Option<String> {
    let record: Value = serde_json::from_str(record).ok()?;
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| record.get(*n).and_then(Value::as_str).map(str::to_string))
    };
    match precondition {
        Precondition::None => None,
        Precondition::IfUnmodifiedSince => field(&["updated_at", "updatedAt"]),
        Precondition::IfMatch => field(&["etag", "_etag", "ETag"]),
    }
}

/// The changes that queue the change of a contact from `before` to `after`, one for each
/// of its writable sources whose fields it changes, at `now` (milliseconds); they are
/// inserted with the contact's own UPDATE ([`insert_statement`]). Fails with
/// `VALIDATION_FAILED`, naming each field and source, when a source would refuse a value
/// (seed 003's limits); the caller's transaction then writes nothing.
pub fn plan_update(
    tenant: TenantId,
    targets: &Targets,
    before: &contact::Model,
    after: &contact::Model,
    now: i64,
) -> Result<Vec<write_back::Model>> {
    let mut failures = Vec::new();
    let mut changes = Vec::new();
    for target in &targets.0 {
        let body = changed_fields(target.format, before, after);
        if body.is_empty() {
            continue;
        }
        check_limits(target.format, &target.source.name, &body, &mut failures);
        changes.push(change(
            tenant,
            after.id,
            target,
            operation::UPDATE,
            body,
            now,
        ));
    }
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    Ok(changes)
}

/// The INSERT of `changes` into the outbox.
pub fn insert_statement(changes: Vec<write_back::Model>) -> sea_orm::sea_query::InsertStatement {
    WriteBackRow::insert_many(changes.into_iter().map(write_back::ActiveModel::from)).into_query()
}

/// Queues, for each writable source of the contact whose records carry tags (seed 002), the
/// contact's tags after a change to them, as `{"tags": [{"id", "name"}, …]}` by name: the
/// vendor's id of each tag the source knows, the name alone of one it does not. Inside `txn`
/// (the transaction of the change); no statement when no such source exists.
pub async fn queue_tags(
    txn: &impl ConnectionTrait,
    tenant: TenantId,
    targets: &Targets,
    contact: Uuid,
    now: i64,
) -> Result<()> {
    let tagged: Vec<&Target> = targets
        .0
        .iter()
        .filter(|t| super::fields::carries_tags(t.format))
        .collect();
    if tagged.is_empty() {
        return Ok(());
    }
    let links = ContactTag::find()
        .filter(contact_tag::Column::TenantId.eq(tenant.0))
        .filter(contact_tag::Column::ContactId.eq(contact))
        .all(txn)
        .await?;
    let mut tags = Tag::find()
        .filter(tag::Column::TenantId.eq(tenant.0))
        .filter(tag::Column::Id.is_in(links.iter().map(|l| l.tag_id)))
        .all(txn)
        .await?;
    tags.sort_by(|a, b| a.name.cmp(&b.name));
    let known = SourceEntity::find()
        .filter(source_entity::Column::TenantId.eq(tenant.0))
        .filter(source_entity::Column::Kind.eq("tag"))
        .filter(source_entity::Column::EntityId.is_in(tags.iter().map(|t| t.id)))
        .all(txn)
        .await?;
    for target in tagged {
        let list: Vec<Value> = tags
            .iter()
            .map(|t| {
                let id = known
                    .iter()
                    .find(|k| k.entity_id == t.id && k.source == target.source.name)
                    .map(|k| k.external_id.clone());
                match id {
                    Some(id) => serde_json::json!({ "id": id, "name": t.name }),
                    None => serde_json::json!({ "name": t.name }),
                }
            })
            .collect();
        let body = Map::from_iter([("tags".to_string(), Value::Array(list))]);
        queue(txn, tenant, contact, target, operation::UPDATE, body, now).await?;
    }
    Ok(())
}

/// Queues the vendor `DELETE` of each record of the contact at a source configured to
/// delete (`write.delete`), inside `txn`, before the contact's rows go.
pub async fn queue_delete(
    txn: &impl ConnectionTrait,
    tenant: TenantId,
    contact: Uuid,
    now: i64,
) -> Result<()> {
    for target in targets(txn, tenant, contact).await? {
        if target.write.delete {
            queue(
                txn,
                tenant,
                contact,
                &target,
                operation::DELETE,
                Map::new(),
                now,
            )
            .await?;
        }
    }
    Ok(())
}

/// Inserts a change (several changes of a contact for a source are merged into one request
/// when it is claimed, [`super::claim`]).
async fn queue(
    txn: &impl ConnectionTrait,
    tenant: TenantId,
    contact: Uuid,
    target: &Target,
    op: &str,
    body: Map<String, Value>,
    now: i64,
) -> Result<()> {
    let row = change(tenant, contact, target, op, body, now);
    WriteBackRow::insert(write_back::ActiveModel::from(row))
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// A pending change of `contact` for `target`, made at `now`: its URL and the vendor version
/// it is made against come from the record as last synced.
fn change(
    tenant: TenantId,
    contact: Uuid,
    target: &Target,
    op: &str,
    body: Map<String, Value>,
    now: i64,
) -> write_back::Model {
    let id = Uuid::now_v7();
    write_back::Model {
        id,
        tenant_id: tenant.0,
        contact_id: contact,
        source_id: target.source.id,
        source: target.source.name.clone(),
        external_id: target.record.external_id.clone(),
        operation: op.to_string(),
        body: Value::Object(body).to_string(),
        url: record_url(&target.write.url, &target.record),
        base_version: base_version(target.write.precondition, &target.record.record),
        state: state::PENDING.to_string(),
        idempotency_key: id.to_string(),
        attempts: 0,
        last_error: None,
        next_attempt_at: now,
        delivered_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// A pending update of contact `contact` to source `source` with `body`, sent once, for
/// the unit tests of the write-back modules.
#[cfg(test)]
pub(crate) fn test_change(id: u128, contact: u128, source: u128, body: &str) -> write_back::Model {
    write_back::Model {
        id: Uuid::from_u128(id),
        tenant_id: Uuid::nil(),
        contact_id: Uuid::from_u128(contact),
        source_id: Uuid::from_u128(source),
        source: "crm".into(),
        external_id: "1".into(),
        operation: operation::UPDATE.into(),
        body: body.into(),
        url: String::new(),
        base_version: None,
        state: state::PENDING.into(),
        idempotency_key: String::new(),
        attempts: 1,
        last_error: None,
        next_attempt_at: 0,
        delivered_at: None,
        created_at: 0,
        updated_at: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_versions_come_from_the_stored_record() {
        let record = contact_source::Model {
            id: Uuid::nil(),
            tenant_id: Uuid::nil(),
            contact_id: Uuid::nil(),
            source: "b".into(),
            format: "business-contacts".into(),
            external_id: "c 1/2".into(),
            record: r#"{"id":"c 1/2","updatedAt":"2025-01-03T00:00:00.000Z"}"#.into(),
            mapped: r#"{"fields":{},"business":"b9","account":null,"tags":null}"#.into(),
            record_hash: String::new(),
            fetched_at: 0,
            deleted_at: None,
        };
        assert_eq!(
            record_url(
                "https://x/api/v1/businesses/{businessId}/contacts/{id}",
                &record
            ),
            "https://x/api/v1/businesses/b9/contacts/c%201%2F2"
        );
        assert_eq!(
            base_version(Precondition::IfUnmodifiedSince, &record.record).as_deref(),
            Some("2025-01-03T00:00:00.000Z")
        );
        assert_eq!(base_version(Precondition::IfMatch, &record.record), None);
        assert_eq!(base_version(Precondition::None, &record.record), None);
    }
}
