//! The write-back outbox: one change of a contact to send to one of its sources, queued in
//! the transaction of the change itself and delivered by a worker.
use sea_orm::entity::prelude::*;

/// A row of `write_backs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "write_backs")]
pub struct Model {
    /// UUIDv7: changes sort by id in the order they were queued.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub contact_id: Uuid,
    /// The source's row id and name.
    pub source_id: Uuid,
    pub source: String,
    /// The record's id at the vendor.
    pub external_id: String,
    /// `UPDATE` (send `body`) or `DELETE`.
    pub operation: String,
    /// JSON object: the vendor's field names and the latest values to send.
    pub body: String,
    /// The request's URL (placeholders filled in when queued).
    pub url: String,
    /// The vendor version the change is made against (ETag or vendor `updated_at`), for the
    /// precondition.
    pub base_version: Option<String>,
    /// `PENDING`, `DELIVERING`, `DELIVERED`, `FAILED` or `CONFLICT`.
    pub state: String,
    /// Sent on every request of this change, the same on each retry of the same body.
    pub idempotency_key: String,
    /// Requests sent so far.
    pub attempts: i32,
    pub last_error: Option<String>,
    /// When the next attempt is due (PENDING), or when a delivery's lease lapses
    /// (DELIVERING): epoch ms.
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
