//! Write transactions: one writer at a time on SQLite, queued in this process.
use sea_orm::sea_query::{
    Alias, CommonTableExpression, InsertStatement, Query, SqliteQueryBuilder, UpdateStatement,
    Values,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, SqliteTransactionMode,
    Statement, StatementBuilder, TransactionOptions, TransactionTrait,
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

/// Waits until this process's SQLite writer of the moment (if any) has committed or rolled
/// back.
pub async fn writers_done() {
    drop(SQLITE_WRITER.lock().await);
}

/// Runs `inserts` (each of exactly the given number of rows) and then `update` in one round
/// trip, inside `txn`: on PostgreSQL as one statement (the INSERTs as data-modifying
/// `WITH`s), on SQLite as statements sent together. Returns the number of rows `update`
/// changed.
///
/// Each statement a write sends costs a round trip (on SQLite, two thread switches), which
/// costs more than the row it writes: outbox and event rows ride along with their change.
pub async fn insert_then_update(
    txn: &DatabaseTransaction,
    inserts: Vec<(InsertStatement, u64)>,
    update: UpdateStatement,
) -> Result<u64> {
    let backend = txn.get_database_backend();
    match backend {
        DbBackend::Sqlite => {
            let mut sql = String::new();
            let mut values = Vec::new();
            let mut inserted = 0;
            for (insert, rows) in inserts {
                let (text, Values(more)) = insert.build(SqliteQueryBuilder);
                sql.push_str(&text);
                sql.push_str("; ");
                values.extend(more);
                inserted += rows;
            }
            let (text, Values(more)) = update.build(SqliteQueryBuilder);
            sql.push_str(&text);
            values.extend(more);
            let statement = Statement::from_sql_and_values(backend, sql, values);
            // SQLite reports the rows changed by all the statements.
            let changed = txn.execute_raw(statement).await?.rows_affected();
            Ok(changed.saturating_sub(inserted))
        }
        _ => {
            let mut with = Query::with();
            for (i, (insert, _)) in inserts.into_iter().enumerate() {
                with.cte(
                    CommonTableExpression::new()
                        .query(insert)
                        .table_name(Alias::new(format!("inserted_{i}")))
                        .to_owned(),
                );
            }
            let statement = StatementBuilder::build(&update.with(with), &backend);
            Ok(txn.execute_raw(statement).await?.rows_affected())
        }
    }
}
