//! The link between a contact and a tag.
use sea_orm::entity::prelude::*;

/// A row of `contact_tags`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_tags")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub contact_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tag_id: Uuid,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The link of `contact` to `tag` in `tenant`, made at `created_at` (ms since the epoch).
    pub fn new(tenant_id: Uuid, contact_id: Uuid, tag_id: Uuid, created_at: i64) -> Self {
        Self {
            tenant_id,
            contact_id,
            tag_id,
            created_at,
        }
    }
}
