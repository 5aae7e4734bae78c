//! Vendor connectors: the five vendor contact APIs of `shared/seeds` brought into the graph.
//!
//! One module per vendor format, behind the [`Connector`] trait (split a payload into
//! records, map a record, page through the API). Adding a source format is one new file
//! and one line in [`Format`]. [`import`] applies mapped records to the database; [`sync`]
//! fetches them from the live APIs a tenant has set up ([`catalog`], [`definition`]; also
//! from the sources file, [`config`]), page by page ([`fetch`]), on a schedule
//! ([`scheduler`]), one run at a time per source ([`lease`], [`runs`]), and detects
//! deletions ([`deletions`]).
mod account_contacts;
mod business_contacts;
pub mod catalog;
mod client_contacts;
pub mod config;
pub mod definition;
pub mod deletions;
pub mod fetch;
pub mod import;
pub mod lease;
mod mapping;
pub mod network;
pub mod payload;
mod pipeline_contacts;
pub mod runs;
pub mod scheduler;
pub mod sync;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::FieldFailure;

/// A vendor payload format; the name is what the CLI and the sources file use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Seed 000: `GET /api/accounts/{id}/contacts`, a JSON array of one account's contacts.
    AccountContacts,
    /// Seed 002: `GET /api/v1/businesses/{businessId}/contacts`, `{ data, pagination }`.
    BusinessContacts,
    /// Seed 003: `GET /api/contacts`, a JSON array with integer ids and `client_id`.
    ClientContacts,
    /// Seed 004: `GET /api/contacts`, `{ success, data: { contacts, total, page, size } }`.
    PipelineContacts,
}

impl Format {
    /// The format's name, e.g. `business-contacts`.
    pub fn name(self) -> &'static str {
        match self {
            Format::AccountContacts => "account-contacts",
            Format::BusinessContacts => "business-contacts",
            Format::ClientContacts => "client-contacts",
            Format::PipelineContacts => "pipeline-contacts",
        }
    }

    /// The connector that reads this format.
    pub fn connector(self) -> &'static dyn Connector {
        match self {
            Format::AccountContacts => &account_contacts::AccountContacts,
            Format::BusinessContacts => &business_contacts::BusinessContacts,
            Format::ClientContacts => &client_contacts::ClientContacts,
            Format::PipelineContacts => &pipeline_contacts::PipelineContacts,
        }
    }
}

/// An account, business or tag as a vendor names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct VendorRef {
    /// The vendor's id of it.
    pub external_id: String,
    /// The name to give it when it is created.
    pub name: String,
}

/// A vendor's tag of a contact (seed 002).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct VendorTag {
    /// The vendor's tag id.
    pub external_id: String,
    /// The tag's name.
    pub name: String,
    /// Its position among the business's tags.
    pub display_order: i32,
}

/// What a record maps to in the unified model.
#[derive(Clone, Debug, Default)]
pub struct MappedRecord {
    /// The record's id in the vendor system.
    pub external_id: String,
    /// Unified contact fields, in the shape of the GraphQL `ContactPatch` input (plus
    /// `externalRef`, `resolutionStatus` and `createdBy`): a field the record has is here
    /// (null when the record's value is null); a field it lacks is absent.
    pub fields: Map<String, Value>,
    /// The record's own creation time (epoch ms), used for new contacts.
    pub created_at: Option<i64>,
    /// The record's own update time (epoch ms).
    pub updated_at: Option<i64>,
    /// The account the record belongs to.
    pub account: Option<VendorRef>,
    /// The business the record belongs to.
    pub business: Option<VendorRef>,
    /// The record's tags, when the format has them.
    pub tags: Option<Vec<VendorTag>>,
    /// Values that were not stored (placeholders, wrong types), by field.
    pub warnings: Vec<FieldFailure>,
}

/// What the caller knows that the payload does not say.
#[derive(Clone, Debug, Default)]
pub struct MapContext {
    /// The account a payload of `account-contacts` belongs to (its vendor id or name).
    pub account: Option<String>,
    /// The business a page belongs to, when the URL names it.
    pub business: Option<String>,
}

/// Where a sync is in a vendor's list: page number (1-based) and item offset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagePosition {
    /// Page number, from 1 (page-numbered APIs).
    pub page: u64,
    /// Items before this page (offset-paged APIs).
    pub offset: u64,
}

impl PagePosition {
    /// The first page.
    pub fn first() -> Self {
        Self { page: 1, offset: 0 }
    }

    /// The page after this one, which held `items` items.
    pub fn after(&self, items: usize) -> Self {
        Self {
            page: self.page + 1,
            offset: self.offset + items as u64,
        }
    }
}

/// Reads one vendor format.
pub trait Connector: Send + Sync {
    /// The records of a payload (a file, or one page of the API), or why the payload is not
    /// of this format.
    fn records(&self, payload: Value) -> Result<Vec<Value>, String>;

    /// The records of a whole payload as raw JSON texts, without building them (the fast
    /// path of a file import: each record is then parsed on its own, next to the writes).
    /// `None` when the payload is not exactly of this format; [`Connector::records`] then
    /// says why, or reads it after all.
    fn raw_records(&self, payload: &[u8]) -> Option<Vec<Box<RawValue>>>;

    /// The record field that holds the vendor's id (text or a number).
    fn id_field(&self) -> &'static str;

    /// Maps one record; an error rejects the record (not an object, no id).
    fn map(&self, record: &Value, context: &MapContext) -> Result<MappedRecord, String>;

    /// Query parameters that ask for the page at `position` (page size included).
    fn page_query(&self, position: &PagePosition) -> Vec<(String, String)>;

    /// The position of the next page after `position`, whose payload was `payload` and held
    /// `items` records; `None` at the end.
    fn next_page(
        &self,
        position: &PagePosition,
        payload: &Value,
        items: usize,
    ) -> Option<PagePosition>;

    /// For APIs that can list only what changed since a time: the query parameter that asks
    /// for records updated after `watermark`.
    fn since_query(&self, _watermark: &str) -> Option<(String, String)> {
        None
    }
}

/// Page size asked of every vendor API (their common maximum).
pub const PAGE_SIZE: usize = 100;

/// The vendor records behind each of `contacts` (of `tenant`), oldest first, in one
/// statement.
pub async fn records_of(
    db: &impl sea_orm::ConnectionTrait,
    tenant: crate::tenancy::TenantId,
    contacts: &[uuid::Uuid],
) -> crate::Result<std::collections::HashMap<uuid::Uuid, Vec<entity::contact_source::Model>>> {
    use entity::contact_source;
    use entity::prelude::ContactSource;
    use sea_orm::{ColumnTrait, EntityName, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
    let mut select = ContactSource::find()
        .filter(contact_source::Column::TenantId.eq(tenant.0))
        .order_by_asc(contact_source::Column::Id);
    crate::db::walk_ids(
        QuerySelect::query(&mut select),
        ContactSource.table_ref(),
        sea_orm::sea_query::Expr::col((ContactSource, contact_source::Column::ContactId)),
        contacts,
        db.get_database_backend(),
    );
    let rows = select.all(db).await?;
    let mut out: std::collections::HashMap<_, Vec<_>> = std::collections::HashMap::new();
    for row in rows {
        out.entry(row.contact_id).or_default().push(row);
    }
    Ok(out)
}
