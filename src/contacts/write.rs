//! Contact writes: create, patch (seed 001), delete, tag and resolve. Each runs in one
//! transaction; input is validated in full before anything is written.
use entity::prelude::{
    Account, Business, Contact, ContactAssignee, ContactSource, ContactTag, Tag,
};
use entity::{contact, contact_assignee, contact_source, contact_tag, tag};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, Iterable, ModelTrait, QueryFilter, QuerySelect,
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::rules::{Checker, MAX_NAME, MAX_ROLE, MAX_SHORT, MAX_TEXT, WriteSettings, split_name};
use super::{ResolutionStatus, search_text, sort_name};
use crate::change::Change;
use crate::db::begin_write;
use crate::error::{Error, FieldFailure, Result, field_path};
use crate::filter::collect_id;
use crate::tenancy::{TenantId, find_by_ids, scoped};
use crate::time::{Timestamp, next_updated_at, now_millis};

/// A postal address; in a patch, the parts given replace the stored ones (null clears one).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AddressPatch {
    /// Street and number.
    pub street: Change<String>,
    /// City.
    pub city: Change<String>,
    /// State or region.
    pub state: Change<String>,
    /// Country.
    pub country: Change<String>,
    /// Postal or ZIP code.
    pub postal_code: Change<String>,
}

/// Do-not-disturb flags; the flags given replace the stored ones.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DndPatch {
    /// No emails.
    pub email: Option<bool>,
    /// No text messages.
    pub sms: Option<bool>,
    /// No calls.
    pub call: Option<bool>,
    /// No WhatsApp messages.
    pub whatsapp: Option<bool>,
}

/// The writable fields of a contact. Only the fields present change (seed 001's PATCH): a
/// field sent as `null` is cleared, a field left out is kept. Strings are trimmed; an empty
/// string clears like `null`. Read from JSON with these fields' camelCase names (the
/// import builds it so); failing fields are named the same way.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContactPatch {
    /// Full name (seed 001): split into first and last name at the last word
    /// (`Henrik B. Larsen` → `Henrik B.` + `Larsen`; one word is a first name). Not together
    /// with `firstName`/`lastName`.
    pub name: Change<String>,
    /// First name (at most 100 characters).
    pub first_name: Change<String>,
    /// Last name (at most 100 characters).
    pub last_name: Change<String>,
    /// Email address (at most 150 characters); stored lower-cased.
    pub email: Change<String>,
    /// Further email addresses (replaces the list).
    pub secondary_emails: Change<Vec<String>>,
    /// Phone number, any common format; stored in E.164. Without a country code it is read
    /// in the server's default region, if one is configured.
    pub phone: Change<String>,
    /// Further phone numbers (replaces the list).
    pub secondary_phones: Change<Vec<String>>,
    /// Company name.
    pub company_name: Change<String>,
    /// Web site, an http(s) URL (at most 250 characters).
    pub website: Change<String>,
    /// LinkedIn profile, an http(s) URL (at most 250 characters).
    pub linkedin: Change<String>,
    /// Role or job title (at most 75 characters).
    pub role: Change<String>,
    /// Description (at most 10,000 characters).
    pub description: Change<String>,
    /// Notes (at most 10,000 characters).
    pub notes: Change<String>,
    /// Postal address; `null` clears every part.
    pub address: Change<AddressPatch>,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub timezone: Change<String>,
    /// Where the contact came from.
    pub source: Change<String>,
    /// Marketing lead source.
    pub lead_source: Change<String>,
    /// Status in the workflow.
    pub status: Change<String>,
    /// Sales pipeline.
    pub pipeline_id: Change<String>,
    /// Stage in the pipeline.
    pub pipeline_stage: Change<String>,
    /// Status of the last message.
    pub message_status: Change<String>,
    /// Owning user.
    pub owner: Change<String>,
    /// Assigned users (replaces the list).
    pub assignees: Change<Vec<String>>,
    /// Do-not-disturb flags.
    pub dnd: Option<DndPatch>,
    /// Marks a test contact.
    pub is_test_contact: Option<bool>,
    /// When the last message was exchanged.
    pub last_message_at: Change<Timestamp>,
    /// The account the contact belongs to (a UUID's text, checked when applied).
    pub account_id: Change<String>,
    /// The business that owns the contact (a UUID's text, checked when applied).
    pub business_id: Change<String>,
}

/// How the value of a text field is checked and normalised (`rules::Checker`).
#[derive(Clone, Copy, Debug)]
enum Text {
    /// Trimmed text of at most this many characters.
    Short(usize),
    /// An email address, lower-cased.
    Email,
    /// A phone number, to E.164.
    Phone,
    /// An http(s) URL.
    Url,
    /// An IANA time zone.
    TimeZone,
}

impl Text {
    fn read(self, check: &mut Checker<'_>, field: &str, value: &str) -> Option<String> {
        match self {
            Text::Short(max) => check.text(field, value, max),
            Text::Email => check.email(field, value),
            Text::Phone => check.phone(field, value),
            Text::Url => check.url(field, value),
            Text::TimeZone => check.timezone(field, value),
        }
    }
}

/// Sets `target` from a patch field: absent keeps, null clears, a value is checked (and
/// kept only if it passes).
fn patch_text(
    check: &mut Checker<'_>,
    field: &str,
    value: &Change<String>,
    target: &mut Option<String>,
    kind: Text,
) {
    match value {
        Change::Keep => {}
        Change::Clear => *target = None,
        Change::Set(v) => {
            let before = check.failures.len();
            let read = kind.read(check, field, v);
            if check.failures.len() == before {
                *target = read;
            }
        }
    }
}

/// Sets a list column from a patch field: absent keeps, null empties, a list replaces it
/// (each item checked as `kind`).
fn patch_list(
    check: &mut Checker<'_>,
    field: &str,
    value: &Change<Vec<String>>,
    target: &mut serde_json::Value,
    kind: Text,
) {
    match value {
        Change::Keep => {}
        Change::Clear => *target = json!([]),
        Change::Set(values) => {
            *target = json!(check.list(field, values, |ch, f, v| kind.read(ch, f, v)))
        }
    }
}

impl ContactPatch {
    /// Applies the patch to `contact`, collecting every invalid field under `path`. Ids of
    /// accounts and businesses are only parsed here; [`check_parents`] checks they exist.
    pub fn apply(
        &self,
        contact: &mut contact::Model,
        path: &str,
        settings: WriteSettings,
    ) -> Vec<FieldFailure> {
        let mut check = Checker::new(path, settings);
        let c = contact;
        if !self.name.is_keep() {
            if !self.first_name.is_keep() || !self.last_name.is_keep() {
                check.failures.push(FieldFailure::new(
                    field_path(path, "name"),
                    "give either name or firstName/lastName, not both",
                ));
            }
            if let Change::Set(full) = &self.name {
                let (first, last) = split_name(full);
                let first = first.and_then(|f| check.text("name", &f, MAX_NAME));
                let last = last.and_then(|l| check.text("name", &l, MAX_NAME));
                (c.first_name, c.last_name) = (first, last);
            } else {
                (c.first_name, c.last_name) = (None, None);
            }
        }
        let short = Text::Short(MAX_SHORT);
        // The text fields of a contact: (field, change, column, rule).
        let texts = [
            (
                "firstName",
                &self.first_name,
                &mut c.first_name,
                Text::Short(MAX_NAME),
            ),
            (
                "lastName",
                &self.last_name,
                &mut c.last_name,
                Text::Short(MAX_NAME),
            ),
            ("email", &self.email, &mut c.email, Text::Email),
            ("phone", &self.phone, &mut c.phone, Text::Phone),
            (
                "companyName",
                &self.company_name,
                &mut c.company_name,
                short,
            ),
            ("website", &self.website, &mut c.website, Text::Url),
            ("linkedin", &self.linkedin, &mut c.linkedin, Text::Url),
            ("role", &self.role, &mut c.role, Text::Short(MAX_ROLE)),
            (
                "description",
                &self.description,
                &mut c.description,
                Text::Short(MAX_TEXT),
            ),
            ("notes", &self.notes, &mut c.notes, Text::Short(MAX_TEXT)),
            ("timezone", &self.timezone, &mut c.timezone, Text::TimeZone),
            ("source", &self.source, &mut c.source, short),
            ("leadSource", &self.lead_source, &mut c.lead_source, short),
            ("status", &self.status, &mut c.status, short),
            ("pipelineId", &self.pipeline_id, &mut c.pipeline_id, short),
            (
                "pipelineStage",
                &self.pipeline_stage,
                &mut c.pipeline_stage,
                short,
            ),
            (
                "messageStatus",
                &self.message_status,
                &mut c.message_status,
                short,
            ),
            ("owner", &self.owner, &mut c.owner, short),
        ];
        for (field, value, target, kind) in texts {
            patch_text(&mut check, field, value, target, kind);
        }
        let lists = [
            (
                "secondaryEmails",
                &self.secondary_emails,
                &mut c.secondary_emails,
                Text::Email,
            ),
            (
                "secondaryPhones",
                &self.secondary_phones,
                &mut c.secondary_phones,
                Text::Phone,
            ),
            ("assignees", &self.assignees, &mut c.assignees, short),
        ];
        for (field, value, target, kind) in lists {
            patch_list(&mut check, field, value, target, kind);
        }
        match &self.address {
            Change::Keep => {}
            Change::Clear => {
                c.address_street = None;
                c.address_city = None;
                c.address_state = None;
                c.address_country = None;
                c.address_postal_code = None;
            }
            Change::Set(a) => {
                let parts = [
                    ("address.street", &a.street, &mut c.address_street),
                    ("address.city", &a.city, &mut c.address_city),
                    ("address.state", &a.state, &mut c.address_state),
                    ("address.country", &a.country, &mut c.address_country),
                    (
                        "address.postalCode",
                        &a.postal_code,
                        &mut c.address_postal_code,
                    ),
                ];
                for (field, value, target) in parts {
                    patch_text(&mut check, field, value, target, short);
                }
            }
        }
        if let Some(dnd) = &self.dnd {
            c.dnd_email = dnd.email.unwrap_or(c.dnd_email);
            c.dnd_sms = dnd.sms.unwrap_or(c.dnd_sms);
            c.dnd_call = dnd.call.unwrap_or(c.dnd_call);
            c.dnd_whatsapp = dnd.whatsapp.unwrap_or(c.dnd_whatsapp);
        }
        if let Some(flag) = self.is_test_contact {
            c.is_test_contact = flag;
        }
        match &self.last_message_at {
            Change::Keep => {}
            Change::Clear => c.last_message_at = None,
            Change::Set(t) => c.last_message_at = Some(t.millis()),
        }
        let mut failures = check.failures;
        for (field, value, target) in [
            ("accountId", &self.account_id, &mut c.account_id),
            ("businessId", &self.business_id, &mut c.business_id),
        ] {
            match value {
                Change::Keep => {}
                Change::Clear => *target = None,
                Change::Set(id) => {
                    *target = collect_id(&field_path(path, field), id, &mut failures);
                }
            }
        }
        c.sort_name = sort_name(c.first_name.as_deref(), c.last_name.as_deref());
        c.search_text = search_text(c);
        failures
    }
}

/// Checks that the account and business a contact points to exist in the tenant.
async fn check_parents(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    contact: &contact::Model,
    path: &str,
    failures: &mut Vec<FieldFailure>,
) -> Result<()> {
    if let Some(id) = contact.account_id
        && find_by_ids::<Account>(txn, tenant, &[id]).await?.is_empty()
    {
        failures.push(FieldFailure::new(
            field_path(path, "accountId"),
            "no such account",
        ));
    }
    if let Some(id) = contact.business_id
        && find_by_ids::<Business>(txn, tenant, &[id])
            .await?
            .is_empty()
    {
        failures.push(FieldFailure::new(
            field_path(path, "businessId"),
            "no such business",
        ));
    }
    Ok(())
}

/// The contact `id` of the tenant, locked for update (PostgreSQL) inside `txn`.
async fn locked_contact(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    id: Uuid,
) -> Result<contact::Model> {
    scoped::<Contact>(tenant)
        .filter(contact::Column::Id.eq(id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| Error::NotFound("Contact".to_string()))
}

/// The columns of `updated` that differ from `current`, as an active model with only those
/// set. The key columns are never written: an UPDATE that sets the primary key makes SQLite
/// check every table that references contacts, which cost most of an update.
fn changed_columns(current: &contact::Model, updated: &contact::Model) -> contact::ActiveModel {
    let mut active = <contact::ActiveModel as ActiveModelTrait>::default();
    for column in contact::Column::iter() {
        if matches!(column, contact::Column::Id | contact::Column::TenantId) {
            continue;
        }
        let value = updated.get(column);
        if current.get(column) != value {
            active.set(column, value);
        }
    }
    active
}

/// Writes what changed from `current` to `updated` if the stored row still has `current`'s
/// `updatedAt` (compare-and-set in the UPDATE's WHERE), and its assignee rows.
pub(crate) async fn write_contact(
    txn: &DatabaseTransaction,
    current: &contact::Model,
    updated: contact::Model,
) -> Result<contact::Model> {
    let result = Contact::update_many()
        .set(changed_columns(current, &updated))
        .filter(contact::Column::Id.eq(current.id))
        .filter(contact::Column::TenantId.eq(current.tenant_id))
        .filter(contact::Column::UpdatedAt.eq(current.updated_at))
        .exec(txn)
        .await?;
    if result.rows_affected != 1 {
        return Err(Error::PreconditionFailed(
            "the contact changed while it was being updated; read it again and retry".into(),
        ));
    }
    if updated.assignees != current.assignees {
        write_assignees(txn, &updated, true).await?;
    }
    if super::identity_keys::keys_differ(current, &updated) {
        super::identity_keys::replace_keys(txn, &[&updated]).await?;
    }
    Ok(updated)
}

pub(crate) async fn write_assignees(
    txn: &DatabaseTransaction,
    contact: &contact::Model,
    replace: bool,
) -> Result<()> {
    if replace {
        ContactAssignee::delete_many()
            .filter(contact_assignee::Column::TenantId.eq(contact.tenant_id))
            .filter(contact_assignee::Column::ContactId.eq(contact.id))
            .exec(txn)
            .await?;
    }
    let rows: Vec<contact_assignee::ActiveModel> = contact
        .assignees
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str())
        .map(|a| {
            contact_assignee::Model {
                tenant_id: contact.tenant_id,
                contact_id: contact.id,
                assignee: a.to_string(),
            }
            .into_active_model()
        })
        .collect();
    if !rows.is_empty() {
        ContactAssignee::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Patches contact `id`. With `expected_updated_at`, the write happens only if the stored
/// `updatedAt` is exactly that (seed 003's 412); otherwise `PRECONDITION_FAILED`. A patch
/// that changes nothing writes nothing and keeps `updatedAt`. Failing fields are named
/// relative to the patch (`email`, `address.city`).
pub async fn update_contact(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    patch: &ContactPatch,
    expected_updated_at: Option<Timestamp>,
    settings: WriteSettings,
) -> Result<contact::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let current = locked_contact(&txn, tenant, id).await?;
    if let Some(expected) = expected_updated_at
        && expected.millis() != current.updated_at
    {
        return Err(Error::PreconditionFailed(format!(
            "the contact was updated at {} since the expected {}; read it again and retry",
            crate::time::format_millis(current.updated_at),
            crate::time::format_millis(expected.millis()),
        )));
    }
    let mut updated = current.clone();
    let mut failures = patch.apply(&mut updated, "", settings);
    check_parents(&txn, tenant, &updated, "", &mut failures).await?;
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    if updated == current {
        return Ok(current);
    }
    updated.updated_at = next_updated_at(current.updated_at);
    let updated = write_contact(&txn, &current, updated).await?;
    txn.commit().await?;
    Ok(updated)
}

/// A new contact of `tenant` with every field empty, created and updated at `now`.
pub fn blank_contact(tenant: TenantId, now: i64) -> contact::Model {
    contact::Model {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        account_id: None,
        business_id: None,
        external_ref: None,
        resolution_status: ResolutionStatus::Unresolved.as_str().to_string(),
        first_name: None,
        last_name: None,
        email: None,
        secondary_emails: json!([]),
        phone: None,
        secondary_phones: json!([]),
        company_name: None,
        website: None,
        linkedin: None,
        role: None,
        description: None,
        notes: None,
        address_street: None,
        address_city: None,
        address_state: None,
        address_country: None,
        address_postal_code: None,
        timezone: None,
        source: None,
        lead_source: None,
        status: None,
        pipeline_id: None,
        pipeline_stage: None,
        message_status: None,
        owner: None,
        assignees: json!([]),
        created_by: None,
        dnd_email: false,
        dnd_sms: false,
        dnd_call: false,
        dnd_whatsapp: false,
        is_test_contact: false,
        last_message_at: None,
        created_at: now,
        updated_at: now,
        sort_name: String::new(),
        search_text: String::new(),
    }
}

/// Creates a contact from `fields` (absent fields are empty). Failing fields are named
/// relative to `fields`.
pub async fn create_contact(
    db: &DatabaseConnection,
    tenant: TenantId,
    fields: &ContactPatch,
    settings: WriteSettings,
) -> Result<contact::Model> {
    let mut contact = blank_contact(tenant, now_millis());
    let (txn, _lock) = begin_write(db).await?;
    let mut failures = fields.apply(&mut contact, "", settings);
    check_parents(&txn, tenant, &contact, "", &mut failures).await?;
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    let created = contact.clone().into_active_model().insert(&txn).await?;
    write_assignees(&txn, &created, false).await?;
    super::identity_keys::insert_keys(&txn, [&created]).await?;
    txn.commit().await?;
    Ok(created)
}

/// Deletes contacts `ids` of `tenant` with their tag links, assignees, keys and source
/// records.
pub(crate) async fn delete_rows(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    ids: &[Uuid],
) -> Result<()> {
    let ids = || ids.iter().copied();
    ContactTag::delete_many()
        .filter(contact_tag::Column::TenantId.eq(tenant.0))
        .filter(contact_tag::Column::ContactId.is_in(ids()))
        .exec(txn)
        .await?;
    ContactAssignee::delete_many()
        .filter(contact_assignee::Column::TenantId.eq(tenant.0))
        .filter(contact_assignee::Column::ContactId.is_in(ids()))
        .exec(txn)
        .await?;
    ContactSource::delete_many()
        .filter(contact_source::Column::TenantId.eq(tenant.0))
        .filter(contact_source::Column::ContactId.is_in(ids()))
        .exec(txn)
        .await?;
    super::identity_keys::delete_keys(txn, tenant.0, &ids().collect::<Vec<_>>()).await?;
    Contact::delete_many()
        .filter(contact::Column::TenantId.eq(tenant.0))
        .filter(contact::Column::Id.is_in(ids()))
        .exec(txn)
        .await?;
    Ok(())
}

/// Deletes contact `id` (its tag links, assignees and source records go with it); returns
/// its id.
pub async fn delete_contact(db: &DatabaseConnection, tenant: TenantId, id: Uuid) -> Result<Uuid> {
    let (txn, _lock) = begin_write(db).await?;
    let contact = locked_contact(&txn, tenant, id).await?;
    delete_rows(&txn, tenant, &[contact.id]).await?;
    txn.commit().await?;
    Ok(contact.id)
}

/// Tags named by id or by name, as given to `addTagsToContact`/`removeTagsFromContact`.
#[derive(Clone, Debug, Default)]
pub struct TagRefs {
    /// Tag ids.
    pub tag_ids: Option<Vec<Uuid>>,
    /// Tag names, looked up in the contact's business.
    pub tag_names: Option<Vec<String>>,
}

/// Resolves `refs` to tags of the tenant; unknown ones are validation failures.
async fn resolve_tags(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    contact: &contact::Model,
    refs: &TagRefs,
) -> Result<Vec<tag::Model>> {
    let mut failures = Vec::new();
    let mut tags = Vec::new();
    let ids = refs.tag_ids.as_deref().unwrap_or_default();
    let found = if ids.is_empty() {
        Default::default()
    } else {
        find_by_ids::<Tag>(txn, tenant, ids).await?
    };
    for (i, id) in ids.iter().enumerate() {
        let field = format!("tagIds[{i}]");
        match found.get(id) {
            Some(t) if Some(t.business_id) == contact.business_id => tags.push(t.clone()),
            Some(_) => failures.push(FieldFailure::new(
                field,
                "the tag belongs to another business than the contact's",
            )),
            None => failures.push(FieldFailure::new(field, "no such tag")),
        }
    }
    for (i, name) in refs.tag_names.iter().flatten().enumerate() {
        let field = format!("tagNames[{i}]");
        let Some(business) = contact.business_id else {
            failures.push(FieldFailure::new(
                field,
                "the contact has no business to look tag names up in; give tag ids",
            ));
            continue;
        };
        let found = scoped::<Tag>(tenant)
            .filter(tag::Column::BusinessId.eq(business))
            .filter(tag::Column::Name.eq(name.trim()))
            .one(txn)
            .await?;
        match found {
            Some(t) => tags.push(t),
            None => failures.push(FieldFailure::new(
                field,
                "no tag of that name in the contact's business",
            )),
        }
    }
    if !failures.is_empty() {
        return Err(Error::Validation(failures));
    }
    tags.sort_by_key(|t| t.id);
    tags.dedup_by_key(|t| t.id);
    Ok(tags)
}

/// Adds tags to a contact; tags it already has are left as they are.
pub async fn add_tags(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    refs: &TagRefs,
) -> Result<contact::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let contact = locked_contact(&txn, tenant, id).await?;
    let tags = resolve_tags(&txn, tenant, &contact, refs).await?;
    let existing: Vec<Uuid> = ContactTag::find()
        .filter(contact_tag::Column::TenantId.eq(tenant.0))
        .filter(contact_tag::Column::ContactId.eq(contact.id))
        .all(&txn)
        .await?
        .into_iter()
        .map(|l| l.tag_id)
        .collect();
    let now = now_millis();
    let new: Vec<contact_tag::ActiveModel> = tags
        .iter()
        .filter(|t| !existing.contains(&t.id))
        .map(|t| contact_tag::Model::new(tenant.0, contact.id, t.id, now).into_active_model())
        .collect();
    let contact = if new.is_empty() {
        contact
    } else {
        ContactTag::insert_many(new).exec(&txn).await?;
        touch(&txn, contact).await?
    };
    txn.commit().await?;
    Ok(contact)
}

/// Removes tags from a contact; tags it does not have are ignored.
pub async fn remove_tags(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    refs: &TagRefs,
) -> Result<contact::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let contact = locked_contact(&txn, tenant, id).await?;
    let tags = resolve_tags(&txn, tenant, &contact, refs).await?;
    let removed = ContactTag::delete_many()
        .filter(contact_tag::Column::TenantId.eq(tenant.0))
        .filter(contact_tag::Column::ContactId.eq(contact.id))
        .filter(contact_tag::Column::TagId.is_in(tags.iter().map(|t| t.id)))
        .exec(&txn)
        .await?;
    let contact = if removed.rows_affected == 0 {
        contact
    } else {
        touch(&txn, contact).await?
    };
    txn.commit().await?;
    Ok(contact)
}

/// Moves a contact's `updatedAt` forward after a change to its links.
async fn touch(txn: &DatabaseTransaction, current: contact::Model) -> Result<contact::Model> {
    let mut updated = current.clone();
    updated.updated_at = next_updated_at(current.updated_at);
    Contact::update_many()
        .col_expr(contact::Column::UpdatedAt, Expr::val(updated.updated_at))
        .filter(contact::Column::Id.eq(current.id))
        .filter(contact::Column::TenantId.eq(current.tenant_id))
        .exec(txn)
        .await?;
    Ok(updated)
}

/// Sets how a contact was identified and its CRM reference (seed 000's manual resolution).
pub async fn set_resolution(
    db: &DatabaseConnection,
    tenant: TenantId,
    id: Uuid,
    status: ResolutionStatus,
    external_ref: Change<String>,
) -> Result<contact::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let current = locked_contact(&txn, tenant, id).await?;
    let mut updated = current.clone();
    updated.resolution_status = status.as_str().to_string();
    let mut check = Checker::new("", WriteSettings::default());
    patch_text(
        &mut check,
        "externalRef",
        &external_ref,
        &mut updated.external_ref,
        Text::Short(MAX_SHORT),
    );
    if !check.failures.is_empty() {
        return Err(Error::Validation(check.failures));
    }
    if updated == current {
        return Ok(current);
    }
    updated.updated_at = next_updated_at(current.updated_at);
    let updated = write_contact(&txn, &current, updated).await?;
    txn.commit().await?;
    Ok(updated)
}

#[cfg(test)]
mod tests {
    use sea_orm::ActiveValue;

    use super::*;

    #[test]
    fn an_update_sets_only_the_changed_columns_and_never_the_key() {
        let current = blank_contact(TenantId(Uuid::now_v7()), 1_000);
        let mut updated = current.clone();
        updated.first_name = Some("Inés".into());
        updated.updated_at = 1_001;
        let active = changed_columns(&current, &updated);
        let set: Vec<String> = contact::Column::iter()
            .filter(|column| matches!(active.get(*column), ActiveValue::Set(_)))
            .map(|column| format!("{column:?}"))
            .collect();
        assert_eq!(set, ["FirstName", "UpdatedAt"]);
        // Even a changed key (which no write makes) is not written.
        updated.id = Uuid::now_v7();
        assert!(matches!(
            changed_columns(&current, &updated).get(contact::Column::Id),
            ActiveValue::NotSet
        ));
    }

    fn stored() -> contact::Model {
        let mut c = blank_contact(TenantId(Uuid::now_v7()), 1_000);
        c.first_name = Some("Ann".into());
        c.role = Some("Buyer".into());
        c.notes = Some("old".into());
        c.address_city = Some("Oslo".into());
        c
    }

    #[test]
    fn a_patch_keeps_what_is_absent_clears_what_is_null_and_sets_what_is_given() {
        let mut c = stored();
        let patch = ContactPatch {
            role: Change::Clear,
            notes: Change::Set("  new  ".into()),
            email: Change::Set("Ann@Example.COM".into()),
            ..Default::default()
        };
        assert!(patch.apply(&mut c, "", WriteSettings::default()).is_empty());
        assert_eq!(c.first_name.as_deref(), Some("Ann"));
        assert_eq!(c.role, None);
        assert_eq!(c.notes.as_deref(), Some("new"));
        assert_eq!(c.email.as_deref(), Some("ann@example.com"));
        assert_eq!(c.address_city.as_deref(), Some("Oslo"));
    }

    #[test]
    fn every_invalid_field_is_named_under_the_path_and_its_value_is_kept() {
        let mut c = stored();
        let patch = ContactPatch {
            role: Change::Set("x".repeat(MAX_ROLE + 1)),
            email: Change::Set("not an email".into()),
            secondary_emails: Change::Set(vec!["a@example.com".into(), "nope".into()]),
            address: Change::Set(AddressPatch {
                city: Change::Set("x".repeat(MAX_SHORT + 1)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut fields: Vec<String> = patch
            .apply(&mut c, "input.patch", WriteSettings::default())
            .into_iter()
            .map(|f| f.field)
            .collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "input.patch.address.city",
                "input.patch.email",
                "input.patch.role",
                "input.patch.secondaryEmails[1]",
            ]
        );
        assert_eq!(c.role.as_deref(), Some("Buyer"));
        assert_eq!(c.address_city.as_deref(), Some("Oslo"));
    }

    #[test]
    fn a_full_name_is_split_and_is_not_given_with_its_parts() {
        let mut c = stored();
        let patch = ContactPatch {
            name: Change::Set("Henrik B. Larsen".into()),
            ..Default::default()
        };
        assert!(patch.apply(&mut c, "", WriteSettings::default()).is_empty());
        assert_eq!(c.first_name.as_deref(), Some("Henrik B."));
        assert_eq!(c.last_name.as_deref(), Some("Larsen"));
        let both = ContactPatch {
            name: Change::Set("A B".into()),
            last_name: Change::Set("C".into()),
            ..Default::default()
        };
        let failures = both.apply(&mut stored(), "", WriteSettings::default());
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].field, "name");
    }
}
