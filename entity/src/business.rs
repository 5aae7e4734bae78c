//! A business: an organisation of the tenant that owns contacts and tags (seed 002).
use sea_orm::entity::prelude::*;

/// A row of `businesses`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "businesses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    /// `name` case-folded (`crate::fold`), for case-insensitive search.
    pub name_folded: String,
    /// Identifier of this business in an external system.
    pub external_ref: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
