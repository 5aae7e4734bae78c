//! The webhook delivery worker in `serve`: claims due deliveries, sends them (several at
//! once), records the outcomes; stops between batches when told.
use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::delivery::{self, Attempt};
use super::store::secret_of;
use crate::secrets::SecretKey;
use crate::time::now_millis;

/// Deliveries claimed (and sent at once) per batch.
const CLAIM: u64 = 16;

/// The delivery worker's settings.
pub struct Worker {
    pub db: DatabaseConnection,
    /// Sends the requests (public addresses only unless private networks are allowed).
    pub client: reqwest::Client,
    /// Which URLs may be sent to: a URL naming a private address is refused here too (the
    /// client's check covers names only), whenever the webhook was created.
    pub urls: super::store::UrlPolicy,
    pub key: Option<SecretKey>,
    /// How often the queue is looked at when it was empty.
    pub poll: Duration,
    /// How long a claimed delivery is held before another worker may take it.
    pub lease: Duration,
    /// The first retry's wait, in milliseconds (doubling each time, at most an hour).
    pub backoff_ms: i64,
    /// How long a webhook may fail before it is disabled, in milliseconds (3 days).
    pub disable_after_ms: i64,
    /// How long delivered deliveries are kept (the change events: a day).
    pub retention: Duration,
}

/// How often old events and delivered deliveries are removed.
const PURGE_EVERY: Duration = Duration::from_secs(60 * 60);

/// How long change events are kept.
pub const EVENT_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

impl Worker {
    /// Delivers until `stop` is cancelled.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut purged: Option<std::time::Instant> = None;
        loop {
            if purged.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                purged = Some(std::time::Instant::now());
                let now = now_millis();
                let events_before = now - EVENT_RETENTION.as_millis() as i64;
                let delivered_before = now - self.retention.as_millis() as i64;
                if let Err(error) = delivery::purge(&self.db, events_before, delivered_before).await
                {
                    tracing::warn!(?error, "removing old change events and deliveries failed");
                }
            }
            let busy = match self.deliver_once().await {
                Ok(sent) => sent > 0,
                Err(error) => {
                    tracing::warn!(?error, "delivering webhooks failed");
                    false
                }
            };
            if !busy {
                tokio::select! {
                    _ = tokio::time::sleep(self.poll) => {}
                    _ = stop.cancelled() => return,
                }
            } else if stop.is_cancelled() {
                return;
            }
        }
    }

    /// Claims, sends and records one batch; returns how many were sent.
    pub async fn deliver_once(&self) -> crate::error::Result<usize> {
        let now = now_millis();
        let lease_until = now + self.lease.as_millis() as i64;
        let claimed = delivery::claim(&self.db, now, lease_until, CLAIM).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let webhooks = delivery::webhooks_of(&self.db, &claimed).await?;
        let timestamp = now / 1000;
        let sends = claimed.iter().map(|d| {
            let hook = webhooks.iter().find(|w| w.id == d.webhook_id);
            async move {
                let Some(hook) = hook.filter(|h| h.enabled) else {
                    return delivery::refused("the webhook is disabled");
                };
                if !self.urls.allow_private_networks
                    && let Err(reason) = crate::sources::network::check_url(&hook.url)
                {
                    return delivery::refused(&reason);
                }
                let headers = secret_of(self.key.as_ref(), hook)
                    .and_then(|secret| delivery::signed_headers(d, &secret, timestamp));
                match headers {
                    Ok(headers) => delivery::send(&self.client, &hook.url, d, headers).await,
                    Err(error) => {
                        tracing::warn!(?error, "a webhook delivery could not be signed");
                        delivery::refused("the delivery could not be signed")
                    }
                }
            }
        });
        let attempts: Vec<Attempt> = futures::future::join_all(sends).await;
        let sent = attempts.len();
        delivery::record(
            &self.db,
            claimed.into_iter().zip(attempts).collect(),
            self.backoff_ms,
            self.disable_after_ms,
            now_millis(),
        )
        .await?;
        Ok(sent)
    }
}
