//! A URL of a tenant's that is told of contact changes (Standard Webhooks).
use sea_orm::entity::prelude::*;

/// A row of `webhooks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Where deliveries are POSTed (http or https).
    pub url: String,
    /// JSON array of the event kinds sent (empty: all).
    pub events: String,
    pub description: Option<String>,
    /// The signing secret (`whsec_…`), sealed with the server's key.
    pub secret: String,
    pub enabled: bool,
    /// When the current run of failed deliveries began (null after a success).
    pub failing_since: Option<i64>,
    /// Why the server disabled it (null when enabled or disabled by the tenant).
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
