//! The delivery worker of `serve`: claims due changes, sends them (several at once), and
//! records the outcomes, until shutdown. Any number of processes may run it on one
//! PostgreSQL database ([`super::claim::claim`] hands each change to one of them).
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entity::prelude::Source;
use entity::source;
use futures::StreamExt;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::delivery::deliver;
use super::outcomes::{self, Outcome, RetryPolicy};
use super::{claim, queue};
use crate::error::Result;
use crate::metrics::{Metrics, QueueLabels, SourceLabels, SyncLabels};
use crate::secrets::SecretKey;
use crate::sources::catalog;
use crate::sources::runs::RunTrigger;
use crate::sources::sync::{RunRequest, Syncer};
use crate::tenancy::TenantId;
use crate::time::now_millis;

/// Requests in flight at once, per process.
const IN_FLIGHT: usize = 16;
/// Changes claimed at once: as many as are sent at once, so that each is sent within its
/// lease (a claim is leased from the moment it is made).
const CLAIM: u64 = IN_FLIGHT as u64;
/// How often the worker removes delivered changes past their retention.
const PURGE_EVERY: Duration = Duration::from_secs(60 * 60);
/// The worker counts the queue for `write_back_queue` once every this many polls.
const DEPTH_EVERY_POLLS: u32 = 15;

/// What the worker needs.
#[derive(Clone)]
pub struct Worker {
    pub db: DatabaseConnection,
    /// The HTTP client (public addresses only unless configured otherwise).
    pub client: reqwest::Client,
    pub key: Option<SecretKey>,
    pub retry: RetryPolicy,
    /// How often to look for due changes when there were none.
    pub poll: Duration,
    /// How long a claimed change is this worker's before another may take it (longer than
    /// a request may take).
    pub lease: Duration,
    /// Where deliveries are counted.
    pub metrics: Option<Metrics>,
    /// Starts the sync that reads a vendor's values after a conflict.
    pub syncer: Option<Arc<Syncer>>,
    /// How long delivered changes are kept.
    pub retention: Duration,
}

impl Worker {
    /// Delivers until `stopping` is cancelled (the claimed batch is finished first); sets the
    /// queue-depth gauge every [`DEPTH_EVERY_POLLS`] polls, and removes delivered changes
    /// past their retention every [`PURGE_EVERY`] (at each count with a retention of 0).
    pub async fn run(self: Arc<Self>, stopping: CancellationToken) {
        let mut measured: Option<Instant> = None;
        let mut purged: Option<Instant> = None;
        while !stopping.is_cancelled() {
            if measured.is_none_or(|at| at.elapsed() >= self.poll * DEPTH_EVERY_POLLS) {
                if self.retention.is_zero() || purged.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                    self.purge().await;
                    purged = Some(Instant::now());
                }
                self.measure_depth().await;
                measured = Some(Instant::now());
            }
            let delivered = match self.deliver_due().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!(error = %err.detail(), "write-back delivery failed");
                    0
                }
            };
            if delivered < CLAIM as usize {
                tokio::select! {
                    () = tokio::time::sleep(self.poll) => {}
                    () = stopping.cancelled() => {}
                }
            }
        }
    }

    /// Removes delivered changes past their retention.
    async fn purge(&self) {
        let retention = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let before = now_millis().saturating_sub(retention);
        if let Err(err) = queue::purge_delivered(&self.db, before).await {
            tracing::warn!(error = %err.detail(), "delivered write-backs not purged");
        }
    }

    /// Sets `write_back_queue{state}` from the database (the whole queue, every replica's).
    async fn measure_depth(&self) {
        let Some(metrics) = &self.metrics else {
            return;
        };
        match queue::depth(&self.db).await {
            Ok(depth) => {
                for (state, count) in depth {
                    metrics
                        .write_back_queue
                        .get_or_create(&QueueLabels { state })
                        .set(count);
                }
            }
            Err(err) => tracing::warn!(error = %err.detail(), "write-back queue depth unread"),
        }
    }

    /// Claims due changes, delivers them, records the outcomes; returns how many.
    pub async fn deliver_due(&self) -> Result<usize> {
        let now = now_millis();
        let lease = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let mut claimed = claim::claim(&self.db, now, now.saturating_add(lease), CLAIM).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let ids: Vec<Uuid> = claimed.iter().map(|c| c.source_id).collect();
        let sources: HashMap<Uuid, source::Model> = Source::find()
            .filter(source::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        // The precondition is the version of each record stored now (the last sync's, or the
        // vendor's answer to the change before), not the one when the change was queued.
        claim::refresh_versions(&self.db, &mut claimed, &sources).await?;
        let count = claimed.len();
        let outcomes: Vec<_> = futures::stream::iter(claimed)
            .map(|change| {
                let source = sources.get(&change.source_id);
                async move {
                    let outcome = match source.map(|s| catalog::runnable(s, self.key.as_ref())) {
                        Some(Ok(config)) => match &config.settings.write {
                            Some(write) => deliver(&self.client, &config, write, &change).await,
                            None => Outcome::Failed {
                                error: "the source is no longer written to".into(),
                            },
                        },
                        Some(Err(err)) => Outcome::Failed {
                            error: err.detail(),
                        },
                        None => Outcome::Failed {
                            error: "the source is gone".into(),
                        },
                    };
                    (change, outcome)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        if let Some(metrics) = &self.metrics {
            count_outcomes(metrics, &outcomes, now_millis());
        }
        let conflicted: HashSet<(Uuid, String)> = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::Conflict { .. }))
            .map(|(c, _)| (c.tenant_id, c.source.clone()))
            .collect();
        outcomes::record_outcomes(&self.db, outcomes, self.retry, now_millis()).await?;
        self.read_vendor_values(conflicted).await;
        Ok(count)
    }

    /// Starts a sync of each source that refused a change as a conflict, so that the
    /// vendor's values are known (a source running already is left to its run).
    async fn read_vendor_values(&self, sources: HashSet<(Uuid, String)>) {
        let Some(syncer) = &self.syncer else {
            return;
        };
        for (tenant, name) in sources {
            let request = RunRequest {
                mode: None,
                trigger: RunTrigger::WriteConflict,
                allow_mass_deletion: false,
            };
            if let Err(err) = syncer
                .spawn(&self.db, TenantId(tenant), &name, request)
                .await
            {
                tracing::info!(source = %name, error = %err.detail(), "no sync started after a write conflict");
            }
        }
    }
}

/// Counts deliveries by outcome, and the queue-to-vendor latency of those delivered.
fn count_outcomes(metrics: &Metrics, outcomes: &[(entity::write_back::Model, Outcome)], now: i64) {
    for (change, outcome) in outcomes {
        let outcome_name = match outcome {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Retry { .. } => "retry",
            Outcome::Failed { .. } => "failed",
            Outcome::Conflict { .. } => "conflict",
        };
        let (tenant, source) = (change.tenant_id.to_string(), change.source.clone());
        metrics
            .write_back_deliveries
            .get_or_create(&SyncLabels {
                tenant: tenant.clone(),
                source: source.clone(),
                outcome: outcome_name.to_string(),
            })
            .inc();
        if matches!(outcome, Outcome::Delivered { .. }) {
            metrics
                .write_back_latency
                .get_or_create(&SourceLabels { tenant, source })
                .observe((now - change.created_at).max(0) as f64 / 1000.0);
        }
    }
}
