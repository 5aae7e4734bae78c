//! One run of a source: what started it, how it ended, and what it did.
use sea_orm::entity::prelude::*;

/// A row of `sync_runs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_runs")]
pub struct Model {
    /// UUIDv7: runs sort by id in the order they started.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub source_id: Uuid,
    /// `INCREMENTAL` or `FULL`.
    pub mode: String,
    /// `SCHEDULE`, `MANUAL` or `WRITE_CONFLICT`.
    pub trigger: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// `RUNNING`, `SUCCEEDED` or `FAILED`.
    pub status: String,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub deleted: i64,
    pub warnings: i64,
    pub rejected: i64,
    /// Requests sent to the vendor, retries included.
    pub requests: i64,
    /// Requests that were retries of a failed one.
    pub retries: i64,
    /// The error's `extensions.code` when the run failed.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
