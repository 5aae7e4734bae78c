//! Accounts, businesses and tags get `name_folded`: the name in Unicode lower case
//! (`entity::fold`), which their `search` filter matches against. SQL's `lower()` folds only
//! ASCII on SQLite and under PostgreSQL's C collations, so "Ärzte" was not found by "ärzte";
//! folding in Rust gives both databases the same rule, for the stored text and the needle.
//!
//! Existing rows are folded here; on PostgreSQL a trigram index serves the substring search.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables with a searchable name.
const TABLES: [&str; 3] = ["accounts", "businesses", "tags"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let txn = db.begin().await?;
        for table in TABLES {
            txn.execute_unprepared(&format!(
                "ALTER TABLE {table} ADD COLUMN name_folded TEXT NOT NULL DEFAULT ''"
            ))
            .await?;
            let rows = txn
                .query_all_raw(Statement::from_string(
                    backend,
                    format!("SELECT id, name FROM {table}"),
                ))
                .await?;
            let placeholder = |n: usize| match backend {
                DbBackend::Postgres => format!("${n}"),
                _ => "?".to_string(),
            };
            let update = format!(
                "UPDATE {table} SET name_folded = {} WHERE id = {}",
                placeholder(1),
                placeholder(2)
            );
            for row in rows {
                let id: uuid::Uuid = row.try_get("", "id")?;
                let name: String = row.try_get("", "name")?;
                txn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    &update,
                    [entity::fold(&name).into(), id.into()],
                ))
                .await?;
            }
            if backend == DbBackend::Postgres {
                txn.execute_unprepared(&format!(
                    "CREATE INDEX idx_{table}_name_search ON {table} \
                     USING gin (tenant_id, name_folded gin_trgm_ops)"
                ))
                .await?;
            }
        }
        txn.commit().await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for table in TABLES {
            if manager.get_database_backend() == DbBackend::Postgres {
                db.execute_unprepared(&format!("DROP INDEX idx_{table}_name_search"))
                    .await?;
            }
            db.execute_unprepared(&format!("ALTER TABLE {table} DROP COLUMN name_folded"))
                .await?;
        }
        Ok(())
    }
}
