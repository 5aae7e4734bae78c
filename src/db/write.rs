//! Write transactions: one writer at a time on SQLite, queued in this process.
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbBackend, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};

use crate::error::Result;

/// SQLite has one writer at a time: writers of this process queue here, in order, rather
/// than in SQLite's busy handler, which sleeps in growing steps (and made the slowest 1% of
/// concurrent updates take over 300 ms).
static SQLITE_WRITER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held for the life of a write transaction on SQLite (see [`begin_write`]).
pub type WriteLock = Option<tokio::sync::MutexGuard<'static, ()>>;

/// Starts a write transaction; keep the lock until it is committed or dropped. On SQLite it
/// waits its turn among this process's writers and then takes the database's write lock at
/// once (`BEGIN IMMEDIATE`), so a read never has to turn into a write mid-transaction.
pub async fn begin_write(db: &DatabaseConnection) -> Result<(DatabaseTransaction, WriteLock)> {
    let lock = match db.get_database_backend() {
        DbBackend::Sqlite => Some(SQLITE_WRITER.lock().await),
        _ => None,
    };
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    Ok((txn, lock))
}
