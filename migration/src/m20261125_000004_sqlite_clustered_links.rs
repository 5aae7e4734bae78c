//! On SQLite, the tables that are nothing but their primary key (tag links, assignees,
//! identity keys, vendor ids) become `WITHOUT ROWID` tables: the rows live in the primary
//! key's B-tree instead of in a rowid table plus an index that repeats every column. That
//! halves their size and the B-tree writes of every insert, and makes each lookup by key one
//! descent instead of two. PostgreSQL is left as it is (its tables are heaps either way).
//!
//! SQLite cannot change this in place, so each table is rebuilt under a new name, filled,
//! and renamed; its indexes are created again from their stored definitions.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables rebuilt. Nothing references them, so they can be dropped with foreign keys on.
const TABLES: [&str; 4] = [
    "contact_tags",
    "contact_assignees",
    "contact_keys",
    "source_entities",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild_all(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rebuild_all(manager, false).await
    }

    /// All four tables or none: SQLite migrations otherwise run outside a transaction.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

async fn rebuild_all(manager: &SchemaManager<'_>, without_rowid: bool) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    for table in TABLES {
        rebuild(manager.get_connection(), table, without_rowid).await?;
    }
    Ok(())
}

/// Rebuilds `table` with or without a rowid, keeping its columns, rows and indexes.
async fn rebuild(db: &impl ConnectionTrait, table: &str, without_rowid: bool) -> Result<(), DbErr> {
    let definitions = |kind: &str| {
        Statement::from_sql_and_values(
            DbBackend::Sqlite,
            "SELECT sql FROM sqlite_master WHERE type = ? AND tbl_name = ? AND sql IS NOT NULL \
             ORDER BY name",
            [kind.into(), table.into()],
        )
    };
    let Some(create) = db.query_one_raw(definitions("table")).await? else {
        return Err(DbErr::Migration(format!("table {table} not found")));
    };
    let create: String = create.try_get_by_index(0)?;
    let indexes: Vec<String> = db
        .query_all_raw(definitions("index"))
        .await?
        .iter()
        .map(|row| row.try_get_by_index(0))
        .collect::<Result<_, _>>()?;

    let body = create
        .find('(')
        .map(|open| create[open..].trim_end())
        .ok_or_else(|| DbErr::Migration(format!("unexpected definition of {table}: {create}")))?;
    let body = body
        .strip_suffix("WITHOUT ROWID")
        .unwrap_or(body)
        .trim_end();
    let suffix = if without_rowid { " WITHOUT ROWID" } else { "" };
    let rebuilt = format!("{table}_rebuilt");
    for sql in [
        format!("CREATE TABLE \"{rebuilt}\" {body}{suffix}"),
        format!("INSERT INTO \"{rebuilt}\" SELECT * FROM \"{table}\""),
        format!("DROP TABLE \"{table}\""),
        format!("ALTER TABLE \"{rebuilt}\" RENAME TO \"{table}\""),
    ] {
        db.execute_unprepared(&sql).await?;
    }
    for sql in indexes {
        db.execute_unprepared(&sql).await?;
    }
    Ok(())
}
