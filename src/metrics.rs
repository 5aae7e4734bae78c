//! Prometheus metrics: HTTP requests and GraphQL operations with their latency, SQL
//! statements and their duration, the database pool's connections, and sync runs (runs,
//! records and vendor requests by source, run duration). Each running
//! application has its own registry (tests run several side by side).
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of an HTTP request metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route pattern, e.g. `/graphql`.
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of a GraphQL operation metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// The operation's name (`anonymous` without one; `other` past [`MAX_OPERATION_NAMES`]).
    pub operation: String,
    /// `ok`, `field_errors`, `request_error`, `timeout` or `unauthenticated`.
    pub outcome: String,
}

/// Labels of the pool gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// `in_use` or `idle`.
    pub state: String,
}

/// Labels of a sync metric: the source (tenant and name), and what is counted.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    /// The source's tenant.
    pub tenant: String,
    /// The source's name.
    pub source: String,
    /// Runs: `succeeded` or `failed`; records: `created`, `updated`, `unchanged`,
    /// `deleted`, `warnings` or `rejected`; vendor requests: the HTTP status, or `error`.
    pub outcome: String,
}

/// Labels of a per-source histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// The source's tenant.
    pub tenant: String,
    /// The source's name.
    pub source: String,
}

/// Labels of the write-back queue's depth.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `PENDING`, `DELIVERING`, `FAILED` or `CONFLICT`.
    pub state: String,
}

/// Distinct operation names kept as labels; clients choose the names, so later ones are
/// counted as `other` to keep the number of series bounded.
pub const MAX_OPERATION_NAMES: usize = 200;

/// The application's metrics and the registry that exposes them.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// SQL statements sent to the database.
    pub sql_statements: Counter,
    /// SQL statements that failed.
    pub sql_errors: Counter,
    /// Duration of SQL statements, in seconds.
    pub sql_duration: Histogram,
    /// HTTP requests served.
    pub http_requests: Family<RequestLabels, Counter>,
    /// Duration of HTTP requests, in seconds.
    pub http_duration: Family<RequestLabels, Histogram>,
    /// GraphQL operations executed.
    pub operations: Family<OperationLabels, Counter>,
    /// Duration of GraphQL operations, in seconds.
    pub operation_duration: Family<OperationLabels, Histogram>,
    /// Database pool connections by state, set at each scrape.
    pub pool_connections: Family<PoolLabels, Gauge>,
    /// Sync runs finished, by source and outcome.
    pub sync_runs: Family<SyncLabels, Counter>,
    /// Records of sync runs, by source and outcome.
    pub sync_records: Family<SyncLabels, Counter>,
    /// Requests sent to vendor APIs, by source and HTTP status.
    pub vendor_requests: Family<SyncLabels, Counter>,
    /// Duration of sync runs, in seconds, by source.
    pub sync_run_duration: Family<SourceLabels, Histogram>,
    /// Write-backs not delivered, by state (the whole database's queue), set by the delivery
    /// worker every 15 polls (15 s by default).
    pub write_back_queue: Family<QueueLabels, Gauge>,
    /// Write-back delivery attempts, by source and outcome (`delivered`, `retry`, `failed`,
    /// `conflict`).
    pub write_back_deliveries: Family<SyncLabels, Counter>,
    /// Time from queueing a write-back to the vendor taking it, in seconds, by source.
    pub write_back_latency: Family<SourceLabels, Histogram>,
    /// GraphQL subscriptions open (one per `subscribe` over WebSocket).
    pub subscriptions: Gauge,
    /// Distinct subscription operations running: subscribers of one tenant that send the
    /// same operation share one execution (`graphql::subscription_hub`).
    pub subscription_executions: Gauge,
    operation_names: Arc<Mutex<HashSet<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered under `contact_gateway_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("contact_gateway");
        let sql_statements = Counter::default();
        let sql_errors = Counter::default();
        let sql_duration = Histogram::new(exponential_buckets(0.0001, 2.5, 12));
        let http_requests = Family::<RequestLabels, Counter>::default();
        let http_duration = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.5, 12))
        });
        registry.register(
            "sql_statements",
            "SQL statements sent to the database",
            sql_statements.clone(),
        );
        registry.register(
            "sql_errors",
            "SQL statements that failed",
            sql_errors.clone(),
        );
        registry.register(
            "sql_statement_duration_seconds",
            "Duration of SQL statements",
            sql_duration.clone(),
        );
        registry.register(
            "http_requests",
            "HTTP requests served",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Duration of HTTP requests",
            http_duration.clone(),
        );
        let operations = Family::<OperationLabels, Counter>::default();
        let operation_duration = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.5, 12))
        });
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "graphql_operations",
            "GraphQL operations executed, by operation name and outcome",
            operations.clone(),
        );
        registry.register(
            "graphql_operation_duration_seconds",
            "Duration of GraphQL operations, by operation name and outcome",
            operation_duration.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Database pool connections, in use or idle",
            pool_connections.clone(),
        );
        let sync_runs = Family::<SyncLabels, Counter>::default();
        let sync_records = Family::<SyncLabels, Counter>::default();
        let vendor_requests = Family::<SyncLabels, Counter>::default();
        let sync_run_duration = Family::<SourceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 3.0, 12))
        });
        registry.register(
            "sync_runs",
            "Sync runs finished, by source and outcome",
            sync_runs.clone(),
        );
        registry.register(
            "sync_records",
            "Records of sync runs, by source and outcome",
            sync_records.clone(),
        );
        registry.register(
            "vendor_requests",
            "Requests sent to vendor APIs, by source and HTTP status",
            vendor_requests.clone(),
        );
        registry.register(
            "sync_run_duration_seconds",
            "Duration of sync runs, by source",
            sync_run_duration.clone(),
        );
        let write_back_queue = Family::<QueueLabels, Gauge>::default();
        let write_back_deliveries = Family::<SyncLabels, Counter>::default();
        let write_back_latency = Family::<SourceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.01, 3.0, 14))
        });
        registry.register(
            "write_back_queue",
            "Write-backs not delivered, by state (the whole database's queue)",
            write_back_queue.clone(),
        );
        registry.register(
            "write_back_deliveries",
            "Write-back delivery attempts, by source and outcome",
            write_back_deliveries.clone(),
        );
        registry.register(
            "write_back_latency_seconds",
            "Time from queueing a write-back to the vendor taking it, by source",
            write_back_latency.clone(),
        );
        let subscriptions = Gauge::default();
        let subscription_executions = Gauge::default();
        registry.register(
            "graphql_subscriptions",
            "GraphQL subscriptions open",
            subscriptions.clone(),
        );
        registry.register(
            "graphql_subscription_executions",
            "Distinct subscription operations running, each shared by its subscribers",
            subscription_executions.clone(),
        );
        Self {
            registry: Arc::new(registry),
            subscriptions,
            subscription_executions,
            write_back_queue,
            write_back_deliveries,
            write_back_latency,
            sync_runs,
            sync_records,
            vendor_requests,
            sync_run_duration,
            sql_statements,
            sql_errors,
            sql_duration,
            http_requests,
            http_duration,
            operations,
            operation_duration,
            pool_connections,
            operation_names: Arc::default(),
        }
    }

    /// Records one GraphQL operation.
    pub fn record_operation(&self, operation: &str, outcome: &str, seconds: f64) {
        let labels = OperationLabels {
            operation: self.operation_label(operation),
            outcome: outcome.to_string(),
        };
        self.operations.get_or_create(&labels).inc();
        self.operation_duration
            .get_or_create(&labels)
            .observe(seconds);
    }

    /// `operation` if it is among the first [`MAX_OPERATION_NAMES`] names seen, else `other`.
    fn operation_label(&self, operation: &str) -> String {
        let Ok(mut names) = self.operation_names.lock() else {
            return "other".to_string();
        };
        if names.contains(operation) {
            return operation.to_string();
        }
        if names.len() < MAX_OPERATION_NAMES {
            names.insert(operation.to_string());
            return operation.to_string();
        }
        "other".to_string()
    }

    /// Counts one request to a vendor API of `source` answered with `status` (or `error`).
    pub fn vendor_request(&self, tenant: uuid::Uuid, source: &str, status: &str) {
        self.vendor_requests
            .get_or_create(&SyncLabels {
                tenant: tenant.to_string(),
                source: source.to_string(),
                outcome: status.to_string(),
            })
            .inc();
    }

    /// Records a finished run of `source`: its outcome, duration and record counts.
    pub fn record_run(
        &self,
        tenant: uuid::Uuid,
        source: &str,
        outcome: &str,
        seconds: f64,
        records: &[(&str, u64)],
    ) {
        let labels = |outcome: &str| SyncLabels {
            tenant: tenant.to_string(),
            source: source.to_string(),
            outcome: outcome.to_string(),
        };
        self.sync_runs.get_or_create(&labels(outcome)).inc();
        self.sync_run_duration
            .get_or_create(&SourceLabels {
                tenant: tenant.to_string(),
                source: source.to_string(),
            })
            .observe(seconds);
        for (what, n) in records {
            self.sync_records.get_or_create(&labels(what)).inc_by(*n);
        }
    }

    /// Sets the pool gauges.
    pub fn set_pool(&self, in_use: u32, idle: u32) {
        for (state, value) in [("in_use", in_use), ("idle", idle)] {
            self.pool_connections
                .get_or_create(&PoolLabels {
                    state: state.to_string(),
                })
                .set(i64::from(value));
        }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(%err, "could not encode metrics");
        }
        out
    }
}
