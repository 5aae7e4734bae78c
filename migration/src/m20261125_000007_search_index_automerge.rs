//! On SQLite, the substring-search index (the FTS5 table `contact_search`) merges its
//! segments less eagerly: `automerge` goes from FTS5's default of 4 to 16.
//!
//! FTS5 writes the rows of each INSERT statement as a new small segment and, with
//! `automerge = 4`, merges segments whenever four of a level exist. A bulk import writes
//! contacts 500 to a statement, so it spent about as long merging search segments as it
//! spent on the contacts' own table and B-tree indexes: 1.1 s of the 2.35 s that 100,000
//! contacts took in 2,000-contact transactions; 0.55 s less with 16. A search reads at most
//! 16 instead of 4 segments of a level before they are merged.
//!
//! PostgreSQL's trigram index is a GIN index and has no such setting.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Sets the search index's `automerge`.
async fn set_automerge(manager: &SchemaManager<'_>, segments: u32) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "INSERT INTO contact_search (contact_search, rank) VALUES ('automerge', {segments})"
        ))
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_automerge(manager, 16).await
    }

    /// Back to FTS5's default.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_automerge(manager, 4).await
    }
}
