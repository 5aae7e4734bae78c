//! The patch inputs of the mutations, as GraphQL types; each turns into its domain patch
//! (`crate::contacts::ContactPatch`, …), where an absent field is [`Change::Keep`] and
//! `null` is [`Change::Clear`].
use async_graphql::{ID, InputObject, MaybeUndefined};

use crate::change::Change;
use crate::time::Timestamp;
use crate::{contacts, organisations, tags};

/// A GraphQL field's three states as a domain change.
pub fn change<T>(value: MaybeUndefined<T>) -> Change<T> {
    match value {
        MaybeUndefined::Undefined => Change::Keep,
        MaybeUndefined::Null => Change::Clear,
        MaybeUndefined::Value(value) => Change::Set(value),
    }
}

/// A postal address; in a patch, the parts given replace the stored ones (null clears one).
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "AddressInput")]
pub struct AddressInput {
    /// Street and number.
    pub street: MaybeUndefined<String>,
    /// City.
    pub city: MaybeUndefined<String>,
    /// State or region.
    pub state: MaybeUndefined<String>,
    /// Country.
    pub country: MaybeUndefined<String>,
    /// Postal or ZIP code.
    pub postal_code: MaybeUndefined<String>,
}

impl From<AddressInput> for contacts::AddressPatch {
    fn from(a: AddressInput) -> Self {
        Self {
            street: change(a.street),
            city: change(a.city),
            state: change(a.state),
            country: change(a.country),
            postal_code: change(a.postal_code),
        }
    }
}

/// Do-not-disturb flags; the flags given replace the stored ones.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "DndInput")]
pub struct DndInput {
    /// No emails.
    pub email: Option<bool>,
    /// No text messages.
    pub sms: Option<bool>,
    /// No calls.
    pub call: Option<bool>,
    /// No WhatsApp messages.
    pub whatsapp: Option<bool>,
}

impl From<DndInput> for contacts::DndPatch {
    fn from(d: DndInput) -> Self {
        Self {
            email: d.email,
            sms: d.sms,
            call: d.call,
            whatsapp: d.whatsapp,
        }
    }
}

/// The writable fields of a contact. Only the fields present change (seed 001's PATCH): a
/// field sent as `null` is cleared, a field left out is kept. Strings are trimmed; an empty
/// string clears like `null`.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "ContactPatch")]
pub struct ContactPatchInput {
    /// Full name (seed 001): split into first and last name at the last word
    /// (`Henrik B. Larsen` → `Henrik B.` + `Larsen`; one word is a first name). Not together
    /// with `firstName`/`lastName`.
    pub name: MaybeUndefined<String>,
    /// First name (at most 100 characters).
    pub first_name: MaybeUndefined<String>,
    /// Last name (at most 100 characters).
    pub last_name: MaybeUndefined<String>,
    /// Email address (at most 150 characters); stored lower-cased.
    pub email: MaybeUndefined<String>,
    /// Further email addresses (replaces the list).
    pub secondary_emails: MaybeUndefined<Vec<String>>,
    /// Phone number, any common format; stored in E.164. Without a country code it is read
    /// in the server's default region, if one is configured.
    pub phone: MaybeUndefined<String>,
    /// Further phone numbers (replaces the list).
    pub secondary_phones: MaybeUndefined<Vec<String>>,
    /// Company name.
    pub company_name: MaybeUndefined<String>,
    /// Web site, an http(s) URL (at most 250 characters).
    pub website: MaybeUndefined<String>,
    /// LinkedIn profile, an http(s) URL (at most 250 characters).
    pub linkedin: MaybeUndefined<String>,
    /// Role or job title (at most 75 characters).
    pub role: MaybeUndefined<String>,
    /// Description (at most 10,000 characters).
    pub description: MaybeUndefined<String>,
    /// Notes (at most 10,000 characters).
    pub notes: MaybeUndefined<String>,
    /// Postal address; `null` clears every part.
    pub address: MaybeUndefined<AddressInput>,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub timezone: MaybeUndefined<String>,
    /// Where the contact came from.
    pub source: MaybeUndefined<String>,
    /// Marketing lead source.
    pub lead_source: MaybeUndefined<String>,
    /// Status in the workflow.
    pub status: MaybeUndefined<String>,
    /// Sales pipeline.
    pub pipeline_id: MaybeUndefined<String>,
    /// Stage in the pipeline.
    pub pipeline_stage: MaybeUndefined<String>,
    /// Status of the last message.
    pub message_status: MaybeUndefined<String>,
    /// Owning user.
    pub owner: MaybeUndefined<String>,
    /// Assigned users (replaces the list).
    pub assignees: MaybeUndefined<Vec<String>>,
    /// Do-not-disturb flags.
    pub dnd: Option<DndInput>,
    /// Marks a test contact.
    pub is_test_contact: Option<bool>,
    /// When the last message was exchanged.
    pub last_message_at: MaybeUndefined<Timestamp>,
    /// The account the contact belongs to.
    pub account_id: MaybeUndefined<ID>,
    /// The business that owns the contact.
    pub business_id: MaybeUndefined<ID>,
}

impl From<ContactPatchInput> for contacts::ContactPatch {
    fn from(p: ContactPatchInput) -> Self {
        Self {
            name: change(p.name),
            first_name: change(p.first_name),
            last_name: change(p.last_name),
            email: change(p.email),
            secondary_emails: change(p.secondary_emails),
            phone: change(p.phone),
            secondary_phones: change(p.secondary_phones),
            company_name: change(p.company_name),
            website: change(p.website),
            linkedin: change(p.linkedin),
            role: change(p.role),
            description: change(p.description),
            notes: change(p.notes),
            address: change(p.address).map(Into::into),
            timezone: change(p.timezone),
            source: change(p.source),
            lead_source: change(p.lead_source),
            status: change(p.status),
            pipeline_id: change(p.pipeline_id),
            pipeline_stage: change(p.pipeline_stage),
            message_status: change(p.message_status),
            owner: change(p.owner),
            assignees: change(p.assignees),
            dnd: p.dnd.map(Into::into),
            is_test_contact: p.is_test_contact,
            last_message_at: change(p.last_message_at),
            account_id: change(p.account_id).map(|id| id.0),
            business_id: change(p.business_id).map(|id| id.0),
        }
    }
}

/// Changes to an account or business: only the fields present change.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "OrganisationPatch")]
pub struct OrganisationPatchInput {
    /// New name (not empty; at most 255 characters).
    pub name: Option<String>,
    /// External reference; `null` clears it.
    pub external_ref: MaybeUndefined<String>,
}

impl From<OrganisationPatchInput> for organisations::OrganisationPatch {
    fn from(p: OrganisationPatchInput) -> Self {
        Self {
            name: p.name,
            external_ref: change(p.external_ref),
        }
    }
}

/// Changes to a tag: only the fields present change.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "TagPatch")]
pub struct TagPatchInput {
    /// New name, unique within the tag's business (at most 255 characters).
    pub name: Option<String>,
    /// New display order.
    pub display_order: Option<i32>,
}

impl From<TagPatchInput> for tags::TagPatch {
    fn from(p: TagPatchInput) -> Self {
        Self {
            name: p.name,
            display_order: p.display_order,
        }
    }
}
