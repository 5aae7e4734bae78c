//! A tenant's vendor API: where and how to fetch it, its schedule, and its bearer token,
//! sealed with the server's secret key.
use sea_orm::entity::prelude::*;

/// A row of `sources`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// Unique in its tenant; vendor records are matched by (name, vendor id).
    pub name: String,
    /// The payload format, e.g. `client-contacts`.
    pub format: String,
    /// The list URL, with `{accountId}` / `{businessId}` unfilled.
    pub url: String,
    /// JSON array of the values of `{accountId}`.
    pub accounts: String,
    /// JSON array of the values of `{businessId}`.
    pub businesses: String,
    /// JSON object of extra request headers.
    pub headers: String,
    /// The bearer token, sealed (XChaCha20-Poly1305); never the token itself.
    pub token: Option<String>,
    /// The token's last four characters, to tell tokens apart.
    pub token_last4: Option<String>,
    /// Time between scheduled runs (ms).
    pub interval_ms: i64,
    /// Time between FULL runs (ms): scheduled runs are incremental in between.
    pub full_every_ms: i64,
    /// How far before the watermark an incremental run asks from (ms).
    pub overlap_ms: i64,
    /// Requests per minute the run paces itself to, if set.
    pub max_requests_per_minute: Option<i32>,
    pub enabled: bool,
    /// Why the schedule stopped (the vendor refused the token), until the source is updated.
    pub suspended: Option<String>,
    /// When the scheduler runs the source next (UTC ms); null while disabled or suspended.
    pub next_run_at: Option<i64>,
    /// When the last complete FULL run started (UTC ms).
    pub last_full_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// How changes are written back to the vendor (JSON of the domain's `WriteBack`); null
    /// for a read-only source.
    pub write_back: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
