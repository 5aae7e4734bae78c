//! Bulk loading for `seed`: the secondary indexes (and SQLite's search and count triggers)
//! are dropped before a large load and rebuilt after it, in the load's transaction; the
//! search index and the kept counts are then made again from the rows.
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};

use crate::error::Result;

/// From this many contacts on, [`seed_contacts`] loads in bulk: one transaction that drops
/// the secondary indexes of the contact tables (and SQLite's search trigger), inserts, then
/// builds them again in one sorted pass each. DDL is transactional on SQLite and PostgreSQL,
/// so a failed seed leaves the schema and data as they were.
pub const BULK_LOAD_THRESHOLD: usize = 50_000;

/// Index and trigger definitions dropped for a bulk load, to be run again after it.
pub(super) struct Suspended {
    create_statements: Vec<String>,
    rebuild_search: bool,
    /// The kept counts' triggers were dropped (SQLite): the counts are made again.
    recount: bool,
}

pub(super) async fn suspend_indexes(txn: &DatabaseTransaction) -> Result<Suspended> {
    let backend = txn.get_database_backend();

    let list = match backend {
        DbBackend::Sqlite => {
            "SELECT name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') \
             AND tbl_name IN ('contacts', 'contact_tags', 'contact_assignees', 'contact_keys') \
             AND sql IS NOT NULL AND name <> 'contacts_search_delete' \
             AND name <> 'contacts_search_update' ORDER BY type, name"
        }
        _ => {
            "SELECT indexname AS name, indexdef AS sql FROM pg_indexes \
             WHERE schemaname = current_schema() \
             AND tablename IN ('contacts', 'contact_tags', 'contact_assignees', 'contact_keys') \
             AND indexname NOT LIKE '%_pkey' ORDER BY indexname"
        }
    };
    let rows = txn
        .query_all_raw(Statement::from_string(backend, list))
        .await?;
    let mut create_statements = Vec::new();
    let mut rebuild_search = false;
    let mut recount = false;
    for row in rows {
        let name: String = row.try_get("", "name")?;
        let sql: String = row.try_get("", "sql")?;
        let kind = if sql.to_uppercase().starts_with("CREATE TRIGGER") {
            if name.starts_with("contact_counts_") {
                recount = true;
            } else {
                rebuild_search = true;
            }
            "TRIGGER"
        } else {
            "INDEX"
        };
        txn.execute_unprepared(&format!("DROP {kind} \"{name}\""))
            .await?;
        create_statements.push(sql);
    }
    Ok(Suspended {
        create_statements,
        rebuild_search,
        recount,
    })
}

pub(super) async fn restore_indexes(txn: &DatabaseTransaction, suspended: Suspended) -> Result<()> {
    for sql in &suspended.create_statements {
        let started = std::time::Instant::now();
        txn.execute_unprepared(sql).await?;
        tracing::debug!(elapsed = ?started.elapsed(), %sql, "index restored");
    }
    if suspended.rebuild_search {
        let started = std::time::Instant::now();
        txn.execute_unprepared("INSERT INTO contact_search(contact_search) VALUES ('rebuild')")
            .await?;
        tracing::debug!(elapsed = ?started.elapsed(), "search index rebuilt");
    }
    if suspended.recount {
        // What the counts' triggers would have added, for every parent at once.
        let started = std::time::Instant::now();
        txn.execute_unprepared("DELETE FROM contact_counts").await?;
        txn.execute_unprepared(migration::CONTACT_COUNTS).await?;
        tracing::debug!(elapsed = ?started.elapsed(), "contact counts made again");
    }
    Ok(())
}
