//! Connecting to the database (SQLite or PostgreSQL), bringing its schema up to date, and
//! inserting rows in bulk.
mod write;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ActiveModelTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    EntityTrait, IdenStatic, IntoActiveModel, Iterable, QueryTrait, Statement,
};

pub use write::{WriteLock, begin_write};

use crate::error::Error;
use crate::metrics::Metrics;

/// Opens a pool on `url`. SQLite gets WAL, a busy timeout and foreign keys; every
/// statement is counted in `metrics` when given.
pub async fn connect(url: &str, metrics: Option<&Metrics>) -> crate::Result<DatabaseConnection> {
    connect_with(url, metrics, true, None).await
}

/// How long a request waits for a pooled connection before it is answered 503
/// `SERVICE_UNAVAILABLE`: long enough to queue behind a burst, short enough that an outage
/// is reported at once instead of after the request's whole time limit.
pub const SERVING_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens the pool `serve` answers requests from: as [`connect`], except that getting a
/// connection gives up after [`SERVING_ACQUIRE_TIMEOUT`], and on PostgreSQL every statement
/// is cancelled by the server after `statement_timeout` (the request's time limit, counted
/// from the statement's start: a statement outlives the request that gave up on it by at
/// most that much, not for ever) and runs without JIT
/// compilation (which costs these short statements more than it saves: a 10,000-branch
/// filter once spent minutes and gigabytes compiling).
pub async fn connect_for_serving(
    url: &str,
    metrics: &Metrics,
    statement_timeout: Duration,
) -> crate::Result<DatabaseConnection> {
    connect_with(url, Some(metrics), true, Some(statement_timeout)).await
}

/// Opens a pool for a bulk import: as [`connect`], except that on SQLite a commit does not
/// also copy the WAL into the database file (`wal_autocheckpoint = 0`). The importer runs a
/// [`WalCheckpointer`] instead, which does that on another connection, and so on the other
/// core, while the next batch is written.
pub async fn connect_for_import(url: &str) -> crate::Result<DatabaseConnection> {
    connect_with(url, None, false, None).await
}

async fn connect_with(
    url: &str,
    metrics: Option<&Metrics>,
    checkpoint_on_commit: bool,
    serving_statement_timeout: Option<Duration>,
) -> crate::Result<DatabaseConnection> {
    let sqlite = SqliteSettings {
        journal: SqliteJournalMode::Wal,
        busy_timeout: Duration::from_secs(10),
        // 64 MiB of page cache per connection instead of SQLite's 2 MiB: bulk writes touch
        // some twenty indexes per contact.
        cache_kib: 65_536,
        foreign_keys: true,
        mmap_bytes: 0,
        checkpoint_on_commit,
    };
    let connections = if url.starts_with("sqlite") { 8 } else { 16 };
    let mut options = options(url, connections, sqlite);
    if let Some(timeout) = serving_statement_timeout {
        let millis = timeout.as_millis().to_string();
        options
            .acquire_timeout(SERVING_ACQUIRE_TIMEOUT)
            .map_sqlx_postgres_opts(move |opts| {
                opts.options([("statement_timeout", millis.as_str()), ("jit", "off")])
            });
    }
    let mut db = Database::connect(options).await?;
    if let Some(metrics) = metrics {
        let metrics = metrics.clone();
        db.set_metric_callback(move |info| {
            metrics.sql_statements.inc();
            tracing::debug!(target: "contact_gateway::sql", elapsed = ?info.elapsed, failed = info.failed, sql = %info.statement.sql);
            if info.failed {
                metrics.sql_errors.inc();
            }
            metrics.sql_duration.observe(info.elapsed.as_secs_f64());
        });
    }
    Ok(db)
}

/// Opens one connection for a bulk load. On SQLite it switches the file from WAL to a
/// rollback journal while it is open: pages a load appends are then written once, into the
/// database file, instead of into the WAL and again when it is checkpointed, and a failed load
/// still rolls back. This needs the file to itself: `None` when another connection has it open
/// (or on PostgreSQL), and the caller loads through its usual pool. The next [`connect`] turns
/// WAL back on. The connection does not check foreign keys: it is for loaders whose rows
/// reference only what they have themselves read or written.
pub async fn connect_for_bulk_load(url: &str) -> Option<DatabaseConnection> {
    if !url.starts_with("sqlite") {
        return None;
    }
    let sqlite = SqliteSettings {
        journal: SqliteJournalMode::Delete,
        busy_timeout: Duration::from_secs(1),
        cache_kib: 262_144,
        // A bulk load only writes rows that reference parents it has just read or written
        // itself (see `demo::seed_contacts`); checking each reference costs a B-tree descent
        // per row, a tenth of a million-contact load.
        foreign_keys: false,
        // Rebuilding each index reads the whole contacts table again: through a memory map
        // instead of a read() per page.
        mmap_bytes: 8 << 30,
        // No WAL in this journal mode.
        checkpoint_on_commit: true,
    };
    match Database::connect(options(url, 1, sqlite)).await {
        Ok(db) => Some(db),
        Err(err) => {
            tracing::warn!(%err, "the database is in use; bulk loading through the WAL");
            None
        }
    }
}

/// What differs between SQLite connections.
struct SqliteSettings {
    journal: SqliteJournalMode,
    busy_timeout: Duration,
    cache_kib: u32,
    foreign_keys: bool,
    mmap_bytes: u64,
    /// Whether a commit copies the WAL into the database file once it holds 1,000 pages
    /// (SQLite's default), or leaves that to a [`WalCheckpointer`].
    checkpoint_on_commit: bool,
}

/// Pool options for `url`; SQLite also gets NORMAL sync and in-memory temp files.
fn options(url: &str, connections: u32, sqlite: SqliteSettings) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .sqlx_logging(false)
        .acquire_timeout(Duration::from_secs(10))
        .max_connections(connections)
        .map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(sqlite.journal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(sqlite.busy_timeout)
                .foreign_keys(sqlite.foreign_keys)
                .pragma("cache_size", format!("-{}", sqlite.cache_kib))
                .pragma("mmap_size", sqlite.mmap_bytes.to_string())
                .pragma("temp_store", "memory")
                .pragma(
                    "wal_autocheckpoint",
                    if sqlite.checkpoint_on_commit {
                        "1000"
                    } else {
                        "0"
                    },
                )
        });
    options
}

/// Copies a SQLite database's WAL into the database file every 100 ms, on a connection of
/// its own, while a bulk import writes on another (see [`connect_for_import`]).
///
/// A passive checkpoint never waits for the writer or for readers; it copies what has been
/// committed so far. Copying on commit instead made each import batch wait for its pages to
/// be written twice, a second of every 100k contacts.
pub struct WalCheckpointer {
    db: DatabaseConnection,
    task: tokio::task::JoinHandle<()>,
}

const PASSIVE_CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";
const FULL_CHECKPOINT: &str = "PRAGMA wal_checkpoint(FULL)";

impl WalCheckpointer {
    /// Starts checkpointing `db`; `None` unless it is SQLite.
    pub fn start(db: &DatabaseConnection) -> Option<Self> {
        if db.get_database_backend() != DbBackend::Sqlite {
            return None;
        }
        let background = db.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(err) = background.execute_unprepared(PASSIVE_CHECKPOINT).await {
                    tracing::warn!(%err, "WAL checkpoint failed");
                }
            }
        });
        Some(Self {
            db: db.clone(),
            task,
        })
    }

    /// Stops, after copying all of the WAL into the database file.
    ///
    /// The background checkpoint may be mid-statement on another connection, so it is waited
    /// for; the last checkpoint is `FULL` because a passive one gives up, leaving part of the
    /// WAL uncopied, while another checkpoint or a reader is in the way.
    pub async fn finish(mut self) -> crate::Result<()> {
        self.task.abort();
        // A cancelled task's JoinError says only that it was stopped.
        let _ = (&mut self.task).await;
        self.db.execute_unprepared(FULL_CHECKPOINT).await?;
        Ok(())
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> crate::Result<()> {
    Migrator::up(db, None).await?;
    Ok(())
}

/// The pool's connections: (in use, idle).
pub fn pool_connections(db: &DatabaseConnection) -> (u32, u32) {
    let (size, idle) = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    (size.saturating_sub(idle), idle)
}

/// Rows per INSERT on PostgreSQL, where a statement carries one array per column whatever
/// its number of rows (see [`unnest_insert`]).
const ROWS_PER_UNNEST: usize = 5_000;

/// How many rows go to one statement on `backend`: `per_statement` for a multi-row VALUES
/// list (SQLite), [`ROWS_PER_UNNEST`] on PostgreSQL.
fn rows_per_statement(backend: DbBackend, per_statement: usize) -> usize {
    match backend {
        DbBackend::Postgres => ROWS_PER_UNNEST,
        _ => per_statement,
    }
}

/// INSERT statements for `rows`, built one at a time as they are taken: on SQLite
/// `per_statement` rows to a multi-row VALUES list, on PostgreSQL one `unnest` of column
/// arrays per [`ROWS_PER_UNNEST`] rows. Without RETURNING: nothing is read back (on SQLite a
/// RETURNING clause makes the statement collect every inserted key).
pub fn insert_statements<E: EntityTrait>(
    backend: DbBackend,
    rows: Vec<E::Model>,
    per_statement: usize,
) -> impl Iterator<Item = Statement>
where
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    let per_statement = rows_per_statement(backend, per_statement);
    let mut rows = rows
        .into_iter()
        .map(IntoActiveModel::into_active_model)
        .peekable();
    std::iter::from_fn(move || {
        rows.peek()?;
        let chunk = rows.by_ref().take(per_statement);
        Some(match backend {
            DbBackend::Postgres => unnest_insert::<E>(chunk.collect()),
            _ => E::insert_many(chunk).build(backend),
        })
    })
}

/// The PostgreSQL array type of a column whose values look like `value`, and its SQL name.
fn pg_array_type(value: &Value) -> Option<(ArrayType, &'static str)> {
    Some(match value {
        Value::Bool(_) => (ArrayType::Bool, "bool"),
        Value::Int(_) => (ArrayType::Int, "int4"),
        Value::BigInt(_) => (ArrayType::BigInt, "int8"),
        Value::String(_) => (ArrayType::String, "text"),
        Value::Uuid(_) => (ArrayType::Uuid, "uuid"),
        Value::Json(_) => (ArrayType::Json, "jsonb"),
        _ => return None,
    })
}

/// One PostgreSQL `INSERT INTO t (c1, …) SELECT unnest($1::uuid[]), …` for `rows`: each
/// column's values travel as one binary array parameter. The statement's text does not
/// depend on the number of rows, so it is prepared once per connection, and the server plans
/// and initialises one projection instead of one expression per value of a VALUES list.
/// `unnest` stands in the select list: in FROM it would first copy every row into a
/// tuplestore. Falls back to a VALUES list for a column type without an array mapping here.
fn unnest_insert<E: EntityTrait>(mut rows: Vec<E::ActiveModel>) -> Statement {
    let columns: Vec<E::Column> = E::Column::iter().collect();
    let types: Option<Vec<(ArrayType, &str)>> = match rows.first() {
        Some(first) => columns
            .iter()
            .map(|col| {
                first
                    .get(*col)
                    .into_value()
                    .as_ref()
                    .and_then(pg_array_type)
            })
            .collect(),
        None => None,
    };
    let Some(types) = types else {
        return E::insert_many(rows).build(DbBackend::Postgres);
    };
    let mut names = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    let mut params = Vec::with_capacity(columns.len());
    for (i, (col, (array_type, sql_type))) in columns.iter().zip(types).enumerate() {
        let values: Vec<Value> = rows
            .iter_mut()
            .map(|row| row.take(*col).into_value().unwrap_or(Value::Bool(None)))
            .collect();
        names.push(format!("\"{}\"", col.as_str()));
        params.push(format!("unnest(${}::{sql_type}[])", i + 1));
        arrays.push(Value::Array(array_type, Some(Box::new(values))));
    }
    let sql = format!(
        "INSERT INTO \"{}\" ({}) SELECT {}",
        E::default().table_name(),
        names.join(", "),
        params.join(", ")
    );
    Statement::from_sql_and_values(DbBackend::Postgres, sql, arrays)
}

/// Inserts `rows`, `per_statement` rows to a statement on SQLite (see [`insert_statements`]
/// for PostgreSQL). More than one statement's worth is built on a blocking thread while the
/// statements before run.
pub async fn insert_all<E: EntityTrait>(
    db: &impl ConnectionTrait,
    rows: Vec<E::Model>,
    per_statement: usize,
) -> crate::Result<()>
where
    E::Model: IntoActiveModel<E::ActiveModel> + Send + 'static,
{
    let backend = db.get_database_backend();
    if rows.len() <= rows_per_statement(backend, per_statement) {
        for statement in insert_statements::<E>(backend, rows, per_statement) {
            db.execute_raw(statement).await?;
        }
        return Ok(());
    }
    let (sender, mut statements) = tokio::sync::mpsc::channel::<Statement>(4);
    let builder = tokio::task::spawn_blocking(move || {
        for statement in insert_statements::<E>(backend, rows, per_statement) {
            if sender.blocking_send(statement).is_err() {
                return;
            }
        }
    });
    while let Some(statement) = statements.recv().await {
        db.execute_raw(statement).await?;
    }
    builder
        .await
        .map_err(|err| Error::Internal(format!("building INSERT statements failed: {err}")))
}
