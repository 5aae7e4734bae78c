//! Connecting to the database (SQLite or PostgreSQL) and bringing its schema up to date;
//! write transactions (`write.rs`), bulk inserts (`bulk.rs`) and the WAL checkpointer of
//! imports (`checkpoint.rs`) beside it.
mod bulk;
mod checkpoint;
mod write;

use std::time::Duration;

use futures::future::BoxFuture;
use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{
    Alias, Expr, ExprTrait, Func, FunctionCall, IntoColumnRef, IntoTableRef, PgFunc, Query,
    SelectStatement,
};
use sea_orm::sqlx::Connection;
use sea_orm::sqlx::pool::PoolConnectionMetadata;
use sea_orm::sqlx::postgres::{PgConnection, PgSslMode};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};

pub use bulk::{insert_all, insert_all_skipping_existing, insert_statements};
pub use checkpoint::WalCheckpointer;
pub use write::{WriteLock, begin_write, insert_then_update, writers_done};

use crate::metrics::Metrics;

/// `column` is one of `ids`, in a statement whose text is the same for any number of ids,
/// so each connection prepares it once (an `IN` list has one parameter per id, and each
/// length is a statement of its own). The ids are one parameter: on PostgreSQL
/// `column = ANY($n)`, a `uuid[]`; on SQLite `column IN (SELECT unhex(value) FROM
/// json_each(?))`, a JSON array of the ids' hex digits, since SQLite
/// stores a UUID as its 16 bytes.
pub fn one_of(column: impl IntoColumnRef, ids: &[uuid::Uuid], backend: DbBackend) -> Expr {
    expr_one_of(Expr::col(column), ids, backend)
}

/// [`one_of`] for any expression, such as a page's parent.
pub fn expr_one_of(expr: Expr, ids: &[uuid::Uuid], backend: DbBackend) -> Expr {
    if backend == DbBackend::Postgres {
        expr.eq(PgFunc::any(Expr::val(ids.to_vec())))
    } else {
        let list = Query::select()
            .expr(json_id("cg_ids"))
            .from_function(json_each_of(ids), Alias::new("cg_ids"))
            .to_owned();
        expr.in_subquery(list)
    }
}

/// Makes `query` read `table`'s rows whose `key` is one of `ids`, starting from the ids: its
/// `FROM` becomes `table` (add joins after this, not before). The text is the same for any
/// number of ids, as with [`one_of`]:
/// - PostgreSQL: `FROM table … WHERE key = ANY($n)`;
/// - SQLite: `FROM json_each(?) AS cg_ids CROSS JOIN table … WHERE key =
///   unhex(cg_ids.value)`. `CROSS JOIN` makes SQLite walk the ids and look each one up. An
///   `IN` list (or subquery) left it free to choose, and without statistics it took any
///   `tenant_id = ?` index as more selective than the ids: contacts by 500 ids went
///   through all the tenant's contacts (9.6 ms against 1.3 ms, at 100,000 contacts).
pub fn walk_ids(
    query: &mut SelectStatement,
    table: impl IntoTableRef,
    key: Expr,
    ids: &[uuid::Uuid],
    backend: DbBackend,
) {
    query.from_clear();
    if backend == DbBackend::Postgres {
        query
            .from(table)
            .and_where(key.eq(PgFunc::any(Expr::val(ids.to_vec()))));
    } else {
        // Each id once: walking from the ids, a repeated id would repeat its rows (`= ANY`
        // matches a row once however often its id is listed).
        let mut unique = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        query
            .from_function(json_each_of(&unique), Alias::new("cg_ids"))
            .cross_join(table)
            .and_where(key.eq(json_id("cg_ids")));
    }
}

/// SQLite's list of ids in one parameter: `json_each(?)` over a JSON array of their hex digits.
pub fn json_each_of(ids: &[uuid::Uuid]) -> FunctionCall {
    Func::cust(Alias::new("json_each")).arg(uuid_list_json(ids))
}

/// The id of a row of [`json_each_of`] named `alias`, as SQLite stores it (16 bytes):
/// `unhex(alias.value)`.
pub fn json_id(alias: &str) -> Expr {
    Expr::cust(format!(r#"unhex("{alias}"."value")"#))
}

/// `ids` as a JSON array of their 32 hex digits each (`["0193…", …]`): what SQLite's
/// `unhex(value) FROM json_each(?)` turns back into the 16-byte blobs it stores.
fn uuid_list_json(ids: &[uuid::Uuid]) -> String {
    let mut json = String::with_capacity(2 + ids.len() * 35);
    json.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(id.simple().encode_lower(&mut uuid::Uuid::encode_buffer()));
        json.push('"');
    }
    json.push(']');
    json
}

/// Opens a pool on `url`. SQLite gets WAL, a busy timeout and foreign keys; every
/// statement is counted in `metrics` when given.
pub async fn connect(url: &str, metrics: Option<&Metrics>) -> crate::Result<DatabaseConnection> {
    connect_with(url, metrics, true, None, SQLITE_CACHE_KIB).await
}

/// SQLite page cache per connection, in KiB, unless configured (`SQLITE_CACHE_KIB`): 64 MiB
/// instead of SQLite's 2 MiB, because bulk writes touch some twenty indexes per contact.
pub const SQLITE_CACHE_KIB: u32 = 65_536;

/// How long a request waits for a pooled connection before it is answered 503
/// `SERVICE_UNAVAILABLE`: long enough to queue behind a burst, short enough that an outage
/// is reported at once instead of after the request's whole time limit.
pub const SERVING_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens the pool `serve` answers requests from: as [`connect`], except that getting a
/// connection gives up after [`SERVING_ACQUIRE_TIMEOUT`], and on PostgreSQL every statement
/// is cancelled by the server after `statement_timeout` (the request's time limit), a
/// statement whose request gave up is stopped within about 1.5 s of that (see
/// [`close_if_still_busy`]), and statements run without JIT compilation (which costs these
/// short statements more than it saves: a 10,000-branch filter once spent minutes and
/// gigabytes compiling).
pub async fn connect_for_serving(
    url: &str,
    metrics: &Metrics,
    statement_timeout: Duration,
    sqlite_cache_kib: u32,
) -> crate::Result<DatabaseConnection> {
    connect_with(
        url,
        Some(metrics),
        true,
        Some(statement_timeout),
        sqlite_cache_kib,
    )
    .await
}

/// How long a connection coming back to the serving pool may take to answer a ping before
/// it is taken for one whose request gave up in the middle of a statement.
const RELEASE_PING_TIMEOUT: Duration = Duration::from_millis(500);

/// The serving pool's check on every connection coming back to it. A request that gives up
/// (its time limit, a client that went away) drops its statement's future, but the server
/// goes on running the statement, and the connection would come back only once it ends. A
/// connection that does not answer a ping within [`RELEASE_PING_TIMEOUT`] is closed instead;
/// with `client_connection_check_interval` set, the server then stops the statement within
/// a second (the close is immediate thanks to the patch in `vendor/sqlx-core`). A connection
/// that answers goes back to the pool without sqlx's own second ping (the same patch).
fn close_if_still_busy(
    connection: &mut PgConnection,
    _: PoolConnectionMetadata,
) -> BoxFuture<'_, Result<bool, sea_orm::sqlx::Error>> {
    Box::pin(async move {
        match tokio::time::timeout(RELEASE_PING_TIMEOUT, connection.ping()).await {
            Ok(answered) => answered.map(|()| true),
            Err(_) => Err(sea_orm::sqlx::Error::Protocol(
                "closing a connection still busy with a statement its request gave up on".into(),
            )),
        }
    })
}

/// Opens a pool for a bulk import: as [`connect`], except that on SQLite a commit does not
/// also copy the WAL into the database file (`wal_autocheckpoint = 0`). The importer runs a
/// [`WalCheckpointer`] instead, which does that on another connection, and so on the other
/// core, while the next batch is written.
pub async fn connect_for_import(url: &str) -> crate::Result<DatabaseConnection> {
    connect_with(url, None, false, None, SQLITE_CACHE_KIB).await
}

async fn connect_with(
    url: &str,
    metrics: Option<&Metrics>,
    checkpoint_on_commit: bool,
    serving_statement_timeout: Option<Duration>,
    cache_kib: u32,
) -> crate::Result<DatabaseConnection> {
    let sqlite = SqliteSettings {
        journal: SqliteJournalMode::Wal,
        busy_timeout: Duration::from_secs(10),
        cache_kib,
        foreign_keys: true,
        mmap_bytes: 0,
        checkpoint_on_commit,
    };
    let connections = if url.starts_with("sqlite") { 8 } else { 16 };
    let mut options = options(url, connections, sqlite);
    let plain_loopback = !names_ssl_mode(url);
    let serving = serving_statement_timeout.map(|timeout| timeout.as_millis().to_string());
    options.map_sqlx_postgres_opts(move |mut opts| {
        if plain_loopback && is_loopback(opts.get_host()) {
            opts = opts.ssl_mode(PgSslMode::Disable);
        }
        match &serving {
            Some(millis) => opts.options([
                ("statement_timeout", millis.as_str()),
                ("jit", "off"),
                // The server looks for a closed client socket this often while a
                // statement runs, and stops the statement when it finds one (PostgreSQL 14+).
                ("client_connection_check_interval", "1000"),
            ]),
            None => opts,
        }
    });
    if serving_statement_timeout.is_some() {
        options
            .acquire_timeout(SERVING_ACQUIRE_TIMEOUT)
            .map_sqlx_postgres_pool_opts(|pool| pool.after_release(close_if_still_busy));
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

/// Whether `host` (as sqlx parsed it from the URL) is this machine: `localhost` or a
/// loopback address. (A Unix socket never uses TLS.)
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether TLS is asked for, one way or another: by a URL parameter about it (`sslmode`,
/// `ssl-mode`, `sslrootcert`, `sslcert`, `sslkey`, …: any that starts with `ssl`) or by one
/// of libpq's variables for it (`PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`).
/// When it is not, a connection to this machine ([`is_loopback`]) goes without TLS instead
/// of sqlx's `prefer`: encrypting what PostgreSQL on the same machine receives cost the
/// server 8.6% of its CPU under the nested-query benchmark (issue 19's profile), and
/// PostgreSQL as much again. (A tunnel on 127.0.0.1 to a server that insists on TLS needs
/// `?sslmode=require`.)
fn names_ssl_mode(url: &str) -> bool {
    ["PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some())
        || url::Url::parse(url)
            .is_ok_and(|url| url.query_pairs().any(|(key, _)| key.starts_with("ssl")))
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

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> crate::Result<()> {
    Migrator::up(db, None).await?;
    Ok(())
}

/// Rows a bulk write (a seed or an import) must have written before it refreshes the
/// planner's statistics with [`analyze_contacts`]. Autovacuum analyzes a table once 50 rows
/// plus a tenth of it have changed since it last did: an import into a large table may not
/// get there, and where autovacuum is off (as on this project's VMs) nothing ever does.
pub const ANALYZE_AFTER_ROWS: u64 = 10_000;

/// After a bulk write, refreshes PostgreSQL's planner statistics of the contact tables
/// (`ANALYZE`, which reads a sample of each, not the whole). Without column statistics the
/// planner falls back on default selectivities: at a million seeded contacts, a search's
/// first page walked the table (331 ms) instead of reading the trigram index (3.5 ms).
/// Nothing on SQLite, whose statements that need a plan fix it themselves (`CROSS JOIN`,
/// `NOT INDEXED`; see [`walk_ids`]): statistics there could change them.
///
/// The write it follows is committed: a failure is logged, not returned, so that the
/// caller still reports what was written.
pub async fn analyze_contacts(db: &DatabaseConnection) {
    use sea_orm::ConnectionTrait;
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let tables =
        "contacts, contact_tags, contact_assignees, contact_keys, contact_sources, contact_counts";
    if let Err(error) = db.execute_unprepared(&format!("ANALYZE {tables}")).await {
        tracing::warn!(%error, "refreshing the planner's statistics after a bulk write failed");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_of_is_one_statement_text_for_any_number_of_ids() {
        use sea_orm::sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};
        let ids: Vec<uuid::Uuid> = (0..100).map(|_| uuid::Uuid::now_v7()).collect();
        let sql = |n: usize, backend: DbBackend| {
            let mut query = Query::select();
            query
                .column(Alias::new("id"))
                .from(Alias::new("t"))
                .and_where(one_of(Alias::new("id"), &ids[..n], backend));
            match backend {
                DbBackend::Postgres => query.build(PostgresQueryBuilder),
                _ => query.build(SqliteQueryBuilder),
            }
        };
        let (one, values) = sql(1, DbBackend::Postgres);
        assert_eq!(one, r#"SELECT "id" FROM "t" WHERE "id" = ANY($1)"#);
        assert_eq!(values.0.len(), 1);
        assert_eq!(sql(100, DbBackend::Postgres).0, one);
        assert_eq!(
            sql(100, DbBackend::Postgres).1.0.len(),
            1,
            "one array parameter"
        );
        let (one, values) = sql(1, DbBackend::Sqlite);
        assert_eq!(
            one,
            r#"SELECT "id" FROM "t" WHERE "id" IN (SELECT unhex("cg_ids"."value") FROM json_each(?) AS "cg_ids")"#
        );
        assert_eq!(values.0.len(), 1);
        assert_eq!(sql(100, DbBackend::Sqlite).0, one);
        assert_eq!(
            sql(100, DbBackend::Sqlite).1.0.len(),
            1,
            "one JSON parameter"
        );
    }

    #[test]
    fn walk_ids_starts_from_the_ids_in_one_statement_text() {
        use sea_orm::sea_query::{PostgresQueryBuilder, SqliteQueryBuilder};
        let ids: Vec<uuid::Uuid> = (0..100).map(|_| uuid::Uuid::now_v7()).collect();
        let sql = |n: usize, backend: DbBackend| {
            let mut query = Query::select();
            query.column(Alias::new("id")).from(Alias::new("other"));
            walk_ids(
                &mut query,
                Alias::new("t"),
                Expr::col((Alias::new("t"), Alias::new("id"))),
                &ids[..n],
                backend,
            );
            match backend {
                DbBackend::Postgres => query.build(PostgresQueryBuilder),
                _ => query.build(SqliteQueryBuilder),
            }
        };
        let (sqlite, values) = sql(1, DbBackend::Sqlite);
        assert_eq!(
            sqlite,
            r#"SELECT "id" FROM json_each(?) AS "cg_ids" CROSS JOIN "t" WHERE "t"."id" = (unhex("cg_ids"."value"))"#
        );
        assert_eq!(values.0.len(), 1);
        let (many, values) = sql(100, DbBackend::Sqlite);
        assert_eq!(many, sqlite);
        assert_eq!(values.0.len(), 1, "one JSON parameter");
        let mut repeated = Query::select();
        walk_ids(
            &mut repeated,
            Alias::new("t"),
            Expr::col(Alias::new("id")),
            &[ids[0], ids[1], ids[0]],
            DbBackend::Sqlite,
        );
        let (_, values) = repeated.build(SqliteQueryBuilder);
        let mut expected = [ids[0], ids[1]];
        expected.sort_unstable();
        assert_eq!(
            values.0[0],
            sea_orm::Value::from(uuid_list_json(&expected)),
            "each id once"
        );
        let (postgres, values) = sql(1, DbBackend::Postgres);
        assert_eq!(postgres, r#"SELECT "id" FROM "t" WHERE "t"."id" = ANY($1)"#);
        assert_eq!(sql(100, DbBackend::Postgres).0, postgres);
        assert_eq!(values.0.len(), 1);
    }

    /// `.cargo/config.toml` builds SQLite without its process-wide page-cache group and
    /// memory statistics (each a mutex every connection takes).
    #[tokio::test]
    async fn sqlite_is_built_without_process_wide_mutexes() {
        use sea_orm::ConnectionTrait;
        let db = connect("sqlite::memory:", None).await.expect("connect");
        let options: Vec<String> = db
            .query_all_raw(sea_orm::Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA compile_options",
            ))
            .await
            .expect("compile options")
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("option"))
            .collect();
        assert!(
            options.contains(&"DEFAULT_MEMSTATUS=0".to_string()),
            "{options:?}"
        );
        assert!(
            !options.contains(&"ENABLE_MEMORY_MANAGEMENT".to_string()),
            "{options:?}"
        );
    }

    #[test]
    fn uuid_list_json_is_a_json_array_of_hex_digits() {
        let ids = [uuid::Uuid::from_u128(0x0001_93ab), uuid::Uuid::max()];
        let json: Vec<String> = serde_json::from_str(&uuid_list_json(&ids)).unwrap();
        assert_eq!(
            json,
            [
                "000000000000000000000000000193ab",
                "ffffffffffffffffffffffffffffffff"
            ]
        );
        assert_eq!(uuid_list_json(&[]), "[]");
    }

    #[test]
    fn only_this_machine_counts_as_loopback() {
        for host in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "db.example.com",
            "10.0.0.5",
            "192.168.1.2",
            "2001:db8::1",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn a_url_that_names_its_ssl_mode_keeps_it() {
        if ["PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY"]
            .iter()
            .any(|name| std::env::var_os(name).is_some())
        {
            return; // the environment chooses for every URL
        }
        assert!(names_ssl_mode("postgres://u@127.0.0.1/db?sslmode=require"));
        assert!(names_ssl_mode(
            "postgres://u@localhost/db?application_name=x&ssl-mode=prefer"
        ));
        assert!(!names_ssl_mode("postgres://u@127.0.0.1:5432/db"));
        assert!(!names_ssl_mode(
            "postgres://u@127.0.0.1/db?application_name=sslmode"
        ));
    }
}
