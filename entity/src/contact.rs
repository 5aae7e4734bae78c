//! A contact: one person, with the union of the fields of the five vendor APIs.
use sea_orm::entity::prelude::*;

/// A row of `contacts`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Option<Uuid>,
    pub business_id: Option<Uuid>,
    pub external_ref: Option<String>,
    /// `UNRESOLVED`, `CRM_RESOLVED` or `MANUALLY_RESOLVED`.
    pub resolution_status: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Stored lower-cased.
    pub email: Option<String>,
    /// JSON array of strings.
    pub secondary_emails: Json,
    /// E.164.
    pub phone: Option<String>,
    /// JSON array of strings.
    pub secondary_phones: Json,
    pub company_name: Option<String>,
    pub website: Option<String>,
    pub linkedin: Option<String>,
    pub role: Option<String>,
    pub description: Option<String>,
    pub notes: Option<String>,
    pub address_street: Option<String>,
    pub address_city: Option<String>,
    pub address_state: Option<String>,
    pub address_country: Option<String>,
    pub address_postal_code: Option<String>,
    /// IANA time zone name.
    pub timezone: Option<String>,
    pub source: Option<String>,
    pub lead_source: Option<String>,
    pub status: Option<String>,
    pub pipeline_id: Option<String>,
    pub pipeline_stage: Option<String>,
    pub message_status: Option<String>,
    pub owner: Option<String>,
    /// JSON array of strings; mirrored row by row in `contact_assignees`.
    pub assignees: Json,
    pub created_by: Option<String>,
    pub dnd_email: bool,
    pub dnd_sms: bool,
    pub dnd_call: bool,
    pub dnd_whatsapp: bool,
    pub is_test_contact: bool,
    pub last_message_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Lower-cased "first last": the key of the NAME order.
    pub sort_name: String,
    /// Lower-cased names, email, phone and company: what `search` looks in.
    pub search_text: String,
    /// When the contact was archived: every vendor record it came from was deleted at its
    /// source. Archived contacts are left out of lists and counts unless asked for.
    pub archived_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
