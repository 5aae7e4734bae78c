//! `Contact`: one person, with the union of the five vendor APIs' fields.
use async_graphql::{Context, Enum, ID, Object, SelectionField, SimpleObject, Value};
use entity::contact::{Columns, Model};
use serde_json::Value as Json;
use std::sync::Arc;
use uuid::Uuid;

use super::loader::ContactPageKey;
use super::source::ContactSource;
use super::{Connection, TotalCount};
use crate::contacts::{self, ContactParent, ContactQuery, Preload, Related};
use crate::paging::{Page, PageArgs};

use super::plain_fields::{DirectFields, PlainFields, text};
use super::{Account, Business, RequestContext, Tag};
use crate::contacts::{self as domain, full_name};
use crate::time::Timestamp;

/// A person who has communicated with the organisation, as known to any of the unified
/// contact APIs.
#[derive(Clone)]
pub struct Contact {
    /// Shared: a change delivered to many subscribers is one row in memory.
    model: Arc<Model>,
    /// Relations loaded with the page this contact came in, if any.
    related: Option<Arc<Related>>,
}

impl Contact {
    /// A contact whose relations are loaded on demand.
    pub fn new(model: Model) -> Self {
        Self::shared(Arc::new(model))
    }

    /// A contact whose row is shared (a change delivered to many subscribers).
    pub fn shared(model: Arc<Model>) -> Self {
        Self {
            model,
            related: None,
        }
    }

    /// A contact whose relations were loaded with its page.
    pub fn with_related(model: Model, related: Arc<Related>) -> Self {
        Self::shared_with_related(Arc::new(model), related)
    }

    /// The contact's row.
    fn row(&self) -> &Model {
        &self.model
    }

    /// A contact whose row is shared (a loader's page) and whose relations were loaded
    /// with its page.
    pub fn shared_with_related(model: Arc<Model>, related: Arc<Related>) -> Self {
        Self {
            model,
            related: Some(related),
        }
    }
}

/// The relations of contacts that a list field's selection asks for: loaded with the page,
/// one statement each, instead of through the by-id loaders.
pub(crate) fn preload_for(ctx: &Context<'_>) -> Preload {
    let list = ctx.look_ahead();
    let nodes = [list.field("edges").field("node"), list.field("nodes")];
    let wants = |field: &str| nodes.iter().any(|n| n.field(field).exists());
    Preload {
        tags: wants("tags"),
        business: wants("business"),
        account: wants("account"),
    }
}

/// The columns the nodes of a contact list's selection read (`edges { node }` and `nodes`,
/// through fragments). A field this does not know reads every column, so a new field is
/// correct before it is listed here.
pub(crate) fn columns_for(ctx: &Context<'_>) -> Columns {
    let mut columns = Columns::NONE;
    for list_field in ctx.field().selection_set() {
        let nodes: Vec<_> = match list_field.name() {
            "nodes" => vec![list_field],
            "edges" => list_field
                .selection_set()
                .filter(|f| f.name() == "node")
                .collect(),
            _ => continue,
        };
        for node in nodes {
            columns = columns.union(columns_of_node(node));
        }
    }
    columns
}

/// The columns a selection of one contact (`node { … }`, `contact { … }`) reads, through
/// fragments.
pub(crate) fn columns_of_node(node: SelectionField<'_>) -> Columns {
    node.selection_set().fold(Columns::NONE, |columns, field| {
        columns.union(columns_of_field(field.name()))
    })
}

/// The columns `Contact.<field>` reads ([`Columns::ALL`] for a field not listed).
fn columns_of_field(field: &str) -> Columns {
    use entity::contact::Column as C;
    let one = |column| Columns::NONE.with(column);
    match field {
        "__typename" | "id" | "tags" | "writeBacks" | "sources" => Columns::NONE,
        "externalRef" => one(C::ExternalRef),
        "resolutionStatus" => one(C::ResolutionStatus),
        "firstName" => one(C::FirstName),
        "lastName" => one(C::LastName),
        "name" => one(C::FirstName).with(C::LastName),
        "email" => one(C::Email),
        "secondaryEmails" => one(C::SecondaryEmails),
        "phone" => one(C::Phone),
        "secondaryPhones" => one(C::SecondaryPhones),
        "companyName" => one(C::CompanyName),
        "website" => one(C::Website),
        "linkedin" => one(C::Linkedin),
        "role" => one(C::Role),
        "description" => one(C::Description),
        "notes" => one(C::Notes),
        "address" => one(C::AddressStreet)
            .with(C::AddressCity)
            .with(C::AddressState)
            .with(C::AddressCountry)
            .with(C::AddressPostalCode),
        "timezone" => one(C::Timezone),
        "source" => one(C::Source),
        "leadSource" => one(C::LeadSource),
        "status" => one(C::Status),
        "pipelineId" => one(C::PipelineId),
        "pipelineStage" => one(C::PipelineStage),
        "messageStatus" => one(C::MessageStatus),
        "owner" => one(C::Owner),
        "assignees" => one(C::Assignees),
        "createdBy" => one(C::CreatedBy),
        "dnd" => one(C::DndEmail)
            .with(C::DndSms)
            .with(C::DndCall)
            .with(C::DndWhatsapp),
        "isTestContact" => one(C::IsTestContact),
        "lastMessageAt" => one(C::LastMessageAt),
        "createdAt" => one(C::CreatedAt),
        "updatedAt" => one(C::UpdatedAt),
        "archivedAt" => one(C::ArchivedAt),
        "account" => one(C::AccountId),
        "business" => one(C::BusinessId),
        _ => Columns::ALL,
    }
}

/// A postal address (seed 002).
#[derive(SimpleObject, Clone)]
pub struct Address {
    /// Street and number.
    pub street: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State or region.
    pub state: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Postal or ZIP code.
    pub postal_code: Option<String>,
}

/// Channels the contact must not be contacted on (seed 002's DND flags).
#[derive(SimpleObject, Clone)]
pub struct DoNotDisturb {
    /// No emails.
    pub email: bool,
    /// No text messages.
    pub sms: bool,
    /// No calls.
    pub call: bool,
    /// No WhatsApp messages.
    pub whatsapp: bool,
}

fn strings(json: &Json) -> Vec<String> {
    match json {
        Json::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// The fields a nested page's nodes select most, as their resolvers below give them.
impl DirectFields for Contact {
    fn direct_field(&self, name: &str) -> Option<Value> {
        let m = &self.model;
        Some(match name {
            "id" => Value::String(m.id.to_string()),
            "firstName" => text(m.first_name.as_deref()),
            "lastName" => text(m.last_name.as_deref()),
            "name" => full_name(m.first_name.as_deref(), m.last_name.as_deref())
                .map_or(Value::Null, Value::String),
            "email" => text(m.email.as_deref()),
            "phone" => text(m.phone.as_deref()),
            "companyName" => text(m.company_name.as_deref()),
            _ => return None,
        })
    }
}

/// A person who has communicated with the organisation.
#[Object]
impl Contact {
    /// The contact's id (a UUID).
    pub async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    /// Identifier of the contact in an external CRM (seed 000's `externalRef`).
    async fn external_ref(&self) -> Option<&str> {
        self.model.external_ref.as_deref()
    }

    /// How the contact was identified (seed 000).
    async fn resolution_status(&self) -> ResolutionStatus {
        domain::ResolutionStatus::parse(&self.model.resolution_status).into()
    }

    /// First name.
    async fn first_name(&self) -> Option<&str> {
        self.model.first_name.as_deref()
    }

    /// Last name (seed 003's `surname`).
    async fn last_name(&self) -> Option<&str> {
        self.model.last_name.as_deref()
    }

    /// Full name: first and last name joined by a space; null when both are missing.
    async fn name(&self) -> Option<String> {
        full_name(
            self.model.first_name.as_deref(),
            self.model.last_name.as_deref(),
        )
    }

    /// Primary email address, lower-cased.
    async fn email(&self) -> Option<&str> {
        self.model.email.as_deref()
    }

    /// Further email addresses (seed 002).
    async fn secondary_emails(&self) -> Vec<String> {
        strings(&self.model.secondary_emails)
    }

    /// Phone number in E.164 (`+4915112345678`; seed 003's `telephone`, seed 004's
    /// `phoneNumber`).
    async fn phone(&self) -> Option<&str> {
        self.model.phone.as_deref()
    }

    /// Further phone numbers (seed 002).
    async fn secondary_phones(&self) -> Vec<String> {
        strings(&self.model.secondary_phones)
    }

    /// Company the contact works for (seed 002's `company`).
    async fn company_name(&self) -> Option<&str> {
        self.model.company_name.as_deref()
    }

    /// Web site (seed 002).
    async fn website(&self) -> Option<&str> {
        self.model.website.as_deref()
    }

    /// LinkedIn profile URL (seed 003).
    async fn linkedin(&self) -> Option<&str> {
        self.model.linkedin.as_deref()
    }

    /// Role or job title (seed 003).
    async fn role(&self) -> Option<&str> {
        self.model.role.as_deref()
    }

    /// A short description of the contact (seed 003).
    async fn description(&self) -> Option<&str> {
        self.model.description.as_deref()
    }

    /// Free-form notes (seed 002's `note`, seed 003's `notes`).
    async fn notes(&self) -> Option<&str> {
        self.model.notes.as_deref()
    }

    /// Postal address; null when no part of it is known.
    async fn address(&self) -> Option<Address> {
        let m = &self.model;
        let address = Address {
            street: m.address_street.clone(),
            city: m.address_city.clone(),
            state: m.address_state.clone(),
            country: m.address_country.clone(),
            postal_code: m.address_postal_code.clone(),
        };
        let known = [
            &address.street,
            &address.city,
            &address.state,
            &address.country,
            &address.postal_code,
        ]
        .iter()
        .any(|part| part.is_some());
        known.then_some(address)
    }

    /// IANA time zone, e.g. `America/New_York` (seed 002's `ianaTimezone`).
    async fn timezone(&self) -> Option<&str> {
        self.model.timezone.as_deref()
    }

    /// Where the contact came from (seeds 002 and 004).
    async fn source(&self) -> Option<&str> {
        self.model.source.as_deref()
    }

    /// Marketing lead source (seed 004).
    async fn lead_source(&self) -> Option<&str> {
        self.model.lead_source.as_deref()
    }

    /// Status in the vendor's workflow (seed 004).
    async fn status(&self) -> Option<&str> {
        self.model.status.as_deref()
    }

    /// Sales pipeline the contact is in (seed 004).
    async fn pipeline_id(&self) -> Option<&str> {
        self.model.pipeline_id.as_deref()
    }

    /// Stage of the pipeline (seed 004).
    async fn pipeline_stage(&self) -> Option<&str> {
        self.model.pipeline_stage.as_deref()
    }

    /// Status of the last message exchanged (seed 004).
    async fn message_status(&self) -> Option<&str> {
        self.model.message_status.as_deref()
    }

    /// User who owns the contact (seed 004's `userId`/owner).
    async fn owner(&self) -> Option<&str> {
        self.model.owner.as_deref()
    }

    /// Users assigned to the contact (seed 004).
    async fn assignees(&self) -> Vec<String> {
        strings(&self.model.assignees)
    }

    /// User who created the contact (seed 004).
    async fn created_by(&self) -> Option<&str> {
        self.model.created_by.as_deref()
    }

    /// Do-not-disturb flags per channel (seed 002).
    async fn dnd(&self) -> DoNotDisturb {
        DoNotDisturb {
            email: self.model.dnd_email,
            sms: self.model.dnd_sms,
            call: self.model.dnd_call,
            whatsapp: self.model.dnd_whatsapp,
        }
    }

    /// A test contact, not a real person (seed 002).
    async fn is_test_contact(&self) -> bool {
        self.model.is_test_contact
    }

    /// When the last message with the contact was exchanged (seed 004).
    async fn last_message_at(&self) -> Option<Timestamp> {
        self.model.last_message_at.map(Timestamp::from_millis)
    }

    /// When the contact was first seen.
    async fn created_at(&self) -> Timestamp {
        Timestamp::from_millis(self.model.created_at)
    }

    /// When the contact last changed.
    async fn updated_at(&self) -> Timestamp {
        Timestamp::from_millis(self.model.updated_at)
    }

    /// When the contact was archived because every vendor record it came from was deleted
    /// at its source (a FULL sync run no longer found it); null for a live contact.
    /// Archived contacts are left out of lists and counts unless `filter: { archived: true }`;
    /// `restoreContact` brings one back.
    async fn archived_at(&self) -> Option<Timestamp> {
        self.model.archived_at.map(Timestamp::from_millis)
    }

    /// The account (customer company) the contact belongs to.
    async fn account(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Account>> {
        let Some(id) = self.model.account_id else {
            return Ok(None);
        };
        if let Some(accounts) = self.related.as_ref().and_then(|r| r.accounts.as_ref()) {
            return Ok(accounts.get(&id).cloned().map(Account));
        }
        let request = RequestContext::of(ctx)?;
        Ok(request.loaders.accounts.load_one(id).await?.map(Account))
    }

    /// The business that owns the contact.
    async fn business(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Business>> {
        let Some(id) = self.model.business_id else {
            return Ok(None);
        };
        if let Some(businesses) = self.related.as_ref().and_then(|r| r.businesses.as_ref()) {
            return Ok(businesses.get(&id).cloned().map(Business));
        }
        let request = RequestContext::of(ctx)?;
        Ok(request.loaders.businesses.load_one(id).await?.map(Business))
    }

    /// The contact's tags, in display order.
    async fn tags(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PlainFields<Tag>>> {
        let wrap = |tag| PlainFields(Tag(tag));
        if let Some(tags) = self.related.as_ref().and_then(|r| r.tags.as_ref()) {
            let tags = tags.get(&self.model.id).cloned().unwrap_or_default();
            return Ok(tags.into_iter().map(wrap).collect());
        }
        let request = RequestContext::of(ctx)?;
        let tags = request.loaders.contact_tags.load_one(self.model.id).await?;
        Ok(tags.unwrap_or_default().into_iter().map(wrap).collect())
    }

    /// The changes of this contact queued for the vendor systems it came from, oldest first:
    /// each writable source gets the changed fields.
    async fn write_backs(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<super::write_back::WriteBackChange>> {
        let request = RequestContext::of(ctx)?;
        let changes = request
            .loaders
            .contact_write_backs
            .load_one(self.model.id)
            .await?;
        Ok(changes
            .unwrap_or_default()
            .into_iter()
            .map(super::write_back::WriteBackChange)
            .collect())
    }

    /// The vendor records this contact was imported or synced from, oldest first (empty
    /// for contacts created here).
    async fn sources(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ContactSource>> {
        let request = RequestContext::of(ctx)?;
        let records = request
            .loaders
            .contact_sources
            .load_one(self.model.id)
            .await?;
        Ok(records
            .unwrap_or_default()
            .into_iter()
            .map(ContactSource)
            .collect())
    }
}

/// The page of contacts under one parent, through the nested-page loader (one statement for
/// all the parents of a query).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn contacts_under(
    ctx: &Context<'_>,
    parent: ContactParent,
    parent_id: Uuid,
    filter: Option<super::filter::ContactFilterInput>,
    order_by: Option<Vec<super::order::ContactOrderInput>>,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
) -> async_graphql::Result<Connection<Contact>> {
    let request = RequestContext::of(ctx)?;
    let args = PageArgs::from_relay(first, after, last, before)?;
    let query = ContactQuery {
        filter: super::filter::filter(filter),
        order: super::order::orders(order_by),
    };
    let ordering = contacts::ordering(&query.order);
    let mut preload = preload_for(ctx);
    if parent == ContactParent::Account {
        // The parent account is in the accounts loader's cache already (fed by the accounts
        // list, or loaded through the loader): `contact.account` costs nothing.
        preload.account = false;
    }
    let key = ContactPageKey::new(
        ctx,
        parent_id,
        (parent, preload, columns_for(ctx)),
        query,
        args.clone(),
    );
    let loaded = request.loaders.contact_pages.load_one(key).await?;
    let Some(loaded) = loaded else {
        return Ok(Connection::new(
            Page::none(&args),
            &ordering,
            TotalCount::Known(0),
            Contact::new,
        ));
    };
    let (page, related) = &*loaded;
    let total = TotalCount::Known(page.total.unwrap_or(0));
    Ok(Connection::of_shared(
        page,
        ordering,
        total,
        |m| Contact::shared_with_related(m.clone(), related.clone()),
        Contact::row,
    ))
}

/// How a contact was identified (seed 000).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "domain::ResolutionStatus")]
pub enum ResolutionStatus {
    /// No CRM match was found yet.
    Unresolved,
    /// Matched to a CRM record.
    CrmResolved,
    /// Linked to a CRM record by a person.
    ManuallyResolved,
}
