//! Write conflicts: a change the vendor refused (412/409) because its record changed since
//! the last sync. Nothing is overwritten at the vendor. The sync that follows (started at
//! once) reads the vendor's record; then each field of the change becomes a
//! `write_conflicts` row (ours, theirs) and the source's policy decides:
//!
//! - `manual`: the contact keeps our values (the sync does not apply the vendor's to those
//!   fields) until `resolveWriteConflict` keeps `OURS` (sent again against the vendor's new
//!   version) or `THEIRS` (the contact takes the vendor's value);
//! - `source-wins`: the vendor's values are applied to the contact by that sync; the change
//!   is dropped (`FAILED`, saying so);
//! - `gateway-wins`: the contact keeps ours and the change is sent again against the new
//!   version.
use std::collections::{HashMap, HashSet};

use entity::prelude::{Contact, Source, WriteBack as WriteBackRow, WriteConflict};
use entity::{contact, source, write_back, write_conflict};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::config::{ConflictPolicy, WriteBack};
use super::fields::{WritableField, writable_fields};
use super::outbox::{base_version, record_of, state};
use crate::contacts::ContactPatch;
use crate::contacts::WriteSettings;
use crate::db::begin_write;
use crate::error::{Error, Result};
use crate::sources::Format;
use crate::sources::catalog::settings_of;
use crate::tenancy::TenantId;
use crate::time::next_updated_at;

/// `OURS` or `THEIRS`.
pub mod resolution {
    pub const OURS: &str = "OURS";
    pub const THEIRS: &str = "THEIRS";
}

/// A refused change of a contact at the source a sync is reading, and what is known of it.
#[derive(Clone, Debug)]
pub struct OpenChange {
    pub change: write_back::Model,
    pub policy: ConflictPolicy,
    /// The source's write settings (its precondition, for a change sent again).
    pub write: Option<WriteBack>,
    pub format: Format,
    /// Its conflicts, when a sync has read the vendor's values already.
    pub conflicts: Vec<write_conflict::Model>,
}

impl OpenChange {
    /// Whether this refusal has no conflicts recorded yet: none at all, or only ones resolved
    /// before the change was refused again (it was sent again and met a newer version).
    pub fn unrecorded(&self) -> bool {
        self.conflicts
            .iter()
            .all(|c| c.resolved_at.is_some_and(|at| at <= self.change.updated_at))
    }

    /// The contact fields the sync must not take from the vendor: those of the change,
    /// unless the vendor wins or every conflict is resolved.
    pub fn held_paths(&self) -> Vec<&'static str> {
        if self.unrecorded() {
            if self.policy == ConflictPolicy::SourceWins {
                return Vec::new();
            }
        } else if self.conflicts.iter().all(|c| c.resolution.is_some()) {
            return Vec::new();
        }
        let body: Map<String, Value> = serde_json::from_str(&self.change.body).unwrap_or_default();
        writable_fields(self.format)
            .iter()
            .filter(|f| body.contains_key(f.vendor))
            .flat_map(|f| paths_of(f))
            .collect()
    }
}

/// The contact paths a writable field stands for (a full name: first and last name).
fn paths_of(field: &WritableField) -> Vec<&'static str> {
    if field.path == "name" {
        vec!["firstName", "lastName"]
    } else {
        vec![field.path]
    }
}

/// The refused changes of `contacts` at `source` (one statement; two more when there are
/// any).
pub async fn open_changes(
    txn: &impl ConnectionTrait,
    tenant: TenantId,
    source: &str,
    contacts: &[Uuid],
) -> Result<HashMap<Uuid, Vec<OpenChange>>> {
    if contacts.is_empty() {
        return Ok(HashMap::new());
    }
    let changes = WriteBackRow::find()
        .filter(write_back::Column::TenantId.eq(tenant.0))
        .filter(write_back::Column::ContactId.is_in(contacts.iter().copied()))
        .filter(write_back::Column::Source.eq(source))
        .filter(write_back::Column::State.eq(state::CONFLICT))
        .all(txn)
        .await?;
    if changes.is_empty() {
        return Ok(HashMap::new());
    }
    let Some(row) = Source::find()
        .filter(source::Column::TenantId.eq(tenant.0))
        .filter(source::Column::Name.eq(source))
        .one(txn)
        .await?
    else {
        return Ok(HashMap::new());
    };
    let settings = settings_of(&row)?;
    let policy = settings
        .write
        .as_ref()
        .map_or(ConflictPolicy::Manual, |w| w.conflict_policy);
    let write = settings.write.clone();
    let mut conflicts: HashMap<Uuid, Vec<write_conflict::Model>> = HashMap::new();
    for conflict in WriteConflict::find()
        .filter(write_conflict::Column::WriteBackId.is_in(changes.iter().map(|c| c.id)))
        .order_by_asc(write_conflict::Column::Id)
        .all(txn)
        .await?
    {
        conflicts
            .entry(conflict.write_back_id)
            .or_default()
            .push(conflict);
    }
    let mut open: HashMap<Uuid, Vec<OpenChange>> = HashMap::new();
    for change in changes {
        open.entry(change.contact_id).or_default().push(OpenChange {
            conflicts: conflicts.remove(&change.id).unwrap_or_default(),
            policy,
            write: write.clone(),
            format: settings.format,
            change,
        });
    }
    Ok(open)
}

/// The vendor's value of `field` in `record` (a full name from its first and last name).
fn vendor_value(record: &Value, field: &WritableField) -> Value {
    if field.path == "name" {
        let part = |k: &str| record.get(k).and_then(Value::as_str).map(str::to_string);
        return crate::contacts::full_name(
            part("firstName").as_deref(),
            part("lastName").as_deref(),
        )
        .map_or(Value::Null, Value::String);
    }
    record.get(field.vendor).cloned().unwrap_or(Value::Null)
}

/// The conflicts of `open` (not recorded yet) given the vendor's `record` as just read:
/// one row per field of the change, resolved at once unless the policy is `manual`.
pub fn plan_conflicts(open: &OpenChange, record: &Value, now: i64) -> Vec<write_conflict::Model> {
    let body: Map<String, Value> = serde_json::from_str(&open.change.body).unwrap_or_default();
    let resolution = match open.policy {
        ConflictPolicy::Manual => None,
        ConflictPolicy::SourceWins => Some(resolution::THEIRS.to_string()),
        ConflictPolicy::GatewayWins => Some(resolution::OURS.to_string()),
    };
    writable_fields(open.format)
        .iter()
        .filter_map(|f| {
            let ours = body.get(f.vendor)?;
            Some(write_conflict::Model {
                id: Uuid::now_v7(),
                tenant_id: open.change.tenant_id,
                write_back_id: open.change.id,
                contact_id: open.change.contact_id,
                source_id: open.change.source_id,
                source: open.change.source.clone(),
                field: f.path.to_string(),
                vendor_field: f.vendor.to_string(),
                ours: ours.to_string(),
                theirs: vendor_value(record, f).to_string(),
                detected_at: now,
                resolution: resolution.clone(),
                resolved_at: resolution.as_ref().map(|_| now),
            })
        })
        .collect()
}

/// Records the conflicts of the refused changes whose vendor records a sync just read
/// (`records`: vendor id → raw record), and applies the source's policy to each change.
pub async fn record(
    txn: &impl ConnectionTrait,
    open: &HashMap<Uuid, Vec<OpenChange>>,
    records: &HashMap<&str, &str>,
    now: i64,
) -> Result<()> {
    for open in open.values().flatten() {
        if !open.unrecorded() {
            continue;
        }
        let Some(raw) = records.get(open.change.external_id.as_str()) else {
            continue;
        };
        let record: Value = serde_json::from_str(raw).unwrap_or_default();
        let rows = plan_conflicts(open, &record, now);
        if rows.is_empty() {
            // Nothing but tags (no field to weigh): the vendor's stay.
            drop_change(txn, open.change.id, "the vendor's tags were kept", now).await?;
            continue;
        }
        WriteConflict::insert_many(rows.into_iter().map(write_conflict::ActiveModel::from))
            .exec_without_returning(txn)
            .await?;
        match open.policy {
            ConflictPolicy::Manual => {}
            ConflictPolicy::SourceWins => {
                drop_change(
                    txn,
                    open.change.id,
                    "the vendor's values were kept (source-wins)",
                    now,
                )
                .await?;
            }
            ConflictPolicy::GatewayWins => {
                let version = open
                    .write
                    .as_ref()
                    .and_then(|w| base_version(w.precondition, raw));
                send_again(txn, &open.change, None, version, now).await?;
            }
        }
    }
    Ok(())
}

/// Records the conflicts of `change`, just refused, at once when the vendor's values are
/// known already: its record as stored now is a newer version than the change was made
/// against (a sync read it in between). Otherwise the sync started after the refusal does.
pub async fn record_known(
    txn: &impl ConnectionTrait,
    change: &write_back::Model,
    now: i64,
) -> Result<()> {
    let Some(row) = Source::find_by_id(change.source_id).one(txn).await? else {
        return Ok(());
    };
    let settings = settings_of(&row)?;
    let Some(write) = settings.write else {
        return Ok(());
    };
    let Some(stored_record) = record_of(txn, change).await? else {
        return Ok(());
    };
    let stored = base_version(write.precondition, &stored_record.record);
    if stored.is_none() || stored == change.base_version {
        return Ok(());
    }
    let open = OpenChange {
        change: change.clone(),
        policy: write.conflict_policy,
        write: Some(write),
        format: settings.format,
        conflicts: WriteConflict::find()
            .filter(write_conflict::Column::WriteBackId.eq(change.id))
            .all(txn)
            .await?,
    };
    let open = HashMap::from([(change.contact_id, vec![open])]);
    let records = HashMap::from([(change.external_id.as_str(), stored_record.record.as_str())]);
    record(txn, &open, &records, now).await
}

/// The change is not sent: `FAILED`, saying why.
async fn drop_change(txn: &impl ConnectionTrait, id: Uuid, why: &str, now: i64) -> Result<()> {
    WriteBackRow::update_many()
        .col_expr(write_back::Column::State, Expr::value(state::FAILED))
        .col_expr(
            write_back::Column::LastError,
            Expr::value(format!("conflict resolved: {why}")),
        )
        .col_expr(write_back::Column::UpdatedAt, Expr::value(now))
        .filter(write_back::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Queues `change` again against the vendor's `version`, with only `fields` of its body
/// (all when `None`), under a new idempotency key (the vendor answered the old one).
async fn send_again(
    txn: &impl ConnectionTrait,
    change: &write_back::Model,
    fields: Option<&HashSet<String>>,
    version: Option<String>,
    now: i64,
) -> Result<()> {
    let mut body: Map<String, Value> = serde_json::from_str(&change.body).unwrap_or_default();
    if let Some(fields) = fields {
        body.retain(|k, _| fields.contains(k));
    }
    let mut row: write_back::ActiveModel = change.clone().into();
    row.state = Set(state::PENDING.into());
    row.body = Set(Value::Object(body).to_string());
    row.base_version = Set(version);
    row.attempts = Set(0);
    row.idempotency_key = Set(Uuid::now_v7().to_string());
    row.next_attempt_at = Set(now);
    row.last_error = Set(None);
    row.updated_at = Set(now);
    WriteBackRow::update(row).exec(txn).await?;
    Ok(())
}

/// Resolves the tenant's open conflict `id` (`resolveWriteConflict`): `OURS` keeps the
/// gateway's value (sent again against the vendor's new version once every conflict of its
/// change is resolved), `THEIRS` gives the contact the vendor's value. `NOT_FOUND` for an
/// unknown conflict; `VALIDATION_FAILED` for one resolved already.
pub async fn resolve(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    keep: &str,
    settings: WriteSettings,
    now: i64,
) -> Result<write_conflict::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let conflict = WriteConflict::find_by_id(id)
        .filter(write_conflict::Column::TenantId.eq(tenant.0))
        .one(&txn)
        .await?
        .ok_or_else(|| Error::NotFound("WriteConflict".into()))?;
    if conflict.resolution.is_some() {
        return Err(Error::invalid("id", "the conflict is resolved already"));
    }
    let change = WriteBackRow::find_by_id(conflict.write_back_id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::NotFound("WriteBack".into()))?;
    if change.state != state::CONFLICT {
        return Err(Error::invalid(
            "id",
            format!("its change is {} now, no longer in conflict", change.state),
        ));
    }
    WriteConflict::update_many()
        .col_expr(write_conflict::Column::Resolution, Expr::value(keep))
        .col_expr(write_conflict::Column::ResolvedAt, Expr::value(now))
        .filter(write_conflict::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    if keep == resolution::THEIRS {
        take_theirs(&txn, tenant, &conflict, settings).await?;
    }
    let siblings = WriteConflict::find()
        .filter(write_conflict::Column::WriteBackId.eq(conflict.write_back_id))
        .all(&txn)
        .await?;
    if siblings.iter().all(|c| c.resolution.is_some()) {
        let change = WriteBackRow::find_by_id(conflict.write_back_id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::NotFound("WriteBack".into()))?;
        let ours: HashSet<String> = siblings
            .iter()
            .filter(|c| c.resolution.as_deref() == Some(resolution::OURS))
            .map(|c| c.vendor_field.clone())
            .collect();
        if ours.is_empty() {
            drop_change(&txn, change.id, "the vendor's values were kept", now).await?;
        } else {
            let version = current_version(&txn, &change).await?;
            send_again(&txn, &change, Some(&ours), version, now).await?;
        }
    }
    let resolved = WriteConflict::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(|| Error::NotFound("WriteConflict".into()))?;
    txn.commit().await?;
    Ok(resolved)
}

/// The vendor version of the change's record as the last sync stored it.
async fn current_version(
    txn: &impl ConnectionTrait,
    change: &write_back::Model,
) -> Result<Option<String>> {
    let record = record_of(txn, change).await?;
    let source = Source::find_by_id(change.source_id).one(txn).await?;
    let write: Option<WriteBack> = source
        .as_ref()
        .and_then(|s| settings_of(s).ok())
        .and_then(|s| s.write);
    Ok(match (record, write) {
        (Some(record), Some(write)) => base_version(write.precondition, &record.record),
        _ => None,
    })
}

/// Gives the contact the vendor's value of the conflict's field (the vendor has it
/// already: nothing is queued).
async fn take_theirs(
    txn: &sea_orm::DatabaseTransaction,
    tenant: TenantId,
    conflict: &write_conflict::Model,
    settings: WriteSettings,
) -> Result<()> {
    let Some(current) = Contact::find_by_id(conflict.contact_id)
        .filter(contact::Column::TenantId.eq(tenant.0))
        .one(txn)
        .await?
    else {
        return Ok(());
    };
    let theirs: Value = serde_json::from_str(&conflict.theirs).unwrap_or(Value::Null);
    let mut fields = Map::new();
    if conflict.field == "name" {
        fields.insert("name".into(), theirs);
    } else {
        let mut parts: Vec<&str> = conflict.field.split('.').collect();
        let last = parts.pop().unwrap_or_default();
        let mut value = Value::Object(Map::from_iter([(last.to_string(), theirs)]));
        while let Some(part) = parts.pop() {
            value = Value::Object(Map::from_iter([(part.to_string(), value)]));
        }
        if let Value::Object(map) = value {
            fields = map;
        }
    }
    let patch: ContactPatch = serde_json::from_value(Value::Object(fields))
        .map_err(|err| Error::Internal(format!("conflict value unreadable: {err}")))?;
    let mut updated = current.clone();
    let failures = patch.apply(&mut updated, "", settings);
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    if updated != current {
        updated.updated_at = next_updated_at(current.updated_at);
        crate::contacts::write::write_contact(txn, &current, updated).await?;
    }
    Ok(())
}

/// What `writeConflicts` lists: open (`resolved: false`) or resolved ones, of one source or
/// contact (each optional).
#[derive(Clone, Debug, Default)]
pub struct ConflictFilter {
    pub resolved: Option<bool>,
    pub source: Option<String>,
    pub contact: Option<Uuid>,
}

/// The order of `writeConflicts`: newest first.
pub fn ordering() -> crate::paging::Ordering<write_conflict::Model> {
    use crate::paging::{Direction, KeyValue, Ordering, SortKey};
    use sea_orm::IntoSimpleExpr;
    let by_detection = SortKey {
        name: "detectedAt",
        expr: write_conflict::Column::DetectedAt.into_simple_expr(),
        direction: Direction::Desc,
        value: |m: &write_conflict::Model| KeyValue::Int(m.detected_at),
        text: false,
    };
    Ordering::dedup(
        [],
        by_detection,
        write_conflict::Column::Id.into_simple_expr(),
        |m| m.id,
    )
}

fn filtered(tenant: TenantId, filter: &ConflictFilter) -> sea_orm::Select<WriteConflict> {
    let mut select = WriteConflict::find().filter(write_conflict::Column::TenantId.eq(tenant.0));
    match filter.resolved {
        Some(true) => select = select.filter(write_conflict::Column::ResolvedAt.is_not_null()),
        Some(false) => select = select.filter(write_conflict::Column::ResolvedAt.is_null()),
        None => {}
    }
    if let Some(source) = &filter.source {
        select = select.filter(write_conflict::Column::Source.eq(source.clone()));
    }
    if let Some(contact) = filter.contact {
        select = select.filter(write_conflict::Column::ContactId.eq(contact));
    }
    select
}

/// A page of the tenant's conflicts, newest first.
pub async fn page(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &ConflictFilter,
    args: &crate::paging::PageArgs,
) -> Result<crate::paging::Page<write_conflict::Model>> {
    crate::paging::fetch_page(db, filtered(tenant, filter), &ordering(), args).await
}

/// How many of the tenant's conflicts match `filter`.
pub async fn count(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &ConflictFilter,
) -> Result<i64> {
    use sea_orm::PaginatorTrait;
    Ok(filtered(tenant, filter).count(db).await? as i64)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn open(policy: ConflictPolicy, body: Value) -> OpenChange {
        OpenChange {
            change: write_back::Model {
                external_id: "7".into(),
                state: state::CONFLICT.into(),
                ..crate::write_back::outbox::test_change(1, 2, 3, &body.to_string())
            },
            policy,
            write: None,
            format: Format::ClientContacts,
            conflicts: Vec::new(),
        }
    }

    #[test]
    fn each_field_of_the_change_is_a_conflict_with_the_vendor_s_value() {
        let change = open(
            ConflictPolicy::Manual,
            json!({ "surname": "Ours", "role": "R" }),
        );
        let rows = plan_conflicts(&change, &json!({ "id": 7, "surname": "Theirs" }), 5);
        let fields: Vec<(&str, &str, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.field.as_str(),
                    r.vendor_field.as_str(),
                    r.ours.as_str(),
                    r.theirs.as_str(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("lastName", "surname", "\"Ours\"", "\"Theirs\""),
                ("role", "role", "\"R\"", "null")
            ]
        );
        assert!(
            rows.iter()
                .all(|r| r.resolution.is_none() && r.detected_at == 5)
        );
        let wins = plan_conflicts(
            &open(ConflictPolicy::GatewayWins, json!({ "surname": "Ours" })),
            &json!({}),
            5,
        );
        assert_eq!(wins[0].resolution.as_deref(), Some(resolution::OURS));
    }

    #[test]
    fn fields_are_held_from_the_sync_unless_the_vendor_wins_or_all_is_resolved() {
        let manual = open(
            ConflictPolicy::Manual,
            json!({ "surname": "Ours", "telephone": "1" }),
        );
        assert_eq!(manual.held_paths(), ["lastName", "phone"]);
        let source_wins = open(ConflictPolicy::SourceWins, json!({ "surname": "Ours" }));
        assert!(source_wins.held_paths().is_empty());
        let mut resolved = open(ConflictPolicy::Manual, json!({ "surname": "Ours" }));
        resolved.conflicts = plan_conflicts(&resolved, &json!({}), 1);
        assert_eq!(resolved.held_paths(), ["lastName"], "open conflicts hold");
        resolved.conflicts[0].resolution = Some(resolution::THEIRS.into());
        assert!(resolved.held_paths().is_empty());
    }
}
