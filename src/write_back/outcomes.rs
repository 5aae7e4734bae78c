//! What became of deliveries: delivered, due again after a backoff, failed, or refused as a
//! conflict; and queueing a failed change again.

use entity::prelude::WriteBack as WriteBackRow;
use entity::write_back;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::Value;
use uuid::Uuid;

use super::outbox::{operation, state};
use super::queue::find;
use crate::db::begin_write;
use crate::error::{Error, Result};
use crate::events::kind;
use crate::tenancy::TenantId;

/// What became of one delivery.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The vendor took it; `answer` is the JSON object it answered with, if any (its new
    /// version of the record).
    Delivered { answer: Option<Value> },
    /// Worth trying again (429, 5xx, no answer), not before `retry_after_ms` if the vendor
    /// said so.
    Retry {
        error: String,
        retry_after_ms: Option<i64>,
    },
    /// Refused for good (another 4xx): the vendor's message.
    Failed { error: String },
    /// Refused by the precondition (412) or as a conflict (409).
    Conflict { error: String },
}

/// The longest `Retry-After` followed (a day, in ms).
const MAX_RETRY_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// How retries are spaced: `base_ms` doubled after each attempt, up to `max_attempts`.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub base_ms: i64,
    pub max_attempts: i32,
}

impl Default for RetryPolicy {
    /// 10 attempts, 2.5 minutes apart and doubling: the last about 21 hours after the first.
    fn default() -> Self {
        Self {
            base_ms: 150_000,
            max_attempts: 10,
        }
    }
}

impl RetryPolicy {
    /// When attempt `attempts + 1` is due after attempt `attempts` failed at `now`, or
    /// `None` when none is left.
    pub fn next_attempt(
        &self,
        attempts: i32,
        retry_after_ms: Option<i64>,
        now: i64,
    ) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(0);
        let backoff = self.base_ms.saturating_mul(1_i64 << exponent);
        // A vendor's `Retry-After` is followed up to a day.
        let told = retry_after_ms.unwrap_or(0).clamp(0, MAX_RETRY_AFTER_MS);
        Some(now.saturating_add(backoff.max(told)))
    }
}

/// Records what became of delivered changes, in one transaction: each goes to `DELIVERED`,
/// back to `PENDING` (due again after its backoff), `FAILED` or `CONFLICT`. A delivered
/// update's values are put into the stored record's mapped state, so that the next sync
/// does not take the gateway's own write for a vendor change.
pub async fn record_outcomes(
    db: &DatabaseConnection,
    outcomes: Vec<(write_back::Model, Outcome)>,
    policy: RetryPolicy,
    now: i64,
) -> Result<()> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let (txn, _lock) = begin_write(db).await?;
    let mut events = Vec::new();
    for (change, outcome) in outcomes {
        let mut row: write_back::ActiveModel = change.clone().into();
        row.updated_at = Set(now);
        match outcome {
            Outcome::Delivered { answer } => {
                row.state = Set(state::DELIVERED.into());
                row.delivered_at = Set(Some(now));
                row.last_error = Set(None);
                if change.operation == operation::UPDATE {
                    super::echo::remember_written(&txn, &change, answer.as_ref()).await?;
                }
            }
            Outcome::Retry {
                error,
                retry_after_ms,
            } => match policy.next_attempt(change.attempts, retry_after_ms, now) {
                Some(due) => {
                    row.state = Set(state::PENDING.into());
                    row.next_attempt_at = Set(due);
                    row.last_error = Set(Some(error));
                }
                None => {
                    row.state = Set(state::FAILED.into());
                    row.last_error = Set(Some(format!(
                        "gave up after {} attempts: {error}",
                        change.attempts
                    )));
                }
            },
            Outcome::Failed { error } => {
                row.state = Set(state::FAILED.into());
                row.last_error = Set(Some(error));
            }
            Outcome::Conflict { error } => {
                row.state = Set(state::CONFLICT.into());
                row.last_error = Set(Some(error));
            }
        }
        let conflicted =
            matches!(row.state, sea_orm::ActiveValue::Set(ref s) if s == state::CONFLICT);
        let kind = match &row.state {
            sea_orm::ActiveValue::Set(s) if s == state::DELIVERED => {
                Some(kind::WRITE_BACK_DELIVERED)
            }
            sea_orm::ActiveValue::Set(s) if s == state::FAILED => Some(kind::WRITE_BACK_FAILED),
            sea_orm::ActiveValue::Set(s) if s == state::CONFLICT => Some(kind::WRITE_CONFLICT),
            _ => None,
        };
        // Only while this worker still holds it (not claimed again after a lapsed lease).
        let held = WriteBackRow::update_many()
            .set(row)
            .filter(write_back::Column::Id.eq(change.id))
            .filter(write_back::Column::State.eq(state::DELIVERING))
            .filter(write_back::Column::Attempts.eq(change.attempts))
            .exec(&txn)
            .await?;
        if let Some(kind) = kind
            && held.rows_affected == 1
        {
            let tenant = TenantId(change.tenant_id);
            events.push(crate::events::event(tenant, change.contact_id, kind, now));
        }
        if conflicted && held.rows_affected == 1 {
            let mut refused = change.clone();
            refused.state = state::CONFLICT.into();
            refused.updated_at = now;
            super::conflicts::record_known(&txn, &refused, now).await?;
        }
    }
    crate::events::record(&txn, events).await?;
    txn.commit().await?;
    Ok(())
}

/// Queues a `FAILED` or `CONFLICT` change of the tenant again (`retryWriteBack`): due now,
/// its attempts counted afresh. `NOT_FOUND` for another tenant's or an unknown change;
/// `VALIDATION_FAILED` for one in another state.
pub async fn retry(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    now: i64,
) -> Result<write_back::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let change = find(&txn, tenant, id).await?;
    if change.state != state::FAILED && change.state != state::CONFLICT {
        return Err(Error::invalid(
            "id",
            format!(
                "the change is {}; only FAILED or CONFLICT changes are retried",
                change.state
            ),
        ));
    }
    WriteBackRow::update_many()
        .col_expr(write_back::Column::State, Expr::value(state::PENDING))
        .col_expr(write_back::Column::Attempts, Expr::value(0))
        .col_expr(write_back::Column::NextAttemptAt, Expr::value(now))
        .col_expr(write_back::Column::UpdatedAt, Expr::value(now))
        .filter(write_back::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    let change = find(&txn, tenant, id).await?;
    txn.commit().await?;
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_doubling_and_wait_at_least_as_told() {
        let policy = RetryPolicy {
            base_ms: 1_000,
            max_attempts: 4,
        };
        assert_eq!(policy.next_attempt(1, None, 0), Some(1_000));
        assert_eq!(policy.next_attempt(2, None, 0), Some(2_000));
        assert_eq!(policy.next_attempt(3, None, 0), Some(4_000));
        assert_eq!(policy.next_attempt(2, Some(30_000), 0), Some(30_000));
        assert_eq!(policy.next_attempt(4, None, 0), None, "no attempt left");
        let day: i64 = (1..10)
            .map(|n| RetryPolicy::default().next_attempt(n, None, 0).unwrap_or(0))
            .sum();
        assert!((16 * 3_600_000..24 * 3_600_000).contains(&day), "{day}");
    }
}
