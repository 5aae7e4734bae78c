//! One field of a change a vendor refused because its record had changed since the last
//! sync: the gateway's value and the vendor's, and how it was resolved.
use sea_orm::entity::prelude::*;

/// A row of `write_conflicts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "write_conflicts")]
pub struct Model {
    /// UUIDv7.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The refused change (`write_backs.id`).
    pub write_back_id: Uuid,
    pub contact_id: Uuid,
    pub source_id: Uuid,
    pub source: String,
    /// The contact field (a `ContactPatch` path, e.g. `lastName`).
    pub field: String,
    /// The vendor's name of it (e.g. `surname`).
    pub vendor_field: String,
    /// JSON: the value the gateway sent.
    pub ours: String,
    /// JSON: the vendor's value, read by the sync that followed the refusal.
    pub theirs: String,
    pub detected_at: i64,
    /// `OURS` or `THEIRS`; null while open.
    pub resolution: Option<String>,
    pub resolved_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
