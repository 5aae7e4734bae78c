//! The one typed configuration of the server, read from flags and the environment.
use std::net::SocketAddr;

use clap::Args;

/// Default database: a SQLite file next to where the server starts, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://contact-gateway.db?mode=rwc";

/// How to reach the database.
#[derive(Args, Clone, Debug)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://FILE?mode=rwc` or `postgres://USER@HOST:PORT/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

/// Settings of `contact-gateway serve`.
#[derive(Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseConfig,

    /// SQLite page cache of each of the server's 8 connections, in KiB (SQLite's own
    /// default is 2,048). Pages it does not hold are read from the operating system's file
    /// cache, which is not counted in the server's memory; writes of many rows (a sync run
    /// of a large source) go faster with more.
    #[arg(long, env = "SQLITE_CACHE_KIB", default_value_t = crate::db::SQLITE_CACHE_KIB)]
    pub sqlite_cache_kib: u32,

    /// Do not create the demo tenant and its data on an empty database.
    #[arg(long, env = "NO_DEMO")]
    pub no_demo: bool,

    /// Region (ISO 3166 code, e.g. DE) for phone numbers written without a country code;
    /// without it such numbers are rejected.
    #[arg(long, env = "DEFAULT_PHONE_REGION", value_parser = parse_region)]
    pub default_phone_region: Option<phonenumber::country::Id>,

    /// Production mode: no introspection, no field suggestions, no GraphiQL page, and no
    /// demo tenant. Also set by GATEWAY_ENV=production.
    #[arg(long, env = "GATEWAY_PRODUCTION")]
    pub production: bool,

    /// How long a verified API key is trusted without asking the database (seconds); a
    /// revoked key stops working within this time.
    #[arg(long, env = "KEY_CACHE_SECS", default_value_t = 30)]
    pub key_cache_secs: u64,

    /// Sources file (TOML): vendor APIs upserted into the database at start (see
    /// docs/sources.md).
    #[arg(long = "sources", env = "SOURCES_FILE")]
    pub sources_file: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub sync: SyncConfig,

    #[command(flatten)]
    pub limits: LimitsConfig,
}

/// How sources are run and their tokens kept.
#[derive(Args, Clone, Debug)]
pub struct SyncConfig {
    /// The key vendor tokens are encrypted with: 32 bytes, base64 (`openssl rand -base64
    /// 32`). Every process on one database needs the same key. Without it, a SQLite database
    /// gets a key file beside it (`<file>.key`, mode 0600, made on first start); PostgreSQL
    /// then cannot store tokens. Give it through the environment, not the command line.
    #[arg(long, env = "GATEWAY_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// How often the scheduler looks for sources whose next run is due (milliseconds).
    #[arg(long, env = "SYNC_POLL_MS", default_value_t = 5_000)]
    pub sync_poll_ms: u64,

    /// Do not run sources on their schedule in this process (`syncSource` still works).
    #[arg(long, env = "NO_SCHEDULER")]
    pub no_scheduler: bool,

    /// Let sources reach loopback, private and link-local addresses (by default only public
    /// ones: a tenant chooses a source's URL). For vendors on a private network.
    #[arg(long, env = "SOURCES_ALLOW_PRIVATE_NETWORKS")]
    pub allow_private_networks: bool,

    /// The largest share of a source's records (percent) a FULL run may mark deleted
    /// without `allowMassDeletion`; a run that would mark more deletes nothing and fails
    /// with `SUSPICIOUS_DELETION`.
    #[arg(long, env = "MAX_DELETION_PERCENT", default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_deletion_percent: u8,

    /// Do not deliver queued write-backs in this process (another process on the database
    /// does; changes are still queued).
    #[arg(long, env = "NO_WRITE_BACK")]
    pub no_write_back: bool,

    /// How often the write-back worker looks for due changes when it found none
    /// (milliseconds).
    #[arg(long, env = "WRITE_BACK_POLL_MS", default_value_t = 1_000)]
    pub write_back_poll_ms: u64,

    /// The wait after a write-back's first failed attempt (milliseconds); it doubles after
    /// each further one.
    #[arg(long, env = "WRITE_BACK_BACKOFF_MS", default_value_t = 150_000)]
    pub write_back_backoff_ms: i64,

    /// How long a claimed write-back is its worker's (milliseconds): when the worker dies
    /// mid-delivery, another takes the change over after this, with the same idempotency
    /// key. Keep it above the vendor request timeout (30 s).
    #[arg(long, env = "WRITE_BACK_LEASE_MS", default_value_t = 120_000)]
    pub write_back_lease_ms: u64,

    /// How long delivered write-backs are kept (days; 0: removed at the worker's next count
    /// of the queue).
    #[arg(long, env = "WRITE_BACK_RETENTION_DAYS", default_value_t = 30)]
    pub write_back_retention_days: u32,

    /// Attempts of a write-back before it is FAILED.
    #[arg(long, env = "WRITE_BACK_MAX_ATTEMPTS", default_value_t = 10)]
    pub write_back_max_attempts: i32,

    /// Do not deliver webhooks in this process (another process on the database does;
    /// deliveries are still queued).
    #[arg(long, env = "NO_WEBHOOK_DELIVERY")]
    pub no_webhook_delivery: bool,

    /// How often the webhook worker looks for due deliveries when it found none
    /// (milliseconds).
    #[arg(long, env = "WEBHOOK_POLL_MS", default_value_t = 500)]
    pub webhook_poll_ms: u64,

    /// The wait after a delivery's first failed attempt (milliseconds); it doubles after
    /// each further one, up to an hour.
    #[arg(long, env = "WEBHOOK_BACKOFF_MS", default_value_t = 5_000)]
    pub webhook_backoff_ms: i64,

    /// How long a webhook may fail every delivery before it is disabled (seconds; 3 days).
    #[arg(long, env = "WEBHOOK_DISABLE_AFTER_SECS", default_value_t = 259_200)]
    pub webhook_disable_after_secs: i64,

    /// How long delivered webhook deliveries are kept in the delivery log (days).
    #[arg(long, env = "WEBHOOK_RETENTION_DAYS", default_value_t = 30)]
    pub webhook_retention_days: u32,

    /// Let webhooks point to loopback, private and link-local addresses in production
    /// (outside production they always may).
    #[arg(long, env = "WEBHOOKS_ALLOW_PRIVATE_NETWORKS")]
    pub webhooks_allow_private_networks: bool,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            secret_key: None,
            sync_poll_ms: 5_000,
            no_scheduler: false,
            allow_private_networks: false,
            max_deletion_percent: 50,
            no_write_back: false,
            write_back_poll_ms: 1_000,
            write_back_backoff_ms: 150_000,
            write_back_lease_ms: 120_000,
            write_back_retention_days: 30,
            write_back_max_attempts: 10,
            no_webhook_delivery: false,
            webhook_poll_ms: 500,
            webhook_backoff_ms: 5_000,
            webhook_disable_after_secs: 259_200,
            webhook_retention_days: 30,
            webhooks_allow_private_networks: false,
        }
    }
}

impl Config {
    /// Whether production mode is on (`--production` or `GATEWAY_ENV=production`).
    pub fn is_production(&self) -> bool {
        self.production
            || std::env::var("GATEWAY_ENV").is_ok_and(|v| v.eq_ignore_ascii_case("production"))
    }
}

/// Limits for hostile queries (defaults in the README).
#[derive(Args, Clone, Debug)]
pub struct LimitsConfig {
    /// Deepest selection nesting.
    #[arg(long, env = "MAX_DEPTH", default_value_t = 10)]
    pub max_depth: usize,
    /// Highest query cost (a list costs its page size times its children).
    #[arg(long, env = "MAX_COMPLEXITY", default_value_t = 50_000)]
    pub max_complexity: usize,
    /// Deepest nesting of objects and lists in one input value (a filter's `and`/`or`/`not`,
    /// a variable's JSON).
    #[arg(long, env = "MAX_INPUT_DEPTH", default_value_t = 16)]
    pub max_input_depth: usize,
    /// Most aliases in one query.
    #[arg(long, env = "MAX_ALIASES", default_value_t = 30)]
    pub max_aliases: usize,
    /// Most directives on one field.
    #[arg(long, env = "MAX_DIRECTIVES_PER_FIELD", default_value_t = 5)]
    pub max_directives_per_field: usize,
    /// Longest query text in bytes.
    #[arg(long, env = "MAX_QUERY_BYTES", default_value_t = 64 * 1024)]
    pub max_query_bytes: usize,
    /// Most operations in one batched request.
    #[arg(long, env = "MAX_BATCH", default_value_t = 10)]
    pub max_batch: usize,
    /// Largest request body in bytes (larger bodies get HTTP 413).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Longest a request may run, in seconds (also the longest its body may take to arrive,
    /// and PostgreSQL's `statement_timeout`).
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    pub request_timeout_secs: u64,
    /// Most client connections open at once (more wait in the accept queue).
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
    /// Longest a client may take to send a request's headers, in seconds (then the
    /// connection is closed).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Most subscriptions open at once per API key, in each server process.
    #[arg(long, env = "MAX_SUBSCRIPTIONS_PER_KEY", default_value_t = 100)]
    pub max_subscriptions_per_key: usize,
    /// Most subscriptions open at once on one WebSocket connection.
    #[arg(long, env = "MAX_SUBSCRIPTIONS_PER_CONNECTION", default_value_t = 20)]
    pub max_subscriptions_per_connection: usize,
    /// Change events a subscriber may fall behind by before it gets `LAGGED`: the size of
    /// each process's event buffer, and of each shared execution's, which keeps as many
    /// messages in batches of up to 16 ready together (a sixteenth of it when changes come
    /// one at a time).
    #[arg(long, env = "SUBSCRIPTION_BUFFER", default_value_t = 1024)]
    pub subscription_buffer: usize,
    /// Seconds between WebSocket pings; a connection that answers nothing (no pong, no
    /// message) for two of them is closed.
    #[arg(long, env = "WS_PING_SECS", default_value_t = 30)]
    pub ws_ping_secs: u64,
}

/// The limits on each request, as the GraphQL and HTTP layers check them (defaults in
/// `docs/operations.md`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest selection nesting.
    pub max_depth: usize,
    /// Highest cost: every field costs 1, a list field costs its page size times its children.
    pub max_complexity: usize,
    /// Deepest nesting of objects and lists in one input value.
    pub max_input_depth: usize,
    /// Most aliases in one query.
    pub max_aliases: usize,
    /// Most directives on one field.
    pub max_directives_per_field: usize,
    /// Longest query text, in bytes.
    pub max_query_bytes: usize,
    /// Most operations in one batched request.
    pub max_batch: usize,
    /// Largest request body, in bytes (larger: HTTP 413).
    pub max_body_bytes: usize,
    /// Longest a request may run, in seconds.
    pub timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 10,
            max_complexity: 50_000,
            max_input_depth: 16,
            max_aliases: 30,
            max_directives_per_field: 5,
            max_query_bytes: 64 * 1024,
            max_batch: 10,
            max_body_bytes: 1024 * 1024,
            timeout_secs: 10,
        }
    }
}

/// Limits on client connections, as the accept loop uses them.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest a client may take to send a request's headers.
    pub header_read_timeout: std::time::Duration,
}

impl LimitsConfig {
    /// The limits on client connections.
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
        }
    }

    /// The limits as the GraphQL layer uses them.
    pub fn limits(&self) -> Limits {
        Limits {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            max_input_depth: self.max_input_depth,
            max_aliases: self.max_aliases,
            max_directives_per_field: self.max_directives_per_field,
            max_query_bytes: self.max_query_bytes,
            max_batch: self.max_batch,
            max_body_bytes: self.max_body_bytes,
            timeout_secs: self.request_timeout_secs,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            max_depth: l.max_depth,
            max_complexity: l.max_complexity,
            max_input_depth: l.max_input_depth,
            max_aliases: l.max_aliases,
            max_directives_per_field: l.max_directives_per_field,
            max_query_bytes: l.max_query_bytes,
            max_batch: l.max_batch,
            max_body_bytes: l.max_body_bytes,
            request_timeout_secs: l.timeout_secs,
            max_connections: 512,
            header_read_timeout_secs: 10,
            max_subscriptions_per_key: 100,
            max_subscriptions_per_connection: 20,
            subscription_buffer: 1024,
            ws_ping_secs: 30,
        }
    }
}

/// Reads an ISO 3166 region code such as `DE`.
pub fn parse_region(code: &str) -> Result<phonenumber::country::Id, String> {
    code.to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("{code} is not an ISO 3166 region code such as DE or US"))
}
