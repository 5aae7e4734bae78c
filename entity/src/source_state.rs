//! The sync state of one configured source: its last run, watermark and resume point.
use sea_orm::entity::prelude::*;

/// A row of `source_states`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "source_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub format: String,
    pub last_run_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    /// Incremental sync: the newest vendor `updated_at` of the last complete run.
    pub watermark: Option<String>,
    /// The page to fetch next when a run was interrupted (JSON), else null.
    pub cursor: Option<String>,
    /// Counts of the last run.
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub warnings: i64,
    pub rejected: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
