//! A tag: a label of a business that contacts carry (seed 002). Unique by name per business.
use sea_orm::entity::prelude::*;

/// A row of `tags`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tags")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub business_id: Uuid,
    pub name: String,
    /// `name` case-folded (`crate::fold`), for case-insensitive search.
    pub name_folded: String,
    /// Position of the tag in lists, ascending.
    pub display_order: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
