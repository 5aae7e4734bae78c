//! One event queued for, or sent to, one webhook.
use sea_orm::entity::prelude::*;

/// A row of `webhook_deliveries`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    /// UUIDv7; also the `webhook-id` header, the same on every attempt.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub webhook_id: Uuid,
    pub contact_id: Uuid,
    /// The event kind (`UPDATED`, …).
    pub kind: String,
    /// The JSON body sent.
    pub body: String,
    /// `PENDING`, `DELIVERING`, `DELIVERED` or `FAILED`.
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    /// The HTTP status of the last attempt (null when no answer came).
    pub status_code: Option<i32>,
    /// How long the last attempt took, in milliseconds.
    pub duration_ms: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
