//! Who is running a source now: one row per running source, held until `expires_at`
//! unless its holder renews it. A run takes the lease before it starts and gives it back
//! when it ends; a holder that dies leaves a lease that expires, and the next run takes it.
use sea_orm::entity::prelude::*;

/// A row of `source_leases`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "source_leases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// The run holding the lease.
    pub holder: Uuid,
    /// When the run took the lease (UTC ms).
    pub acquired_at: i64,
    /// When the lease lapses unless renewed (UTC ms).
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
