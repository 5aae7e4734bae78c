//! Webhooks in GraphQL: `webhooks`, `createWebhook` (the signing secret is shown once),
//! `updateWebhook`, `deleteWebhook`, `rotateWebhookSecret`, each webhook's delivery log
//! and `redeliverWebhookDelivery`. Every field needs `webhooks:manage`.
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use entity::{webhook, webhook_delivery};

use super::RequestContext;
use super::connection::{Connection, TotalCount};
use super::ids::parse_id;
use super::loader::WebhookDeliveryPageKey;
use super::subscription::ContactChangeKind;
use crate::change::Change;
use crate::paging::{Page, PageArgs};
use crate::sources::sync::Syncer;
use crate::time::{Timestamp, now_millis};
use crate::webhooks::store::{self, NewWebhook, UrlPolicy, WebhookUpdate};
use crate::webhooks::{delivery, state};

/// A URL told of your contacts' changes, as Standard Webhooks: each delivery is a POST
/// of `{"type": "contact.updated", "timestamp", "data": {kind, contactId, changedFields,
/// survivorId}}` with the headers `webhook-id` (the same on every attempt),
/// `webhook-timestamp` (seconds) and `webhook-signature` (`v1,` + base64 HMAC-SHA256 of
/// `id.timestamp.body` with the secret).
#[derive(Clone)]
pub struct Webhook(webhook::Model);

/// Every field of a page's Webhook goes through its resolver.
impl super::plain_fields::DirectFields for Webhook {}

#[Object]
impl Webhook {
    /// The webhook's id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The changes sent (empty: all of them).
    async fn events(&self) -> Vec<ContactChangeKind> {
        store::events_of(&self.0)
            .iter()
            .map(|k| ContactChangeKind::of(k))
            .collect()
    }

    /// What it is for.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// Whether deliveries are queued and sent. The server disables a webhook whose every
    /// delivery failed for 3 days (`disabledReason`); `updateWebhook(enabled: true)`
    /// enables it again.
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Since when every delivery has failed (null when the last one succeeded).
    async fn failing_since(&self) -> Option<Timestamp> {
        self.0.failing_since.map(Timestamp::from_millis)
    }

    /// Why the server disabled it.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// When it was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.created_at)
    }

    /// When it was last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.updated_at)
    }

    /// Its deliveries, newest first: each event once, with its last attempt.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(minimum = 0, maximum = 100))] first: Option<i32>,
        after: Option<String>,
        #[graphql(validator(minimum = 0, maximum = 100))] last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<WebhookDelivery>> {
        let request = RequestContext::of(ctx)?;
        let args = PageArgs::from_relay(first, after, last, before)?;
        // Through a loader: the logs of a page of webhooks are one statement.
        let key = WebhookDeliveryPageKey::new(ctx, self.0.id, (), (), args.clone());
        let page = request
            .loaders
            .webhook_delivery_pages
            .load_one(key)
            .await?
            .unwrap_or_else(|| Page::none(&args));
        let total = TotalCount::Known(page.total.unwrap_or(0));
        Ok(Connection::new(
            page,
            &delivery::ordering(),
            total,
            WebhookDelivery,
        ))
    }
}

/// One event sent (or to be sent) to a webhook.
#[derive(Clone)]
pub struct WebhookDelivery(webhook_delivery::Model);

/// Every field of a page's WebhookDelivery goes through its resolver.
impl super::plain_fields::DirectFields for WebhookDelivery {}

#[Object]
impl WebhookDelivery {
    /// The delivery's id, also its `webhook-id` header.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The change reported.
    async fn kind(&self) -> ContactChangeKind {
        ContactChangeKind::of(&self.0.kind)
    }

    /// The contact changed.
    async fn contact_id(&self) -> ID {
        ID(self.0.contact_id.to_string())
    }

    /// `PENDING`, `DELIVERING`, `DELIVERED` or `FAILED` (the webhook was disabled).
    async fn state(&self) -> &str {
        &self.0.state
    }

    /// Attempts made.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    /// The HTTP status of the last attempt (null when no answer came).
    async fn status_code(&self) -> Option<i32> {
        self.0.status_code
    }

    /// How long the last attempt took, in milliseconds.
    async fn duration_ms(&self) -> Option<i64> {
        self.0.duration_ms
    }

    /// Why the last attempt failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// When the next attempt is due (while not delivered).
    async fn next_attempt_at(&self) -> Option<Timestamp> {
        (self.0.state == state::PENDING).then(|| Timestamp::from_millis(self.0.next_attempt_at))
    }

    /// When it was delivered.
    async fn delivered_at(&self) -> Option<Timestamp> {
        self.0.delivered_at.map(Timestamp::from_millis)
    }

    /// When the change happened.
    async fn created_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.created_at)
    }

    /// The JSON body sent.
    async fn body(&self) -> &str {
        &self.0.body
    }
}

/// Reading webhooks.
#[derive(Default)]
pub struct WebhookQueries;

#[Object]
impl WebhookQueries {
    /// Your tenant's webhooks, newest first.
    async fn webhooks(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(minimum = 0, maximum = 100))] first: Option<i32>,
        after: Option<String>,
        #[graphql(validator(minimum = 0, maximum = 100))] last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<Webhook>> {
        let request = RequestContext::of(ctx)?;
        let args = PageArgs::from_relay(first, after, last, before)?;
        let (page, ordering) = store::page(request.db, request.tenant, &args).await?;
        let (db, tenant) = (request.db.clone(), request.tenant);
        let total = TotalCount::Deferred(Arc::new(move || {
            let db = db.clone();
            Box::pin(async move { store::count(&db, tenant).await })
        }));
        Ok(Connection::new(page, &ordering, total, Webhook))
    }
}

/// Input of `createWebhook`.
#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// Where deliveries are POSTed: http(s); in production not a loopback, private or
    /// link-local address unless `WEBHOOKS_ALLOW_PRIVATE_NETWORKS` (at most 2,048
    /// characters).
    pub url: String,
    /// The changes to send; all of them when omitted or empty (`LAGGED` is not one).
    pub events: Option<Vec<ContactChangeKind>>,
    /// What it is for (at most 500 characters).
    pub description: Option<String>,
}

/// Input of `updateWebhook`: the fields given change.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    /// The webhook.
    pub id: ID,
    /// A new URL.
    pub url: Option<String>,
    /// The changes to send (empty: all).
    pub events: Option<Vec<ContactChangeKind>>,
    /// A new description; `null` clears it.
    pub description: MaybeUndefined<String>,
    /// `false` stops deliveries; `true` starts them again and forgets a run of failures.
    pub enabled: Option<bool>,
}

/// A webhook with its signing secret.
#[derive(SimpleObject)]
pub struct WebhookWithSecret {
    /// The webhook.
    pub webhook: Webhook,
    /// The signing secret (`whsec_` + base64): shown only now; keep it to verify
    /// `webhook-signature`.
    pub secret: String,
}

/// The result of `updateWebhook`.
#[derive(SimpleObject)]
pub struct UpdateWebhookPayload {
    /// The webhook as changed.
    pub webhook: Webhook,
}

/// The result of `deleteWebhook`.
#[derive(SimpleObject)]
pub struct DeleteWebhookPayload {
    /// The id of the deleted webhook.
    pub deleted_webhook_id: ID,
}

/// The result of `redeliverWebhookDelivery`.
#[derive(SimpleObject)]
pub struct RedeliverPayload {
    /// The delivery, queued again.
    pub delivery: WebhookDelivery,
}

fn kinds(events: Option<Vec<ContactChangeKind>>) -> Vec<String> {
    events
        .unwrap_or_default()
        .into_iter()
        .map(|k| k.as_str().to_string())
        .collect()
}

/// Changing webhooks.
#[derive(Default)]
pub struct WebhookMutations;

#[Object]
impl WebhookMutations {
    /// Registers a webhook; the answer holds its signing secret, shown only this once.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookInput,
    ) -> async_graphql::Result<WebhookWithSecret> {
        let request = RequestContext::of(ctx)?;
        let syncer = ctx.data::<Arc<Syncer>>()?;
        let policy = *ctx.data::<UrlPolicy>()?;
        let new = NewWebhook {
            url: input.url,
            events: kinds(input.events),
            description: input.description,
        };
        let created = store::create(
            request.db,
            syncer.key.as_ref(),
            request.tenant,
            &new,
            policy,
            now_millis(),
        )
        .await
        .map_err(|e| e.under("input"))?;
        Ok(WebhookWithSecret {
            webhook: Webhook(created.webhook),
            secret: created.secret,
        })
    }

    /// Changes a webhook of your tenant (`NOT_FOUND` for another's).
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookInput,
    ) -> async_graphql::Result<UpdateWebhookPayload> {
        let request = RequestContext::of(ctx)?;
        let policy = *ctx.data::<UrlPolicy>()?;
        let id = parse_id("input.id", &input.id)?;
        let changes = WebhookUpdate {
            url: input.url,
            events: input.events.map(|e| kinds(Some(e))),
            description: match input.description {
                MaybeUndefined::Undefined => Change::Keep,
                MaybeUndefined::Null => Change::Clear,
                MaybeUndefined::Value(d) => Change::Set(d),
            },
            enabled: input.enabled,
        };
        let webhook = store::update(
            request.db,
            request.tenant,
            id,
            &changes,
            policy,
            now_millis(),
        )
        .await
        .map_err(|e| e.under("input"))?;
        Ok(UpdateWebhookPayload {
            webhook: Webhook(webhook),
        })
    }

    /// Deletes a webhook of your tenant and its delivery log.
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook.")] id: ID,
    ) -> async_graphql::Result<DeleteWebhookPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("id", &id)?;
        let deleted = store::delete(request.db, request.tenant, id).await?;
        Ok(DeleteWebhookPayload {
            deleted_webhook_id: ID(deleted.to_string()),
        })
    }

    /// Gives a webhook a new signing secret, shown only in this answer; deliveries sent
    /// from now on are signed with it.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The webhook.")] id: ID,
    ) -> async_graphql::Result<WebhookWithSecret> {
        let request = RequestContext::of(ctx)?;
        let syncer = ctx.data::<Arc<Syncer>>()?;
        let id = parse_id("id", &id)?;
        let rotated = store::rotate_secret(
            request.db,
            syncer.key.as_ref(),
            request.tenant,
            id,
            now_millis(),
        )
        .await?;
        Ok(WebhookWithSecret {
            webhook: Webhook(rotated.webhook),
            secret: rotated.secret,
        })
    }

    /// Sends a delivery again (due now, the same `webhook-id`).
    async fn redeliver_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The delivery.")] id: ID,
    ) -> async_graphql::Result<RedeliverPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("id", &id)?;
        let delivery = delivery::redeliver(request.db, request.tenant, id, now_millis()).await?;
        Ok(RedeliverPayload {
            delivery: WebhookDelivery(delivery),
        })
    }
}
