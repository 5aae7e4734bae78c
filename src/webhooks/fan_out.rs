//! Queues each event for each subscribed webhook of its tenant, in the transaction of the
//! change (so a delivery is queued exactly when its change commits). Which webhooks a
//! tenant has is cached per process for a few seconds, as the writable sources are: a
//! tenant without webhooks pays no statement on a change.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::prelude::{Webhook as WebhookRow, WebhookDelivery};
use entity::{contact_event, webhook, webhook_delivery};
use sea_orm::sea_query::InsertStatement;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryTrait,
};
use serde_json::json;
use uuid::Uuid;

use super::state;
use super::store::events_of;
use crate::error::Result;
use crate::tenancy::TenantId;

/// How long a tenant's webhooks are trusted without asking the database.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// An enabled webhook and the kinds it asks for (empty: all).
#[derive(Clone, Debug)]
struct Subscribed {
    id: Uuid,
    kinds: Vec<String>,
}

type Cached = (Instant, Arc<Vec<Subscribed>>);

static CACHE: Mutex<Option<HashMap<Uuid, Cached>>> = Mutex::new(None);

async fn subscribed(db: &impl ConnectionTrait, tenant: Uuid) -> Result<Arc<Vec<Subscribed>>> {
    if let Ok(cache) = CACHE.lock()
        && let Some((at, hooks)) = cache.as_ref().and_then(|c| c.get(&tenant))
        && at.elapsed() < CACHE_TTL
    {
        return Ok(hooks.clone());
    }
    let hooks: Arc<Vec<Subscribed>> = Arc::new(
        WebhookRow::find()
            .filter(webhook::Column::TenantId.eq(tenant))
            .filter(webhook::Column::Enabled.eq(true))
            .all(db)
            .await?
            .iter()
            .map(|w| Subscribed {
                id: w.id,
                kinds: events_of(w),
            })
            .collect(),
    );
    if let Ok(mut cache) = CACHE.lock() {
        cache
            .get_or_insert_with(HashMap::new)
            .insert(tenant, (Instant::now(), hooks.clone()));
    }
    Ok(hooks)
}

/// Drops what this process knows of the tenant's webhooks (after a change to them).
pub fn forget(tenant: TenantId) {
    if let Ok(mut cache) = CACHE.lock()
        && let Some(cache) = cache.as_mut()
    {
        cache.remove(&tenant.0);
    }
}

/// The deliveries of `events` to the webhooks subscribed to them (none, and no statement
/// once cached, when their tenants have no webhook).
pub async fn deliveries(
    db: &impl ConnectionTrait,
    events: &[contact_event::Model],
) -> Result<Vec<webhook_delivery::Model>> {
    let mut out = Vec::new();
    let mut hooks_of: HashMap<Uuid, Arc<Vec<Subscribed>>> = HashMap::new();
    for event in events {
        let hooks = match hooks_of.get(&event.tenant_id) {
            Some(hooks) => hooks.clone(),
            None => {
                let hooks = subscribed(db, event.tenant_id).await?;
                hooks_of.insert(event.tenant_id, hooks.clone());
                hooks
            }
        };
        for hook in hooks.iter() {
            if hook.kinds.is_empty() || hook.kinds.contains(&event.kind) {
                out.push(delivery(hook.id, event));
            }
        }
    }
    Ok(out)
}

/// The delivery of `event` to webhook `webhook`: its body as Standard Webhooks suggests
/// (`type`, `timestamp`, `data`).
pub fn delivery(webhook: Uuid, event: &contact_event::Model) -> webhook_delivery::Model {
    let changed: Vec<String> = event
        .changed_fields
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_default();
    let body = json!({
        "type": format!("contact.{}", event.kind.to_lowercase()),
        "timestamp": crate::time::format_millis(event.created_at),
        "data": {
            "kind": event.kind,
            "contactId": event.contact_id,
            "changedFields": changed,
            "survivorId": event.survivor_id,
        }
    });
    webhook_delivery::Model {
        id: Uuid::now_v7(),
        tenant_id: event.tenant_id,
        webhook_id: webhook,
        contact_id: event.contact_id,
        kind: event.kind.clone(),
        body: body.to_string(),
        state: state::PENDING.to_string(),
        attempts: 0,
        next_attempt_at: event.created_at,
        status_code: None,
        duration_ms: None,
        last_error: None,
        delivered_at: None,
        created_at: event.created_at,
        updated_at: event.created_at,
    }
}

/// The INSERT of `deliveries`.
pub fn insert_statement(deliveries: Vec<webhook_delivery::Model>) -> InsertStatement {
    WebhookDelivery::insert_many(
        deliveries
            .into_iter()
            .map(IntoActiveModel::into_active_model),
    )
    .into_query()
}

/// Inserts `deliveries` inside `txn`; nothing when empty.
pub async fn queue(
    txn: &impl ConnectionTrait,
    deliveries: Vec<webhook_delivery::Model>,
) -> Result<()> {
    for chunk in deliveries.chunks(1_000) {
        WebhookDelivery::insert_many(
            chunk
                .iter()
                .cloned()
                .map(IntoActiveModel::into_active_model),
        )
        .exec_without_returning(txn)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_body_names_the_event_and_the_contact() {
        let mut event =
            crate::events::event(TenantId(Uuid::nil()), Uuid::from_u128(7), "UPDATED", 0);
        event.changed_fields = Some(r#"["lastName"]"#.into());
        let delivery = delivery(Uuid::from_u128(1), &event);
        let body: serde_json::Value = serde_json::from_str(&delivery.body).unwrap_or_default();
        assert_eq!(body["type"], "contact.updated");
        assert_eq!(body["timestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(body["data"]["contactId"], Uuid::from_u128(7).to_string());
        assert_eq!(body["data"]["changedFields"], json!(["lastName"]));
        assert_eq!(delivery.state, "PENDING");
    }
}
