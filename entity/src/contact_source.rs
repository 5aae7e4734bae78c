//! Where a contact came from: one vendor record (by source name and vendor id), as received.
use sea_orm::entity::prelude::*;

/// A row of `contact_sources`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "contact_sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub contact_id: Uuid,
    /// The source's name (unique per tenant).
    pub source: String,
    /// The connector format the record was read with.
    pub format: String,
    /// The record's id in the vendor system.
    pub external_id: String,
    /// The record as received (JSON text).
    pub record: String,
    /// The unified field values mapped from the record at its last import (JSON object):
    /// a later import changes only the fields whose mapped value differs from these.
    pub mapped: String,
    /// SHA-256 of `record`: an unchanged record is skipped without parsing.
    pub record_hash: String,
    pub fetched_at: i64,
    /// When a sync run that listed every record of the source no longer found this one.
    pub deleted_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
