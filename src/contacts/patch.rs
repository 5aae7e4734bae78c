//! `ContactPatch`: the writable fields of a contact (seed 001's PATCH) and how a patch is
//! checked and applied to a stored contact, every failing field named under a path.
use entity::contact;
use serde::Deserialize;
use serde_json::json;

use super::rules::{Checker, MAX_NAME, MAX_ROLE, MAX_SHORT, MAX_TEXT, WriteSettings, split_name};
use super::{search_text, sort_name};
use crate::change::Change;
use crate::error::{FieldFailure, field_path};
use crate::filter::collect_id;
use crate::time::Timestamp;

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
pub(super) enum Text {
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
    pub(super) fn read(self, check: &mut Checker<'_>, field: &str, value: &str) -> Option<String> {
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
pub(super) fn patch_text(
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

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::contacts::blank_contact;
    use crate::tenancy::TenantId;

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
