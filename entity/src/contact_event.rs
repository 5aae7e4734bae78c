//! One committed change of a contact, in the change feed (`contact_events`).
use sea_orm::entity::prelude::*;

/// A row of `contact_events`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_events")]
pub struct Model {
    /// The event's place in the feed (ascending in the order events are written).
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub tenant_id: Uuid,
    pub contact_id: Uuid,
    /// `CREATED`, `UPDATED`, `DELETED`, `ARCHIVED`, `RESTORED`, `MERGED`,
    /// `WRITE_BACK_DELIVERED`, `WRITE_BACK_FAILED` or `WRITE_CONFLICT`.
    pub kind: String,
    /// JSON array of the changed fields (`ContactPatch` names), for `UPDATED`.
    pub changed_fields: Option<String>,
    /// The surviving contact of a `MERGED` one.
    pub survivor_id: Option<Uuid>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
