//! Step 5, writing a [`BatchPlan`]: multi-row INSERTs for what is new, one UPDATE per
//! changed contact (compare-and-set on `updatedAt`, its assignees and keys following it),
//! one DELETE for the tag links removed and one UPDATE for the stored records replaced.
use entity::prelude::{Contact, ContactAssignee, ContactSource, ContactTag};
use entity::{contact_source, contact_tag};
use sea_orm::sea_query::{
    Alias, Asterisk, DeleteStatement, Expr, ExprTrait, IntoIden, Query, TableRef, UpdateStatement,
    ValueTuple,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use uuid::Uuid;

use super::ROWS_PER_INSERT;
use super::plan::BatchPlan;
use crate::contacts::identity_keys::insert_key_rows;
use crate::contacts::write::write_contact;
use crate::db::{insert_all, insert_all_skipping_existing};
use crate::error::Result;
use crate::tenancy::TenantId;

/// Tag links per DELETE (two parameters each): a batch's are one statement.
const LINKS_PER_DELETE: usize = 5_000;
/// Stored records per UPDATE (four parameters each): a batch's are one statement.
const RECORDS_PER_UPDATE: usize = super::RECORDS_PER_TRANSACTION;

/// Writes `plan` inside `txn` (the caller commits).
pub(super) async fn write_plan(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    plan: BatchPlan,
    now: i64,
) -> Result<()> {
    let BatchPlan {
        new_contacts,
        new_assignees,
        new_keys,
        new_sources,
        changed,
        new_links,
        removed_links,
        source_updates,
        counts: _,
    } = plan;
    let created = new_contacts
        .iter()
        .map(|c| crate::events::event(tenant, c.id, crate::events::kind::CREATED, now))
        .collect();
    insert_all::<Contact>(txn, new_contacts, ROWS_PER_INSERT).await?;
    insert_all::<ContactAssignee>(txn, new_assignees, ROWS_PER_INSERT).await?;
    insert_key_rows(txn, new_keys).await?;
    insert_all::<ContactSource>(txn, new_sources, ROWS_PER_INSERT).await?;
    // Each writes its own assignee and key rows when those changed.
    for (current, updated) in changed {
        write_contact(txn, &current, updated).await?;
    }
    for chunk in removed_links.chunks(LINKS_PER_DELETE) {
        txn.execute(&delete_links(tenant, chunk)).await?;
    }
    // A changed contact may have the link already (from the API or another source).
    insert_all_skipping_existing::<ContactTag>(txn, new_links, ROWS_PER_INSERT).await?;
    for chunk in source_updates.chunks(RECORDS_PER_UPDATE) {
        let result = txn.execute(&update_records(tenant, chunk, now)).await?;
        // As an UPDATE of each row would, fail when one of them is gone.
        if result.rows_affected() != chunk.len() as u64 {
            return Err(DbErr::RecordNotUpdated.into());
        }
    }
    // Last, so that the events' `seq`s are taken just before the commit.
    crate::events::record(txn, created).await
}

/// `DELETE FROM contact_tags WHERE tenant_id = ? AND (contact_id, tag_id) IN (VALUES ...)`:
/// the links `(contact id, tag id)` of `tenant`.
fn delete_links(tenant: TenantId, links: &[(Uuid, Uuid)]) -> DeleteStatement {
    let pairs = links
        .iter()
        .map(|(contact, tag)| ValueTuple::Two((*contact).into(), (*tag).into()));
    // SQLite compares a row value only with a subquery's rows, not with a list.
    let removed = Query::select()
        .column(Asterisk)
        .from_values(pairs, Alias::new("removed"))
        .to_owned();
    Query::delete()
        .from_table(ContactTag)
        .and_where(Expr::col(contact_tag::Column::TenantId).eq(tenant.0))
        .and_where(
            Expr::tuple([
                Expr::col(contact_tag::Column::ContactId),
                Expr::col(contact_tag::Column::TagId),
            ])
            .in_subquery(removed),
        )
        .to_owned()
}

/// `UPDATE contact_sources SET record, mapped, record_hash, fetched_at FROM (VALUES ...)`:
/// the stored records `rows` (of `tenant`) get their new raw record, mapped state and hash,
/// fetched at `now`.
fn update_records(tenant: TenantId, rows: &[contact_source::Model], now: i64) -> UpdateStatement {
    use contact_source::Column;
    let values = Alias::new("v");
    let value_of = |column: &str| Expr::col((values.clone(), Alias::new(column)));
    let list = rows
        .iter()
        .map(|r| {
            ValueTuple::Many(vec![
                r.id.into(),
                r.record.clone().into(),
                r.mapped.clone().into(),
                r.record_hash.clone().into(),
            ])
        })
        .collect();
    Query::update()
        .table(ContactSource)
        .value(Column::Record, value_of("column2"))
        .value(Column::Mapped, value_of("column3"))
        .value(Column::RecordHash, value_of("column4"))
        .value(Column::FetchedAt, now)
        .from(TableRef::ValuesList(list, values.clone().into_iden()))
        .and_where(Expr::col((ContactSource, Column::TenantId)).eq(tenant.0))
        .and_where(Expr::col((ContactSource, Column::Id)).equals((values, Alias::new("column1"))))
        .to_owned()
}

#[cfg(test)]
mod tests {
    use sea_orm::sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};

    use super::*;

    #[test]
    fn removed_links_are_one_delete() {
        let id = Uuid::from_u128;
        let statement = delete_links(TenantId(id(1)), &[(id(2), id(3)), (id(4), id(5))]);
        let (sql, values) = statement.build(SqliteQueryBuilder);
        assert_eq!(
            sql,
            r#"DELETE FROM "contact_tags" WHERE "tenant_id" = ? AND ("contact_id", "tag_id") IN (SELECT * FROM (VALUES (?, ?), (?, ?)) AS "removed")"#
        );
        let expected: Vec<sea_orm::Value> = [1, 2, 3, 4, 5].map(|n| id(n).into()).to_vec();
        assert_eq!(values.0, expected);
        let (sql, _) = statement.build(PostgresQueryBuilder);
        assert_eq!(
            sql,
            r#"DELETE FROM "contact_tags" WHERE "tenant_id" = $1 AND ("contact_id", "tag_id") IN (SELECT * FROM (VALUES ($2, $3), ($4, $5)) AS "removed")"#
        );
    }

    #[test]
    fn replaced_records_are_one_update() {
        let row = |n: u128| contact_source::Model {
            id: Uuid::from_u128(n),
            tenant_id: Uuid::from_u128(1),
            contact_id: Uuid::from_u128(100 + n),
            source: "crm".into(),
            format: "client-contacts".into(),
            external_id: n.to_string(),
            record: format!("record {n}"),
            mapped: format!("mapped {n}"),
            record_hash: format!("hash {n}"),
            fetched_at: 0,
            deleted_at: None,
        };
        let statement = update_records(TenantId(Uuid::from_u128(1)), &[row(2), row(3)], 42);
        let (sql, values) = statement.build(SqliteQueryBuilder);
        assert_eq!(
            sql,
            r#"UPDATE "contact_sources" SET "record" = "v"."column2", "mapped" = "v"."column3", "record_hash" = "v"."column4", "fetched_at" = ? FROM (VALUES (?, ?, ?, ?), (?, ?, ?, ?)) AS "v" WHERE "contact_sources"."tenant_id" = ? AND "contact_sources"."id" = "v"."column1""#
        );
        let expected: Vec<sea_orm::Value> = vec![
            42i64.into(),
            Uuid::from_u128(2).into(),
            "record 2".into(),
            "mapped 2".into(),
            "hash 2".into(),
            Uuid::from_u128(3).into(),
            "record 3".into(),
            "mapped 3".into(),
            "hash 3".into(),
            Uuid::from_u128(1).into(),
        ];
        assert_eq!(values.0, expected);
        let (sql, _) = statement.build(PostgresQueryBuilder);
        assert!(sql.starts_with(r#"UPDATE "contact_sources" SET "record" = "v"."column2""#));
        assert!(sql.contains(r#"FROM (VALUES ($2, $3, $4, $5), ($6, $7, $8, $9)) AS "v""#));
    }
}
