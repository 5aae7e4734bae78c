//! Claiming queued changes: only the oldest pending or in-flight change of each contact and
//! source, so a contact's changes reach a source in order, with the later ones of the same
//! contact and source merged in. A claim is a lease: a change `DELIVERING` whose lease lapsed
//! (its worker died) is claimed again, with the same idempotency key. On PostgreSQL
//! `FOR UPDATE SKIP LOCKED` lets several replicas claim without taking one change twice.

use entity::prelude::{ContactSource, WriteBack as WriteBackRow};
use entity::{contact_source, source, write_back};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, Statement,
};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::outbox::{base_version, operation, state};
use crate::db::begin_write;
use crate::error::Result;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: u128, contact: u128, source: u128, body: &str) -> write_back::Model {
        crate::write_back::outbox::test_change(id, contact, source, body)
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
}
