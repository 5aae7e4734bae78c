//! SQLite indexes for `search` (issue 19, target 6): the order a search walks carries the
//! search text, and the live contacts' row ids are a small index of their own.
//!
//! - SQLite: `idx_contacts_created` (the default order, newest first) gains `search_text` as
//!   its last column: a search that walks the contacts in order until it has a page tests
//!   each contact's text in the index and reads only the rows it returns. (A second, partial
//!   index of the same order was not chosen by SQLite's planner, which does not count a
//!   condition it can test in the index.) The index leaves out `archived_at`, so that it does
//!   not cover a count either: see the next one.
//! - SQLite: `idx_contacts_live`, `(tenant_id) WHERE archived_at IS NULL AND
//!   length(search_text) >= 0`, whose entries end in the row id: a search driven by the
//!   trigram index (`contact_search`) checks each matching row id's tenant and liveness here
//!   instead of in the contact's row. The always-true `length(search_text) >= 0` is there so
//!   that only statements that say it (the search's, `contacts::search::condition`) can use
//!   the index: without statistics, SQLite's planner preferred this small index to the
//!   partial ones of other filters (`idx_contacts_test`) and read every live contact. (`search_text
//!   IS NOT NULL` would not do: SQLite drops that term of a query, the column being NOT NULL.)
//! - SQLite: `idx_contacts_test` (test contacts only) gains `is_test_contact` after the
//!   tenant. Without statistics SQLite's planner ranks indexes by the columns a query pins
//!   with `=`; with only the tenant pinned it took the wider `idx_contacts_created` for
//!   `isTestContact: true` and read every contact.
//! - PostgreSQL: nothing. (An index of the default order `INCLUDE (archived_at,
//!   search_text)`, read index-only by a page's key subquery, took a rare 1–2 character
//!   search at a million contacts from 600–900 to 460 ms, but its planner then preferred it
//!   for other filters on small tables; not worth it.)
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: &[&str] = match manager.get_database_backend() {
            DbBackend::Postgres => &[],
            _ => &[
                "DROP INDEX idx_contacts_created",
                "CREATE INDEX idx_contacts_created ON contacts \
                 (tenant_id, created_at, id, search_text)",
                "CREATE INDEX idx_contacts_live ON contacts (tenant_id) \
                 WHERE archived_at IS NULL AND length(search_text) >= 0",
                "DROP INDEX idx_contacts_test",
                "CREATE INDEX idx_contacts_test ON contacts \
                 (tenant_id, is_test_contact, created_at, id) WHERE is_test_contact",
            ],
        };
        run(manager, statements).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: &[&str] = match manager.get_database_backend() {
            DbBackend::Postgres => &[],
            _ => &[
                "DROP INDEX idx_contacts_live",
                "DROP INDEX idx_contacts_test",
                "CREATE INDEX idx_contacts_test ON contacts (tenant_id, created_at, id) \
                 WHERE is_test_contact",
                "DROP INDEX idx_contacts_created",
                "CREATE INDEX idx_contacts_created ON contacts (tenant_id, created_at, id)",
            ],
        };
        run(manager, statements).await
    }

    /// All or none.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    let db = manager.get_connection();
    for sql in statements {
        db.execute_unprepared(sql).await?;
    }
    Ok(())
}
