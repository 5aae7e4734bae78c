//! Prometheus metrics: HTTP requests and their latency, SQL statements and their duration.
//! Each running application has its own registry (tests run several side by side).
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
        Self {
            registry: Arc::new(registry),
            sql_statements,
            sql_errors,
            sql_duration,
            http_requests,
            http_duration,
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
