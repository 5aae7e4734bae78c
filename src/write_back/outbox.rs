//! The `write_backs` outbox: changes are queued in the transaction of the contact change
//! (so a change is queued exactly when it commits), claimed by workers and given their
//! outcome.
//!
//! - Queueing coalesces: a change for a contact and source that has one `PENDING` already is
//!   merged into it (the latest value of each field wins); one being delivered is left alone
//!   and the new change waits behind it.
//! - Claiming takes only the oldest undelivered change of each contact and source, so a
//!   contact's changes reach a source in order. A claim is a lease: a change `DELIVERING`
//!   whose lease lapsed (its worker died) is claimed again, with the same idempotency key.
//!   On PostgreSQL `FOR UPDATE SKIP LOCKED` lets several replicas claim without taking one
//!   change twice.

use entity::prelude::{ContactSource, ContactTag, SourceEntity, Tag, WriteBack as WriteBackRow};
use entity::{contact, contact_source, contact_tag, source, source_entity, tag, write_back};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, Statement,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::config::{Precondition, WriteBack};
use super::fields::{changed_fields, check_limits};
use crate::db::begin_write;
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

/// The writable sources of a contact, read before its write transaction (on SQLite, while
/// other writers hold the lock), so that inside the transaction a change costs one INSERT
/// per source.
pub struct Targets(Vec<Target>);

/// The writable sources of contact `contact`: no statement when the tenant has none (they
/// are cached, [`super::writable`]), else one.
pub async fn writable_targets(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    contact: Uuid,
) -> Result<Targets> {
    Ok(Targets(targets(db, tenant, contact).await?))
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
    Ok(records
        .into_iter()
        .filter_map(|record| {
            let source = writable.iter().find(|w| w.source.name == record.source)?;
            Some(Target {
                source: source.source.clone(),
                format: source.format,
                write: source.write.clone(),
                record,
            })
        })
        .collect())
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

/// Queues the change of a contact from `before` to `after` for each of its writable
/// sources, inside `txn` (the transaction of the change). Fails with `VALIDATION_FAILED`,
/// naming each field and source, when a source would refuse a value (seed 003's limits);
/// the caller's transaction then writes nothing.
pub async fn queue_update(
    txn: &impl ConnectionTrait,
    tenant: TenantId,
    targets: &Targets,
    before: &contact::Model,
    after: &contact::Model,
    now: i64,
) -> Result<()> {
    let mut failures = Vec::new();
    let mut changes = Vec::new();
    for target in &targets.0 {
        let body = changed_fields(target.format, before, after);
        if body.is_empty() {
            continue;
        }
        check_limits(target.format, &target.source.name, &body, &mut failures);
        changes.push((target, body));
    }
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    for (target, body) in changes {
        queue(txn, tenant, after.id, target, operation::UPDATE, body, now).await?;
    }
    Ok(())
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
/// when it is claimed, [`claim`]).
async fn queue(
    txn: &impl ConnectionTrait,
    tenant: TenantId,
    contact: Uuid,
    target: &Target,
    op: &str,
    body: Map<String, Value>,
    now: i64,
) -> Result<()> {
    let id = Uuid::now_v7();
    let row = write_back::Model {
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
    };
    WriteBackRow::insert(write_back::ActiveModel::from(row))
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Claims up to `limit` due changes (the oldest undelivered one of each contact and
/// source), marking them `DELIVERING` until `lease_until` and counting the attempt.
pub async fn claim(
    db: &DatabaseConnection,
    now: i64,
    lease_until: i64,
    limit: u64,
) -> Result<Vec<write_back::Model>> {
    let backend = db.get_database_backend();
    let (lock, p) = match backend {
        DbBackend::Postgres => (
            " FOR UPDATE SKIP LOCKED",
            ["$1", "$2", "$3", "$4", "$5", "$6"],
        ),
        _ => ("", ["?", "?", "?", "?", "?", "?"]),
    };
    // The due ones come from the partial index of undelivered changes.
    let sql = format!(
        "UPDATE write_backs SET state = {delivering}, next_attempt_at = {lease}, \
         attempts = attempts + 1, updated_at = {now} \
         WHERE id IN (SELECT w.id FROM write_backs w \
           WHERE w.state IN ('PENDING', 'DELIVERING') AND w.next_attempt_at <= {now2} \
           AND NOT EXISTS (SELECT 1 FROM write_backs e WHERE e.tenant_id = w.tenant_id \
             AND e.contact_id = w.contact_id AND e.source_id = w.source_id AND e.id < w.id \
             AND e.state IN ('PENDING', 'DELIVERING')) \
           ORDER BY w.next_attempt_at LIMIT {limit}{lock}) \
         RETURNING *",
        delivering = p[0],
        lease = p[1],
        now = p[2],
        now2 = p[3],
        limit = p[4],
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [
            state::DELIVERING.into(),
            lease_until.into(),
            now.into(),
            now.into(),
            (limit as i64).into(),
        ],
    );
    let (txn, _lock) = begin_write(db).await?;
    let rows = txn.query_all_raw(statement).await?;
    let mut claimed = rows
        .iter()
        .map(|row| write_back::Model::from_query_result(row, ""))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    claimed.sort_by_key(|c| c.id);
    coalesce(&txn, &mut claimed, now).await?;
    txn.commit().await?;
    Ok(claimed)
}

/// Merges into each claimed update the contact's later updates pending for the same source
/// (one request with the latest value of each field; the merged rows go). A merged body gets
/// a new idempotency key. Two statements, plus one per
/// claimed change that absorbed any.
async fn coalesce(
    txn: &impl ConnectionTrait,
    claimed: &mut [write_back::Model],
    now: i64,
) -> Result<()> {
    let updates: Vec<&write_back::Model> = claimed
        .iter()
        .filter(|c| c.operation == operation::UPDATE)
        .collect();
    if updates.is_empty() {
        return Ok(());
    }
    let later = WriteBackRow::find()
        .filter(write_back::Column::TenantId.is_in(updates.iter().map(|c| c.tenant_id)))
        .filter(write_back::Column::ContactId.is_in(updates.iter().map(|c| c.contact_id)))
        .filter(write_back::Column::State.eq(state::PENDING))
        .filter(write_back::Column::Operation.eq(operation::UPDATE))
        .order_by_asc(write_back::Column::Id)
        .all(txn)
        .await?;
    let plan = plan_coalescing(claimed, &later);
    if plan.absorbed.is_empty() {
        return Ok(());
    }
    for (index, body) in plan.bodies {
        let change = &mut claimed[index];
        change.body = body;
        // A new body is a new request (it may have been sent before under the old key).
        change.idempotency_key = Uuid::now_v7().to_string();
        WriteBackRow::update_many()
            .col_expr(write_back::Column::Body, Expr::value(change.body.clone()))
            .col_expr(
                write_back::Column::IdempotencyKey,
                Expr::value(change.idempotency_key.clone()),
            )
            .col_expr(write_back::Column::UpdatedAt, Expr::value(now))
            .filter(write_back::Column::Id.eq(change.id))
            .exec(txn)
            .await?;
    }
    WriteBackRow::delete_many()
        .filter(write_back::Column::Id.is_in(plan.absorbed))
        .exec(txn)
        .await?;
    Ok(())
}

/// What [`coalesce`] does: the new bodies of claimed changes (by index) and the later
/// changes merged into them.
#[derive(Debug, Default, PartialEq)]
struct Coalescing {
    bodies: Vec<(usize, String)>,
    absorbed: Vec<Uuid>,
}

/// Each claimed update takes, in order, the bodies of the later pending updates of its
/// tenant, contact and source (`later`, oldest first; later values win).
fn plan_coalescing(claimed: &[write_back::Model], later: &[write_back::Model]) -> Coalescing {
    let mut plan = Coalescing::default();
    for (index, change) in claimed.iter().enumerate() {
        if change.operation != operation::UPDATE {
            continue;
        }
        let mut body: Map<String, Value> = serde_json::from_str(&change.body).unwrap_or_default();
        let mut merged = false;
        for next in later.iter().filter(|l| {
            l.tenant_id == change.tenant_id
                && l.contact_id == change.contact_id
                && l.source_id == change.source_id
                && l.id > change.id
        }) {
            let fields: Map<String, Value> = serde_json::from_str(&next.body).unwrap_or_default();
            body.extend(fields);
            plan.absorbed.push(next.id);
            merged = true;
        }
        if merged {
            plan.bodies.push((index, Value::Object(body).to_string()));
        }
    }
    plan
}

/// Sets each claimed change's precondition version from its record as stored now (one
/// statement): the last sync's version, or the vendor's answer to the change before.
pub async fn refresh_versions(
    db: &impl ConnectionTrait,
    claimed: &mut [write_back::Model],
    sources: &std::collections::HashMap<Uuid, source::Model>,
) -> Result<()> {
    if claimed.is_empty() {
        return Ok(());
    }
    let records = ContactSource::find()
        .filter(contact_source::Column::TenantId.is_in(claimed.iter().map(|c| c.tenant_id)))
        .filter(contact_source::Column::Source.is_in(claimed.iter().map(|c| c.source.clone())))
        .filter(
            contact_source::Column::ExternalId.is_in(claimed.iter().map(|c| c.external_id.clone())),
        )
        .all(db)
        .await?;
    for change in claimed.iter_mut() {
        let precondition = sources
            .get(&change.source_id)
            .and_then(|s| crate::sources::catalog::settings_of(s).ok())
            .and_then(|s| s.write)
            .map(|w| w.precondition);
        let record = records.iter().find(|r| {
            r.tenant_id == change.tenant_id
                && r.source == change.source
                && r.external_id == change.external_id
        });
        if let (Some(precondition), Some(record)) = (precondition, record) {
            change.base_version = base_version(precondition, &record.record);
        }
    }
    Ok(())
}

/// What became of one delivery.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The vendor took it; `answer` is the JSON object it answered with, if any (its new
    /// version of the record).
    Delivered { answer: Option<Value> },
    /// Worth trying again (429, 5xx, no answer), not before `retry_after_ms` if the vendor
    /// said so.
    Retry {
        error: String,
        retry_after_ms: Option<i64>,
    },
    /// Refused for good (another 4xx): the vendor's message.
    Failed { error: String },
    /// Refused by the precondition (412) or as a conflict (409).
    Conflict { error: String },
}

/// The longest `Retry-After` followed (a day, in ms).
const MAX_RETRY_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// How retries are spaced: `base_ms` doubled after each attempt, up to `max_attempts`.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub base_ms: i64,
    pub max_attempts: i32,
}

impl Default for RetryPolicy {
    /// 10 attempts, 2.5 minutes apart and doubling: the last about 21 hours after the first.
    fn default() -> Self {
        Self {
            base_ms: 150_000,
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// When attempt `attempts + 1` is due after attempt `attempts` failed at `now`, or
    /// `None` when none is left.
    pub fn next_attempt(
        &self,
        attempts: i32,
        retry_after_ms: Option<i64>,
        now: i64,
    ) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
        let backoff = self.base_ms.saturating_mul(1_i64 << exponent);
        // A vendor's `Retry-After` is followed up to a day.
        let told = retry_after_ms.unwrap_or(0).clamp(0, MAX_RETRY_AFTER_MS);
        Some(now.saturating_add(backoff.max(told)))
    }
}

/// Records what became of delivered changes, in one transaction: each goes to `DELIVERED`,
/// back to `PENDING` (due again after its backoff), `FAILED` or `CONFLICT`. A delivered
/// update's values are put into the stored record's mapped state, so that the next sync
/// does not take the gateway's own write for a vendor change.
pub async fn record_outcomes(
    db: &DatabaseConnection,
    outcomes: Vec<(write_back::Model, Outcome)>,
    policy: RetryPolicy,
    now: i64,
) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let (txn, _lock) = begin_write(db).await?;
    for (change, outcome) in outcomes {
        let mut row: write_back::ActiveModel = change.clone().into();
        row.updated_at = Set(now);
        match outcome {
            Outcome::Delivered { answer } => {
                row.state = Set(state::DELIVERED.into());
                row.delivered_at = Set(Some(now));
                row.last_error = Set(None);
                if change.operation == operation::UPDATE {
                    super::echo::remember_written(&txn, &change, answer.as_ref()).await?;
                }
            }
            Outcome::Retry {
                error,
                retry_after_ms,
            } => match policy.next_attempt(change.attempts, retry_after_ms, now) {
                Some(due) => {
                    row.state = Set(state::PENDING.into());
                    row.next_attempt_at = Set(due);
                    row.last_error = Set(Some(error));
                }
                None => {
                    row.state = Set(state::FAILED.into());
                    row.last_error = Set(Some(format!(
                        "gave up after {} attempts: {error}",
                        change.attempts
                    )));
                }
            },
            Outcome::Failed { error } => {
                row.state = Set(state::FAILED.into());
                row.last_error = Set(Some(error));
            }
            Outcome::Conflict { error } => {
                row.state = Set(state::CONFLICT.into());
                row.last_error = Set(Some(error));
            }
        }
        let conflicted =
            matches!(row.state, sea_orm::ActiveValue::Set(ref s) if s == state::CONFLICT);
        // Only while this worker still holds it (not claimed again after a lapsed lease).
        let held = WriteBackRow::update_many()
            .set(row)
            .filter(write_back::Column::Id.eq(change.id))
            .filter(write_back::Column::State.eq(state::DELIVERING))
            .filter(write_back::Column::Attempts.eq(change.attempts))
            .exec(&txn)
            .await?;
        if conflicted && held.rows_affected == 1 {
            let mut refused = change.clone();
            refused.state = state::CONFLICT.into();
            refused.updated_at = now;
            super::conflicts::record_known(&txn, &refused, now).await?;
        }
    }
    txn.commit().await?;
    Ok(())
}

/// Queues a `FAILED` or `CONFLICT` change of the tenant again (`retryWriteBack`): due now,
/// its attempts counted afresh. `NOT_FOUND` for another tenant's or an unknown change;
/// `VALIDATION_FAILED` for one in another state.
pub async fn retry(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    now: i64,
) -> Result<write_back::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let change = find(&txn, tenant, id).await?;
    if change.state != state::FAILED && change.state != state::CONFLICT {
        return Err(Error::invalid(
            "id",
            format!(
                "the change is {}; only FAILED or CONFLICT changes are retried",
                change.state
            ),
        ));
    }
    WriteBackRow::update_many()
        .col_expr(write_back::Column::State, Expr::value(state::PENDING))
        .col_expr(write_back::Column::Attempts, Expr::value(0))
        .col_expr(write_back::Column::NextAttemptAt, Expr::value(now))
        .col_expr(write_back::Column::UpdatedAt, Expr::value(now))
        .filter(write_back::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    let change = find(&txn, tenant, id).await?;
    txn.commit().await?;
    Ok(change)
}

/// The tenant's change `id`.
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> Result<write_back::Model> {
    WriteBackRow::find_by_id(id)
        .filter(write_back::Column::TenantId.eq(tenant.0))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound("WriteBack".into()))
}

/// The changes queued for the contacts `ids` of the tenant, oldest first (one statement).
pub async fn of_contacts(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<Vec<write_back::Model>> {
    Ok(WriteBackRow::find()
        .filter(write_back::Column::TenantId.eq(tenant.0))
        .filter(write_back::Column::ContactId.is_in(ids.iter().copied()))
        .order_by_asc(write_back::Column::Id)
        .all(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: u128, contact: u128, source: u128, body: &str) -> write_back::Model {
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

    #[test]
    fn later_changes_of_a_contact_to_a_source_merge_into_the_claimed_one() {
        let claimed = [
            change(1, 10, 100, r#"{"surname":"A","role":"R"}"#),
            change(2, 20, 100, r#"{"role":"X"}"#),
        ];
        let later = [
            change(3, 10, 100, r#"{"surname":"B"}"#),
            change(4, 10, 200, r#"{"surname":"other source"}"#),
            change(5, 10, 100, r#"{"notes":null}"#),
        ];
        let plan = plan_coalescing(&claimed, &later);
        assert_eq!(plan.absorbed, [Uuid::from_u128(3), Uuid::from_u128(5)]);
        assert_eq!(plan.bodies.len(), 1);
        let (index, body) = &plan.bodies[0];
        assert_eq!(*index, 0);
        let body: Value = serde_json::from_str(body).expect("json");
        assert_eq!(
            body,
            serde_json::json!({ "surname": "B", "role": "R", "notes": null })
        );
        assert_eq!(
            plan_coalescing(&claimed[1..], &later),
            Coalescing::default()
        );
    }

    #[test]
    fn retries_back_off_doubling_and_wait_at_least_as_told() {
        let policy = RetryPolicy {
            base_ms: 1_000,
            max_attempts: 4,
        };
        assert_eq!(policy.next_attempt(1, None, 0), Some(1_000));
        assert_eq!(policy.next_attempt(2, None, 0), Some(2_000));
        assert_eq!(policy.next_attempt(3, None, 0), Some(4_000));
        assert_eq!(policy.next_attempt(2, Some(30_000), 0), Some(30_000));
        assert_eq!(policy.next_attempt(4, None, 0), None, "no attempt left");
        let day: i64 = (1..10)
            .map(|n| RetryPolicy::default().next_attempt(n, None, 0).unwrap_or(0))
            .sum();
        assert!((16 * 3_600_000..24 * 3_600_000).contains(&day), "{day}");
    }

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

/// How many changes of the whole queue are in each state but `DELIVERED` (every state
/// listed, zero included).
pub async fn depth(db: &DatabaseConnection) -> Result<Vec<(String, i64)>> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT state, COUNT(*) AS n FROM write_backs \
             WHERE state IN ('PENDING', 'DELIVERING', 'FAILED', 'CONFLICT') GROUP BY state",
        ))
        .await?;
    let mut depth: Vec<(String, i64)> = [
        state::PENDING,
        state::DELIVERING,
        state::FAILED,
        state::CONFLICT,
    ]
    .into_iter()
    .map(|s| (s.to_string(), 0))
    .collect();
    for row in rows {
        let name: String = row.try_get("", "state")?;
        let n: i64 = row.try_get("", "n")?;
        if let Some(entry) = depth.iter_mut().find(|(s, _)| *s == name) {
            entry.1 = n;
        }
    }
    Ok(depth)
}

/// What `writeBacks` lists: changes in one state, to one source, of one contact (each
/// optional).
#[derive(Clone, Debug, Default)]
pub struct QueueFilter {
    pub state: Option<String>,
    pub source: Option<String>,
    pub contact: Option<Uuid>,
}

/// The order of `writeBacks`: newest first (ids are UUIDv7).
pub fn ordering() -> crate::paging::Ordering<write_back::Model> {
    use crate::paging::{Direction, KeyValue, Ordering, SortKey};
    use sea_orm::IntoSimpleExpr;
    let by_creation = SortKey {
        name: "createdAt",
        expr: write_back::Column::CreatedAt.into_simple_expr(),
        direction: Direction::Desc,
        value: |m: &write_back::Model| KeyValue::Int(m.created_at),
        text: false,
    };
    Ordering::dedup(
        [],
        by_creation,
        write_back::Column::Id.into_simple_expr(),
        |m| m.id,
    )
}

fn filtered(tenant: TenantId, filter: &QueueFilter) -> sea_orm::Select<WriteBackRow> {
    let mut select = WriteBackRow::find().filter(write_back::Column::TenantId.eq(tenant.0));
    if let Some(state) = &filter.state {
        select = select.filter(write_back::Column::State.eq(state.clone()));
    }
    if let Some(source) = &filter.source {
        select = select.filter(write_back::Column::Source.eq(source.clone()));
    }
    if let Some(contact) = filter.contact {
        select = select.filter(write_back::Column::ContactId.eq(contact));
    }
    select
}

/// A page of the tenant's queue, newest first.
pub async fn page(
    db: &DatabaseConnection,
    tenant: TenantId,
    filter: &QueueFilter,
    args: &crate::paging::PageArgs,
) -> Result<crate::paging::Page<write_back::Model>> {
    crate::paging::fetch_page(db, filtered(tenant, filter), &ordering(), args).await
}

/// How many changes of the tenant's queue match `filter`.
pub async fn count(db: &DatabaseConnection, tenant: TenantId, filter: &QueueFilter) -> Result<i64> {
    use sea_orm::PaginatorTrait;
    Ok(filtered(tenant, filter).count(db).await? as i64)
}
