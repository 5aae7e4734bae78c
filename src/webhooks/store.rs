//! A tenant's webhooks: create (the signing secret is shown once), change, delete, rotate
//! the secret, list. The secret is stored sealed with the server's key.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use entity::prelude::{Webhook as WebhookRow, WebhookDelivery};
use entity::{webhook, webhook_delivery};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
};
use uuid::Uuid;

use crate::change::Change;
use crate::error::{Error, FieldFailure, Result};
use crate::events::kind;
use crate::paging::{self, Page, PageArgs};
use crate::secrets::SecretKey;
use crate::tenancy::{TenantId, scoped};

/// The event kinds a webhook may ask for.
pub const KINDS: [&str; 9] = [
    kind::CREATED,
    kind::UPDATED,
    kind::DELETED,
    kind::ARCHIVED,
    kind::RESTORED,
    kind::MERGED,
    kind::WRITE_BACK_DELIVERED,
    kind::WRITE_BACK_FAILED,
    kind::WRITE_CONFLICT,
];

/// Longest URL, in characters.
pub const MAX_URL: usize = 2_048;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 500;

/// Which hosts a webhook may point to: public ones only, unless private networks are
/// allowed (outside `--production`, or with `WEBHOOKS_ALLOW_PRIVATE_NETWORKS`).
#[derive(Clone, Copy, Debug)]
pub struct UrlPolicy {
    pub allow_private_networks: bool,
}

/// A webhook to create.
#[derive(Clone, Debug, Default)]
pub struct NewWebhook {
    pub url: String,
    /// Event kinds ([`KINDS`]); empty: all.
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// Changes to a webhook: absent fields stay.
#[derive(Clone, Debug, Default)]
pub struct WebhookUpdate {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Change<String>,
    /// `true` also forgets a run of failures (and why the server disabled it).
    pub enabled: Option<bool>,
}

/// A webhook with its signing secret (`whsec_` + base64 of 32 random bytes), shown once.
pub struct WithSecret {
    pub webhook: webhook::Model,
    pub secret: String,
}

/// The failures of a webhook's URL and events (each named by its field).
pub fn check(
    url: Option<&str>,
    events: Option<&[String]>,
    description: Option<&str>,
    policy: UrlPolicy,
) -> Vec<FieldFailure> {
    let mut failures = Vec::new();
    if let Some(url) = url {
        match url::Url::parse(url) {
            Err(err) => failures.push(FieldFailure::new("url", format!("not a URL: {err}"))),
            Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => failures.push(
                FieldFailure::new("url", "only http and https URLs can receive webhooks"),
            ),
            Ok(_) if url.chars().count() > MAX_URL => failures.push(FieldFailure::new(
                "url",
                format!("at most {MAX_URL} characters"),
            )),
            Ok(_) => {
                if !policy.allow_private_networks
                    && let Err(reason) = crate::sources::network::check_url(url)
                {
                    failures.push(FieldFailure::new(
                        "url",
                        format!("{reason} (set WEBHOOKS_ALLOW_PRIVATE_NETWORKS to allow it)"),
                    ));
                }
            }
        }
    }
    for (i, event) in events.unwrap_or_default().iter().enumerate() {
        if !KINDS.contains(&event.as_str()) {
            failures.push(FieldFailure::new(
                format!("events[{i}]"),
                format!("unknown event {event:?}: use one of {}", KINDS.join(", ")),
            ));
        }
    }
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        failures.push(FieldFailure::new(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    failures
}

/// A new signing secret.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("whsec_{}", STANDARD.encode(bytes))
}

fn sealed(key: Option<&SecretKey>, id: Uuid, secret: &str) -> Result<String> {
    let key = key.ok_or_else(|| {
        Error::invalid(
            "url",
            "this server has no secret key to store a signing secret with: set GATEWAY_SECRET_KEY",
        )
    })?;
    Ok(key.seal(secret, id.as_bytes()))
}

/// The signing secret of `webhook`.
pub fn secret_of(key: Option<&SecretKey>, webhook: &webhook::Model) -> Result<String> {
    let key = key.ok_or_else(|| {
        Error::Internal("no secret key (GATEWAY_SECRET_KEY) to open a webhook's secret".into())
    })?;
    key.open(&webhook.secret, webhook.id.as_bytes())
        .map_err(|err| Error::Internal(format!("a webhook's secret cannot be opened: {err}")))
}

fn events_json(events: &[String]) -> String {
    let mut events = events.to_vec();
    events.sort();
    events.dedup();
    serde_json::json!(events).to_string()
}

/// The event kinds of `webhook` (empty: all).
pub fn events_of(webhook: &webhook::Model) -> Vec<String> {
    serde_json::from_str(&webhook.events).unwrap_or_default()
}

/// Creates a webhook of the tenant; `VALIDATION_FAILED` names each failing field.
pub async fn create(
    db: &DatabaseConnection,
    key: Option<&SecretKey>,
    tenant: TenantId,
    input: &NewWebhook,
    policy: UrlPolicy,
    now: i64,
) -> Result<WithSecret> {
    let failures = check(
        Some(&input.url),
        Some(&input.events),
        input.description.as_deref(),
        policy,
    );
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    let id = Uuid::now_v7();
    let secret = new_secret();
    let row = webhook::Model {
        id,
        tenant_id: tenant.0,
        url: input.url.clone(),
        events: events_json(&input.events),
        description: input.description.clone(),
        secret: sealed(key, id, &secret)?,
        enabled: true,
        failing_since: None,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    let webhook = row.into_active_model().insert(db).await?;
    super::fan_out::forget(tenant);
    Ok(WithSecret { webhook, secret })
}

/// The tenant's webhook `id` (`NOT_FOUND` for another tenant's).
pub async fn find(db: &DatabaseConnection, tenant: TenantId, id: Uuid) -> Result<webhook::Model> {
    scoped::<WebhookRow>(tenant)
        .filter(webhook::Column::Id.eq(id))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound("Webhook".into()))
}

/// Changes the tenant's webhook `id`.
pub async fn update(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    changes: &WebhookUpdate,
    policy: UrlPolicy,
    now: i64,
) -> Result<webhook::Model> {
    let description = match &changes.description {
        Change::Set(d) => Some(d.as_str()),
        _ => None,
    };
    let failures = check(
        changes.url.as_deref(),
        changes.events.as_deref(),
        description,
        policy,
    );
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    find(db, tenant, id).await?;
    // Only the columns given are written (a concurrent change of others, such as the
    // secret or the worker disabling it, stays).
    let mut update = WebhookRow::update_many()
        .col_expr(webhook::Column::UpdatedAt, Expr::value(now))
        .filter(webhook::Column::Id.eq(id))
        .filter(webhook::Column::TenantId.eq(tenant.0));
    if let Some(url) = &changes.url {
        update = update.col_expr(webhook::Column::Url, Expr::value(url.clone()));
    }
    if let Some(events) = &changes.events {
        update = update.col_expr(webhook::Column::Events, Expr::value(events_json(events)));
    }
    match &changes.description {
        Change::Set(d) => {
            update = update.col_expr(webhook::Column::Description, Expr::value(d.clone()));
        }
        Change::Clear => {
            update = update.col_expr(
                webhook::Column::Description,
                Expr::value(Option::<String>::None),
            );
        }
        Change::Keep => {}
    }
    if let Some(enabled) = changes.enabled {
        update = update.col_expr(webhook::Column::Enabled, Expr::value(enabled));
        if enabled {
            update = update
                .col_expr(
                    webhook::Column::FailingSince,
                    Expr::value(Option::<i64>::None),
                )
                .col_expr(
                    webhook::Column::DisabledReason,
                    Expr::value(Option::<String>::None),
                );
        }
    }
    update.exec(db).await?;
    super::fan_out::forget(tenant);
    find(db, tenant, id).await
}

/// Deletes the tenant's webhook `id` with its delivery log; returns its id.
pub async fn delete(db: &DatabaseConnection, tenant: TenantId, id: Uuid) -> Result<Uuid> {
    let webhook = find(db, tenant, id).await?;
    let (txn, _lock) = crate::db::begin_write(db).await?;
    WebhookDelivery::delete_many()
        .filter(webhook_delivery::Column::WebhookId.eq(webhook.id))
        .exec(&txn)
        .await?;
    WebhookRow::delete_by_id(webhook.id).exec(&txn).await?;
    txn.commit().await?;
    super::fan_out::forget(tenant);
    Ok(webhook.id)
}

/// Gives the tenant's webhook `id` a new signing secret (shown once); deliveries sent from
/// now on are signed with it.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    key: Option<&SecretKey>,
    tenant: TenantId,
    id: Uuid,
    now: i64,
) -> Result<WithSecret> {
    find(db, tenant, id).await?;
    let secret = new_secret();
    WebhookRow::update_many()
        .col_expr(
            webhook::Column::Secret,
            Expr::value(sealed(key, id, &secret)?),
        )
        .col_expr(webhook::Column::UpdatedAt, Expr::value(now))
        .filter(webhook::Column::Id.eq(id))
        .filter(webhook::Column::TenantId.eq(tenant.0))
        .exec(db)
        .await?;
    let webhook = find(db, tenant, id).await?;
    Ok(WithSecret { webhook, secret })
}

/// The order of `webhooks` and of the delivery log: newest first.
fn ordering() -> paging::Ordering<webhook::Model> {
    use paging::{Direction, KeyValue, Ordering, SortKey};
    use sea_orm::IntoSimpleExpr;
    Ordering::dedup(
        [],
        SortKey {
            name: "createdAt",
            expr: webhook::Column::CreatedAt.into_simple_expr(),
            direction: Direction::Desc,
            value: |m: &webhook::Model| KeyValue::Int(m.created_at),
            text: false,
        },
        webhook::Column::Id.into_simple_expr(),
        |m| m.id,
    )
}

/// How many webhooks the tenant has.
pub async fn count(db: &DatabaseConnection, tenant: TenantId) -> Result<i64> {
    use sea_orm::PaginatorTrait;
    Ok(scoped::<WebhookRow>(tenant).count(db).await? as i64)
}

/// A page of the tenant's webhooks, newest first.
pub async fn page(
    db: &DatabaseConnection,
    tenant: TenantId,
    args: &PageArgs,
) -> Result<(Page<webhook::Model>, paging::Ordering<webhook::Model>)> {
    let ordering = ordering();
    let page = paging::fetch_page(db, scoped::<WebhookRow>(tenant), &ordering, args).await?;
    Ok((page, ordering))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUBLIC: UrlPolicy = UrlPolicy {
        allow_private_networks: false,
    };

    #[test]
    fn urls_must_be_http_and_public_unless_allowed() {
        assert!(check(Some("https://hooks.example.com/x"), None, None, PUBLIC).is_empty());
        let ftp = check(Some("ftp://hooks.example.com/x"), None, None, PUBLIC);
        assert_eq!(ftp[0].field, "url");
        assert!(!check(Some("http://127.0.0.1:8080/"), None, None, PUBLIC).is_empty());
        let allowed = UrlPolicy {
            allow_private_networks: true,
        };
        assert!(check(Some("http://127.0.0.1:8080/"), None, None, allowed).is_empty());
    }

    #[test]
    fn unknown_events_are_named() {
        let events = vec!["UPDATED".to_string(), "EXPLODED".to_string()];
        let failures = check(None, Some(&events), None, PUBLIC);
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].field, "events[1]");
    }

    #[test]
    fn secrets_are_standard_webhooks_secrets() {
        let secret = new_secret();
        let key = secret.strip_prefix("whsec_").unwrap_or_default();
        assert_eq!(STANDARD.decode(key).map(|b| b.len()).unwrap_or(0), 32);
    }
}
