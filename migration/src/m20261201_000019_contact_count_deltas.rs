//! `contact_count_deltas` (PostgreSQL): the counting triggers of migration 17 append their
//! statement's changes here instead of updating `contact_counts` in place; a reader adds a
//! parent's deltas to its count, and a background fold (`contacts::counts::fold_deltas`)
//! moves them into `contact_counts` every few seconds.
//!
//! Why: updating a parent's count row locks it until the transaction ends. Transactions lock
//! them in different orders across their statements (an import writes contacts, then tag
//! links: accounts, then tags; deleting a contact removes its links first: tags, then the
//! account), so two of them could deadlock, and PostgreSQL then aborts one. Appending takes no
//! lock another writer waits for: writes to the same account no longer wait for each other's
//! commits, and only the fold, one statement taking its rows in key order, updates counts.
//!
//! SQLite is unchanged: it has one writer at a time, so its row-level triggers cannot
//! deadlock.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::m20261130_000017_contact_counts::{postgres_functions, upsert_pg};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Appends a statement's `deltas` (tenant_id, parent_kind, parent_id, d), one row per parent
/// whose count changed.
fn append_pg(deltas: &str) -> String {
    format!(
        "INSERT INTO contact_count_deltas (tenant_id, parent_kind, parent_id, d) \
         SELECT tenant_id, parent_kind, parent_id, sum(d) FROM ({deltas}) deltas \
         GROUP BY tenant_id, parent_kind, parent_id HAVING sum(d) <> 0"
    )
}

/// Moves up to 10,000 committed deltas into `contact_counts`, parents in key order, and
/// returns how many it moved (column `folded`); `contacts::counts::fold_deltas` repeats it
/// until fewer were left. A bounded batch is a short statement whatever the backlog.
pub const FOLD: &str = "WITH folded AS (DELETE FROM contact_count_deltas \
     WHERE ctid = ANY(ARRAY(SELECT ctid FROM contact_count_deltas LIMIT 10000)) \
     RETURNING tenant_id, parent_kind, parent_id, d), \
     counted AS (INSERT INTO contact_counts (tenant_id, parent_kind, parent_id, live) \
     SELECT tenant_id, parent_kind, parent_id, sum(d) FROM folded \
     GROUP BY tenant_id, parent_kind, parent_id \
     ORDER BY tenant_id, parent_kind, parent_id \
     ON CONFLICT (tenant_id, parent_kind, parent_id) \
     DO UPDATE SET live = contact_counts.live + excluded.live) \
     SELECT count(*) AS folded FROM folded";

/// Deltas one [`FOLD`] moves at most.
pub const FOLD_BATCH: i64 = 10_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        // No primary key: rows are only appended, read by parent and deleted whole by the
        // fold; a key would be one more index to write per statement.
        db.execute_unprepared(
            "CREATE TABLE contact_count_deltas (tenant_id uuid NOT NULL, \
             parent_kind varchar NOT NULL, parent_id uuid NOT NULL, d bigint NOT NULL)",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX idx_contact_count_deltas_parent \
             ON contact_count_deltas (tenant_id, parent_kind, parent_id)",
        )
        .await?;
        // The fold deletes every row: a publication of all tables (logical replication)
        // refuses deletes from a table without a replica identity.
        db.execute_unprepared("ALTER TABLE contact_count_deltas REPLICA IDENTITY FULL")
            .await?;
        for function in postgres_functions("CREATE OR REPLACE FUNCTION", append_pg) {
            db.execute_unprepared(&function).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        // Writers wait until the restored functions are committed (they would otherwise
        // append to the table this drops); then nothing appends, and the fold takes all.
        db.execute_unprepared("LOCK TABLE contacts, contact_tags IN SHARE MODE")
            .await?;
        for function in postgres_functions("CREATE OR REPLACE FUNCTION", upsert_pg) {
            db.execute_unprepared(&function).await?;
        }
        db.execute_unprepared("LOCK TABLE contact_count_deltas IN EXCLUSIVE MODE")
            .await?;
        // Nothing appends any more (the lock above): repeat until a batch was short.
        loop {
            let folded = db
                .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
                    DbBackend::Postgres,
                    FOLD,
                ))
                .await?
                .map(|row| row.try_get::<i64>("", "folded"))
                .transpose()?
                .unwrap_or(0);
            if folded < FOLD_BATCH {
                break;
            }
        }
        db.execute_unprepared("DROP TABLE contact_count_deltas")
            .await?;
        Ok(())
    }
}
