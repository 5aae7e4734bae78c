//! What the database holds of a batch: its records as stored by earlier imports, and the
//! contacts of those that changed.
use std::collections::HashMap;

use entity::prelude::{Contact, ContactSource};
use entity::{contact, contact_source};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QuerySelect, Statement,
};
use uuid::Uuid;

use super::map::Incoming;
use super::plan::Stored;
use crate::error::Result;
use crate::tenancy::TenantId;

/// Vendor ids, or contact ids, per statement.
const IDS_PER_STATEMENT: usize = 1_000;

/// Which of `records` (vendor id, fingerprint) the source holds exactly so already: what a
/// sync run need not map, validate or write again. One statement per
/// [`IDS_PER_STATEMENT`] ids, along the `(tenant_id, source, external_id)` index.
pub async fn unchanged_records(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    source: &str,
    records: &[(String, String)],
) -> Result<std::collections::HashSet<String>> {
    let mut unchanged = std::collections::HashSet::new();
    for chunk in records.chunks(IDS_PER_STATEMENT) {
        let wanted: HashMap<&str, &str> = chunk
            .iter()
            .map(|(id, hash)| (id.as_str(), hash.as_str()))
            .collect();
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        let rows: Vec<(String, String)> = if db.get_database_backend() == DbBackend::Postgres {
            // One index lookup per id, as in `stored_chunk`: an `IN` list on a table not yet
            // analysed (a first run) is planned as a scan.
            let sql = "SELECT s.external_id, s.record_hash \
                       FROM json_array_elements_text($3::json) AS wanted(external_id) \
                       CROSS JOIN LATERAL (SELECT external_id, record_hash FROM contact_sources c \
                       WHERE c.tenant_id = $1 AND c.source = $2 \
                       AND c.external_id = wanted.external_id LIMIT 1) s";
            let statement = Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                [
                    tenant.0.into(),
                    source.into(),
                    serde_json::to_string(&ids).unwrap_or_default().into(),
                ],
            );
            db.query_all_raw(statement)
                .await?
                .iter()
                .map(|row| {
                    Ok((
                        row.try_get::<String>("", "external_id")?,
                        row.try_get::<String>("", "record_hash")?,
                    ))
                })
                .collect::<std::result::Result<_, sea_orm::DbErr>>()?
        } else {
            ContactSource::find()
                .select_only()
                .columns([
                    contact_source::Column::ExternalId,
                    contact_source::Column::RecordHash,
                ])
                .filter(contact_source::Column::TenantId.eq(tenant.0))
                .filter(contact_source::Column::Source.eq(source))
                .filter(contact_source::Column::ExternalId.is_in(ids))
                .into_tuple()
                .all(db)
                .await?
        };
        unchanged.extend(
            rows.into_iter()
                .filter(|(id, hash)| wanted.get(id.as_str()) == Some(&hash.as_str()))
                .map(|(id, _)| id),
        );
    }
    Ok(unchanged)
}

/// The stored records of the batch's vendor ids, by vendor id.
pub(super) async fn stored_records(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    source: &str,
    batch: &[Incoming],
) -> Result<Stored> {
    let mut stored = Stored::new();
    for chunk in batch.chunks(IDS_PER_STATEMENT) {
        let ids: Vec<&str> = chunk
            .iter()
            .map(|i| i.mapped.external_id.as_str())
            .collect();
        let rows = stored_chunk(txn, tenant, source, &ids).await?;
        stored.extend(rows.into_iter().map(|r| (r.external_id.clone(), r)));
    }
    Ok(stored)
}

/// The stored records of `source` with these vendor ids, by the unique index
/// (tenant_id, source, external_id).
///
/// On PostgreSQL the ids arrive as one JSON array, each looked up by itself (a LATERAL
/// subquery with `LIMIT 1` cannot be flattened into a join): with a long `IN` list, or a
/// join, the planner trusts statistics that a bulk import has just made stale and reads every
/// record of the source once per batch, which made a 100k import quadratic. One index probe
/// per id does not depend on statistics.
async fn stored_chunk(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    source: &str,
    external_ids: &[&str],
) -> Result<Vec<contact_source::Model>> {
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        let sql = "SELECT s.* FROM json_array_elements_text($3::json) AS wanted(external_id) \
                   CROSS JOIN LATERAL (SELECT * FROM contact_sources c WHERE c.tenant_id = $1 \
                   AND c.source = $2 AND c.external_id = wanted.external_id LIMIT 1) s";
        let statement = Statement::from_sql_and_values(
            backend,
            sql,
            [
                tenant.0.into(),
                source.into(),
                serde_json::to_string(external_ids)
                    .unwrap_or_default()
                    .into(),
            ],
        );
        return Ok(ContactSource::find()
            .from_raw_sql(statement)
            .all(txn)
            .await?);
    }
    Ok(ContactSource::find()
        .filter(contact_source::Column::TenantId.eq(tenant.0))
        .filter(contact_source::Column::Source.eq(source))
        .filter(contact_source::Column::ExternalId.is_in(external_ids.iter().copied()))
        .all(txn)
        .await?)
}

/// The contacts `ids` of `tenant`, by id.
pub(super) async fn contacts(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, contact::Model>> {
    let mut contacts = HashMap::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        contacts.extend(crate::tenancy::find_by_ids::<Contact>(txn, tenant, chunk).await?);
    }
    Ok(contacts)
}
