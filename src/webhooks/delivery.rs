//! Sending queued deliveries: claim (a lease, as write-back's: the oldest undelivered
//! delivery of each webhook and contact, so a contact's events arrive in order; `FOR
//! UPDATE SKIP LOCKED` on PostgreSQL so replicas never take one twice), sign and POST,
//! record the outcome.
use std::time::{Duration, Instant};

use entity::prelude::{Webhook as WebhookRow, WebhookDelivery};
use entity::{webhook, webhook_delivery};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    QueryFilter, Statement,
};
use uuid::Uuid;

use super::state;
use crate::db::begin_write;
use crate::error::{Error, Result};
use crate::tenancy::{TenantId, scoped};

/// Longest a webhook may take to answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait between two attempts.
pub const MAX_BACKOFF_MS: i64 = 60 * 60 * 1000;

/// How a delivery attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The HTTP status, if an answer came.
    pub status: Option<u16>,
    pub duration_ms: i64,
    /// Why it failed (none: delivered).
    pub error: Option<String>,
}

/// When the next attempt after `attempts` failed ones is due: `base_ms` doubling, at most
/// [`MAX_BACKOFF_MS`].
pub fn next_attempt_at(attempts: i32, base_ms: i64, now: i64) -> i64 {
    let exponent = attempts.clamp(1, 30) as u32 - 1;
    now + base_ms
        .saturating_mul(1_i64 << exponent.min(20))
        .min(MAX_BACKOFF_MS)
}

/// Whether a webhook failing since `since` is to be disabled at `now`.
pub fn gives_up(since: Option<i64>, now: i64, disable_after_ms: i64) -> bool {
    since.is_some_and(|since| now - since >= disable_after_ms)
}

/// Claims up to `limit` due deliveries, `DELIVERING` until `lease_until`.
pub async fn claim(
    db: &DatabaseConnection,
    now: i64,
    lease_until: i64,
    limit: u64,
) -> Result<Vec<webhook_delivery::Model>> {
    let backend = db.get_database_backend();
    let (lock, p) = match backend {
        DbBackend::Postgres => (" FOR UPDATE SKIP LOCKED", ["$1", "$2", "$3", "$4"]),
        _ => ("", ["?", "?", "?", "?"]),
    };
    let sql = format!(
        "UPDATE webhook_deliveries SET state = 'DELIVERING', next_attempt_at = {lease}, \
         attempts = attempts + 1, updated_at = {now} \
         WHERE id IN (SELECT d.id FROM webhook_deliveries d \
           WHERE d.state IN ('PENDING', 'DELIVERING') AND d.next_attempt_at <= {now2} \
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
             AND e.contact_id = d.contact_id AND e.state IN ('PENDING', 'DELIVERING') \
             AND e.id < d.id) \
           ORDER BY d.next_attempt_at LIMIT {limit}{lock}) \
         RETURNING *",
        lease = p[0],
        now = p[1],
        now2 = p[2],
        limit = p[3],
    );
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [
            lease_until.into(),
            now.into(),
            now.into(),
            (limit as i64).into(),
        ],
    );
    let (txn, _lock) = begin_write(db).await?;
    let rows = txn.query_all_raw(statement).await?;
    txn.commit().await?;
    let mut claimed = rows
        .iter()
        .map(|row| webhook_delivery::Model::from_query_result(row, ""))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    claimed.sort_by_key(|c| c.id);
    Ok(claimed)
}

/// The webhooks of `deliveries`.
pub async fn webhooks_of(
    db: &DatabaseConnection,
    deliveries: &[webhook_delivery::Model],
) -> Result<Vec<webhook::Model>> {
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    Ok(WebhookRow::find()
        .filter(webhook::Column::Id.is_in(deliveries.iter().map(|d| d.webhook_id)))
        .all(db)
        .await?)
}

/// The Standard Webhooks headers of `delivery`, signed with `secret` at `timestamp`
/// (seconds): `webhook-id`, `webhook-timestamp`, `webhook-signature` (`v1,` + base64
/// HMAC-SHA256 of `id.timestamp.body`).
pub fn signed_headers(
    delivery: &webhook_delivery::Model,
    secret: &str,
    timestamp: i64,
) -> Result<Vec<(&'static str, String)>> {
    let id = delivery.id.to_string();
    let signer = standardwebhooks::Webhook::new(secret)
        .map_err(|err| Error::Internal(format!("a webhook secret is malformed: {err}")))?;
    let signature = signer
        .sign(&id, timestamp, delivery.body.as_bytes())
        .map_err(|err| Error::Internal(format!("signing a webhook failed: {err}")))?;
    Ok(vec![
        ("webhook-id", id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ])
}

/// POSTs `delivery` to `url` with `headers`.
pub async fn send(
    client: &reqwest::Client,
    url: &str,
    delivery: &webhook_delivery::Model,
    headers: Vec<(&'static str, String)>,
) -> Attempt {
    let started = Instant::now();
    let mut request = client
        .post(url)
        .timeout(TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(delivery.body.clone());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let answer = request.send().await;
    let duration_ms = started.elapsed().as_millis() as i64;
    match answer {
        Ok(response) if response.status().is_success() => Attempt {
            status: Some(response.status().as_u16()),
            duration_ms,
            error: None,
        },
        Ok(mut response) => {
            let status = response.status();
            // The first chunk of the answer only: a receiver cannot make us read more.
            let chunk = response.chunk().await.ok().flatten().unwrap_or_default();
            let body: String = String::from_utf8_lossy(&chunk[..chunk.len().min(200)])
                .chars()
                .take(200)
                .collect();
            Attempt {
                status: Some(status.as_u16()),
                duration_ms,
                error: Some(format!("HTTP {status}: {body}")),
            }
        }
        Err(err) if err.is_timeout() => Attempt {
            status: None,
            duration_ms,
            error: Some(format!("no answer within {} s", TIMEOUT.as_secs())),
        },
        Err(err) => Attempt {
            status: None,
            duration_ms,
            error: Some(format!("the request failed: {err}")),
        },
    }
}

/// Records the attempts in one transaction: delivered, or due again with backoff; a
/// webhook failing for `disable_after_ms` is disabled and its queued deliveries fail.
pub async fn record(
    db: &DatabaseConnection,
    attempts: Vec<(webhook_delivery::Model, Attempt)>,
    base_backoff_ms: i64,
    disable_after_ms: i64,
    now: i64,
) -> Result<()> {
    if attempts.is_empty() {
        return Ok(());
    }
    let hooks: Vec<Uuid> = attempts.iter().map(|(d, _)| d.webhook_id).collect();
    let (txn, _lock) = begin_write(db).await?;
    let webhooks = WebhookRow::find()
        .filter(webhook::Column::Id.is_in(hooks))
        .all(&txn)
        .await?;
    let mut succeeded = Vec::new();
    let mut failed = Vec::new();
    // Deliveries of a webhook deleted meanwhile go with it.
    let (orphans, attempts): (Vec<_>, Vec<_>) = attempts
        .into_iter()
        .partition(|(d, _)| webhooks.iter().all(|w| w.id != d.webhook_id));
    if !orphans.is_empty() {
        WebhookDelivery::delete_many()
            .filter(webhook_delivery::Column::Id.is_in(orphans.iter().map(|(d, _)| d.id)))
            .exec(&txn)
            .await?;
    }
    for (delivery, attempt) in attempts {
        let held = WebhookDelivery::update_many()
            .filter(webhook_delivery::Column::Id.eq(delivery.id))
            .filter(webhook_delivery::Column::State.eq(state::DELIVERING))
            .filter(webhook_delivery::Column::Attempts.eq(delivery.attempts))
            .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
            .col_expr(
                webhook_delivery::Column::StatusCode,
                Expr::value(attempt.status.map(i32::from)),
            )
            .col_expr(
                webhook_delivery::Column::DurationMs,
                Expr::value(attempt.duration_ms),
            )
            .col_expr(
                webhook_delivery::Column::LastError,
                Expr::value(attempt.error.clone()),
            );
        let held = match &attempt.error {
            None => {
                succeeded.push(delivery.webhook_id);
                held.col_expr(
                    webhook_delivery::Column::State,
                    Expr::value(state::DELIVERED),
                )
                .col_expr(webhook_delivery::Column::DeliveredAt, Expr::value(now))
            }
            Some(_) => {
                failed.push(delivery.webhook_id);
                held.col_expr(webhook_delivery::Column::State, Expr::value(state::PENDING))
                    .col_expr(
                        webhook_delivery::Column::NextAttemptAt,
                        Expr::value(next_attempt_at(delivery.attempts, base_backoff_ms, now)),
                    )
            }
        };
        held.exec(&txn).await?;
    }
    for hook in &webhooks {
        if succeeded.contains(&hook.id) {
            if hook.failing_since.is_some() {
                WebhookRow::update_many()
                    .col_expr(
                        webhook::Column::FailingSince,
                        Expr::value(Option::<i64>::None),
                    )
                    .filter(webhook::Column::Id.eq(hook.id))
                    .exec(&txn)
                    .await?;
            }
        } else if failed.contains(&hook.id) {
            if gives_up(hook.failing_since, now, disable_after_ms) {
                disable(&txn, hook, now).await?;
            } else if hook.failing_since.is_none() {
                WebhookRow::update_many()
                    .col_expr(webhook::Column::FailingSince, Expr::value(now))
                    .filter(webhook::Column::Id.eq(hook.id))
                    .exec(&txn)
                    .await?;
            }
        }
    }
    txn.commit().await?;
    Ok(())
}

/// Disables `hook` after a run of failures; its queued deliveries fail.
async fn disable(
    txn: &sea_orm::DatabaseTransaction,
    hook: &webhook::Model,
    now: i64,
) -> Result<()> {
    let since = hook.failing_since.unwrap_or(now);
    let reason = format!(
        "every delivery failed since {}; fix the receiver, then set enabled: true and redeliver",
        crate::time::format_millis(since)
    );
    WebhookRow::update_many()
        .col_expr(webhook::Column::Enabled, Expr::value(false))
        .col_expr(webhook::Column::DisabledReason, Expr::value(reason))
        .col_expr(webhook::Column::UpdatedAt, Expr::value(now))
        .filter(webhook::Column::Id.eq(hook.id))
        .exec(txn)
        .await?;
    WebhookDelivery::update_many()
        .col_expr(webhook_delivery::Column::State, Expr::value(state::FAILED))
        .col_expr(
            webhook_delivery::Column::LastError,
            Expr::value("the webhook was disabled after a run of failures"),
        )
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_delivery::Column::WebhookId.eq(hook.id))
        .filter(webhook_delivery::Column::State.is_in([state::PENDING, state::DELIVERING]))
        .exec(txn)
        .await?;
    super::fan_out::forget(TenantId(hook.tenant_id));
    Ok(())
}

/// Fails `deliveries` at once (their webhook is disabled or unreadable): `error` says why.
pub fn refused(error: &str) -> Attempt {
    Attempt {
        status: None,
        duration_ms: 0,
        error: Some(error.to_string()),
    }
}

/// Queues the tenant's delivery `id` again, due now, under the same `webhook-id`
/// (`redeliverWebhookDelivery`). `NOT_FOUND` for another tenant's.
pub async fn redeliver(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    now: i64,
) -> Result<webhook_delivery::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let delivery = scoped::<WebhookDelivery>(tenant)
        .filter(webhook_delivery::Column::Id.eq(id))
        .one(&txn)
        .await?
        .ok_or_else(|| Error::NotFound("WebhookDelivery".into()))?;
    if delivery.state == state::DELIVERING {
        return Err(Error::invalid("id", "the delivery is being sent"));
    }
    WebhookDelivery::update_many()
        .col_expr(webhook_delivery::Column::State, Expr::value(state::PENDING))
        .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(now))
        .col_expr(webhook_delivery::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_delivery::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(webhook_delivery::Model {
        state: state::PENDING.into(),
        next_attempt_at: now,
        updated_at: now,
        ..delivery
    })
}

/// Removes change events recorded before `events_before` (the feed's readers only read new
/// ones) and deliveries delivered before `delivered_before` (milliseconds); returns how
/// many of each.
pub async fn purge(
    db: &DatabaseConnection,
    events_before: i64,
    delivered_before: i64,
) -> Result<(u64, u64)> {
    use entity::contact_event;
    use entity::prelude::ContactEvent;
    let events = ContactEvent::delete_many()
        .filter(contact_event::Column::CreatedAt.lt(events_before))
        .exec(db)
        .await?
        .rows_affected;
    let deliveries = WebhookDelivery::delete_many()
        .filter(webhook_delivery::Column::State.eq(state::DELIVERED))
        .filter(webhook_delivery::Column::DeliveredAt.lt(delivered_before))
        .exec(db)
        .await?
        .rows_affected;
    Ok((events, deliveries))
}

/// The delivery logs of the tenant's webhooks `webhooks`, newest first: one page each, in
/// one statement (and their totals in one more, when `with_totals`).
pub async fn logs(
    db: &DatabaseConnection,
    tenant: TenantId,
    webhooks: &[Uuid],
    args: &crate::paging::PageArgs,
    with_totals: bool,
) -> Result<std::collections::HashMap<Uuid, crate::paging::Page<webhook_delivery::Model>>> {
    use sea_orm::IntoSimpleExpr;
    crate::paging::fetch_pages_by_parent(
        db,
        scoped::<WebhookDelivery>(tenant),
        <webhook_delivery::Column as sea_orm::Iterable>::iter(),
        webhook_delivery::Column::WebhookId.into_simple_expr(),
        webhooks,
        &ordering(),
        args,
        with_totals,
        |row| sea_orm::FromQueryResult::from_query_result(row, ""),
    )
    .await
}

/// The order of a delivery log: newest first.
pub fn ordering() -> crate::paging::Ordering<webhook_delivery::Model> {
    use crate::paging::{Direction, KeyValue, Ordering, SortKey};
    use sea_orm::IntoSimpleExpr;
    Ordering::dedup(
        [],
        SortKey {
            name: "createdAt",
            expr: webhook_delivery::Column::CreatedAt.into_simple_expr(),
            direction: Direction::Desc,
            value: |m: &webhook_delivery::Model| KeyValue::Int(m.created_at),
            text: false,
        },
        webhook_delivery::Column::Id.into_simple_expr(),
        |m| m.id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(next_attempt_at(1, 1_000, 0), 1_000);
        assert_eq!(next_attempt_at(3, 1_000, 0), 4_000);
        assert_eq!(next_attempt_at(30, 1_000, 0), MAX_BACKOFF_MS);
    }

    #[test]
    fn a_webhook_is_given_up_after_its_run_of_failures() {
        assert!(!gives_up(None, 10, 5));
        assert!(!gives_up(Some(6), 10, 5));
        assert!(gives_up(Some(5), 10, 5));
    }

    #[test]
    fn signatures_verify_with_the_secret() {
        let delivery = webhook_delivery::Model {
            id: Uuid::from_u128(1),
            tenant_id: Uuid::nil(),
            webhook_id: Uuid::nil(),
            contact_id: Uuid::nil(),
            kind: "UPDATED".into(),
            body: r#"{"type":"contact.updated"}"#.into(),
            state: state::PENDING.into(),
            attempts: 0,
            next_attempt_at: 0,
            status_code: None,
            duration_ms: None,
            last_error: None,
            delivered_at: None,
            created_at: 0,
            updated_at: 0,
        };
        let secret = super::super::store::new_secret();
        let now = chrono::Utc::now().timestamp();
        let headers = signed_headers(&delivery, &secret, now).unwrap_or_default();
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.insert(
                name,
                value.parse().unwrap_or(http::HeaderValue::from_static("")),
            );
        }
        let verifier = standardwebhooks::Webhook::new(&secret).ok();
        assert!(verifier.is_some_and(|v| v.verify(delivery.body.as_bytes(), &map).is_ok()));
    }
}
