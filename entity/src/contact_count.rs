//! How many live (not archived) contacts a parent has: kept by the database's triggers in
//! the transaction of every write that changes it (migration 17); read, never written, by
//! the application.
use sea_orm::entity::prelude::*;

/// A row of `contact_counts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_counts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    /// `account`, `business` or `tag`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub parent_kind: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub parent_id: Uuid,
    /// Its live contacts (its tag's, for a tag).
    pub live: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
