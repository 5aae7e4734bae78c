//! SeaORM entities of contact-gateway: plain table mappings, free of web and domain concerns.
//!
//! Conventions shared by every table:
//! - `id` is a UUID (v7) and every row carries the `tenant_id` it belongs to;
//! - timestamps are UTC milliseconds since the Unix epoch (`i64`), which sort and compare
//!   the same way on SQLite and PostgreSQL.

/// The case folding of every column that a case-insensitive search reads (`name_folded`
/// of accounts, businesses and tags; contacts' `search_text`), and of the search text
/// itself: Unicode lower case (`Ärzte Énergie` → `ärzte énergie`), computed here and not by
/// SQL's `lower()`, which folds only ASCII on SQLite and under PostgreSQL's C collations.
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

pub mod account;
pub mod api_key;
pub mod business;
pub mod contact;
pub mod contact_assignee;
pub mod contact_count;
pub mod contact_event;
pub mod contact_key;
pub mod contact_source;
pub mod contact_tag;
pub mod source;
pub mod source_entity;
pub mod source_lease;
pub mod source_state;
pub mod sync_run;
pub mod tag;
pub mod tenant;
pub mod webhook;
pub mod webhook_delivery;
pub mod write_back;
pub mod write_conflict;

pub mod prelude {
    //! The entities under short names.
    pub use super::account::Entity as Account;
    pub use super::api_key::Entity as ApiKey;
    pub use super::business::Entity as Business;
    pub use super::contact::Entity as Contact;
    pub use super::contact_assignee::Entity as ContactAssignee;
    pub use super::contact_count::Entity as ContactCount;
    pub use super::contact_event::Entity as ContactEvent;
    pub use super::contact_key::Entity as ContactKey;
    pub use super::contact_source::Entity as ContactSource;
    pub use super::contact_tag::Entity as ContactTag;
    pub use super::source::Entity as Source;
    pub use super::source_entity::Entity as SourceEntity;
    pub use super::source_lease::Entity as SourceLease;
    pub use super::source_state::Entity as SourceState;
    pub use super::sync_run::Entity as SyncRun;
    pub use super::tag::Entity as Tag;
    pub use super::tenant::Entity as Tenant;
    pub use super::webhook::Entity as Webhook;
    pub use super::webhook_delivery::Entity as WebhookDelivery;
    pub use super::write_back::Entity as WriteBack;
    pub use super::write_conflict::Entity as WriteConflict;
}
