//! What a contact change sends to a source: the fields that changed, under the format's own
//! names (the reverse of its import mapping in `sources::*_contacts`), and the format's
//! limits on them. Pure functions of the contact before and after.
use entity::contact;
use serde_json::{Map, Value};

use crate::contacts::full_name;
use crate::error::FieldFailure;
use crate::sources::Format;

/// One field a format can write: its vendor name, the contact field (a `ContactPatch` path)
/// it holds, and the most characters the vendor takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WritableField {
    pub vendor: &'static str,
    pub path: &'static str,
    pub max_chars: Option<usize>,
}

const fn field(vendor: &'static str, path: &'static str) -> WritableField {
    WritableField {
        vendor,
        path,
        max_chars: None,
    }
}

const fn limited(vendor: &'static str, path: &'static str, max: usize) -> WritableField {
    WritableField {
        vendor,
        path,
        max_chars: Some(max),
    }
}

/// The contact's full name, the only field written that is not one column (seed 001's
/// `name`).
const FULL_NAME: &str = "name";

/// Seed 001, `PATCH /api/contacts/{id}`: `name` (full), `email`, `phone`.
const ACCOUNT_CONTACTS: &[WritableField] = &[
    field("name", FULL_NAME),
    field("email", "email"),
    field("phone", "phone"),
];

/// Seed 003's fields and limits (150/100/100/75/250/100 characters).
const CLIENT_CONTACTS: &[WritableField] = &[
    limited("email", "email", 150),
    limited("name", "firstName", 100),
    limited("surname", "lastName", 100),
    limited("role", "role", 75),
    field("notes", "notes"),
    limited("linkedin", "linkedin", 250),
    limited("description", "description", 100),
    field("telephone", "phone"),
];

/// Seed 002's contact fields.
const BUSINESS_CONTACTS: &[WritableField] = &[
    field("firstName", "firstName"),
    field("lastName", "lastName"),
    field("email", "email"),
    field("phone", "phone"),
    field("company", "companyName"),
    field("website", "website"),
    field("address", "address.street"),
    field("city", "address.city"),
    field("state", "address.state"),
    field("country", "address.country"),
    field("zipCode", "address.postalCode"),
    field("ianaTimezone", "timezone"),
    field("source", "source"),
    field("note", "notes"),
    field("emailDND", "dnd.email"),
    field("smsDND", "dnd.sms"),
    field("callDND", "dnd.call"),
    field("whatsappDND", "dnd.whatsapp"),
    field("secondaryEmails", "secondaryEmails"),
    field("secondaryPhones", "secondaryPhones"),
    field("isTestContact", "isTestContact"),
];

/// Seed 004's contact fields.
const PIPELINE_CONTACTS: &[WritableField] = &[
    field("firstName", "firstName"),
    field("lastName", "lastName"),
    field("phoneNumber", "phone"),
    field("email", "email"),
    field("status", "status"),
    field("pipelineId", "pipelineId"),
    field("pipelineStage", "pipelineStage"),
    field("userId", "owner"),
    field("assignees", "assignees"),
    field("source", "source"),
    field("leadSource", "leadSource"),
    field("messageStatus", "messageStatus"),
];

/// Whether `format`'s records carry tags (seed 002), so that a contact's tag changes are
/// written back as its `tags`.
pub fn carries_tags(format: Format) -> bool {
    format == Format::BusinessContacts
}

/// The fields `format` writes.
pub fn writable_fields(format: Format) -> &'static [WritableField] {
    match format {
        Format::AccountContacts => ACCOUNT_CONTACTS,
        Format::ClientContacts => CLIENT_CONTACTS,
        Format::BusinessContacts => BUSINESS_CONTACTS,
        Format::PipelineContacts => PIPELINE_CONTACTS,
    }
}

fn text(value: &Option<String>) -> Value {
    value.clone().map_or(Value::Null, Value::String)
}

/// The contact's value of `path` (a `ContactPatch` path, or [`FULL_NAME`]), as JSON;
/// `None` for a path no format writes.
pub fn value_at(c: &contact::Model, path: &str) -> Option<Value> {
    Some(match path {
        FULL_NAME => text(&full_name(c.first_name.as_deref(), c.last_name.as_deref())),
        "firstName" => text(&c.first_name),
        "lastName" => text(&c.last_name),
        "email" => text(&c.email),
        "phone" => text(&c.phone),
        "companyName" => text(&c.company_name),
        "website" => text(&c.website),
        "linkedin" => text(&c.linkedin),
        "role" => text(&c.role),
        "description" => text(&c.description),
        "notes" => text(&c.notes),
        "address.street" => text(&c.address_street),
        "address.city" => text(&c.address_city),
        "address.state" => text(&c.address_state),
        "address.country" => text(&c.address_country),
        "address.postalCode" => text(&c.address_postal_code),
        "timezone" => text(&c.timezone),
        "source" => text(&c.source),
        "leadSource" => text(&c.lead_source),
        "status" => text(&c.status),
        "pipelineId" => text(&c.pipeline_id),
        "pipelineStage" => text(&c.pipeline_stage),
        "messageStatus" => text(&c.message_status),
        "owner" => text(&c.owner),
        "dnd.email" => Value::Bool(c.dnd_email),
        "dnd.sms" => Value::Bool(c.dnd_sms),
        "dnd.call" => Value::Bool(c.dnd_call),
        "dnd.whatsapp" => Value::Bool(c.dnd_whatsapp),
        "isTestContact" => Value::Bool(c.is_test_contact),
        "secondaryEmails" => c.secondary_emails.clone(),
        "secondaryPhones" => c.secondary_phones.clone(),
        "assignees" => c.assignees.clone(),
        _ => return None,
    })
}

/// The body of the change from `before` to `after` for a source of `format`: the vendor
/// names and new values of the fields it writes that changed (empty: nothing to send).
pub fn changed_fields(
    format: Format,
    before: &contact::Model,
    after: &contact::Model,
) -> Map<String, Value> {
    writable_fields(format)
        .iter()
        .filter_map(|f| {
            let new = value_at(after, f.path)?;
            (value_at(before, f.path)? != new).then(|| (f.vendor.to_string(), new))
        })
        .collect()
}

/// The failures of `body` against the limits of `format` at the source `source`: each names
/// the contact field (`description`) and the source.
pub fn check_limits(
    format: Format,
    source: &str,
    body: &Map<String, Value>,
    failures: &mut Vec<FieldFailure>,
) {
    for f in writable_fields(format) {
        let (Some(max), Some(Value::String(value))) = (f.max_chars, body.get(f.vendor)) else {
            continue;
        };
        if value.chars().count() > max {
            failures.push(FieldFailure::new(
                f.path,
                format!(
                    "source {source:?} ({}) takes at most {max} characters as `{}`",
                    format.name(),
                    f.vendor
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sources::MapContext;
    use crate::tenancy::TenantId;

    fn contact() -> contact::Model {
        let mut c = crate::contacts::write::blank_contact(TenantId(uuid::Uuid::nil()), 0);
        c.first_name = Some("Ann".into());
        c.last_name = Some("Lee".into());
        c.email = Some("ann@example.com".into());
        c
    }

    #[test]
    fn only_changed_fields_are_sent_under_the_format_s_names() {
        let before = contact();
        let mut after = before.clone();
        after.last_name = Some("Smith".into());
        after.description = Some("VIP".into());
        after.dnd_sms = true;
        assert_eq!(
            Value::Object(changed_fields(Format::ClientContacts, &before, &after)),
            json!({ "surname": "Smith", "description": "VIP" })
        );
        assert_eq!(
            Value::Object(changed_fields(Format::AccountContacts, &before, &after)),
            json!({ "name": "Ann Smith" })
        );
        assert_eq!(
            Value::Object(changed_fields(Format::BusinessContacts, &before, &after)),
            json!({ "lastName": "Smith", "smsDND": true })
        );
        let mut cleared = before.clone();
        cleared.email = None;
        assert_eq!(
            Value::Object(changed_fields(Format::PipelineContacts, &before, &cleared)),
            json!({ "email": null })
        );
        assert!(changed_fields(Format::ClientContacts, &before, &before).is_empty());
    }

    #[test]
    fn limits_name_the_contact_field_and_the_source() {
        let body = json!({ "description": "x".repeat(101), "notes": "y".repeat(5000) });
        let mut failures = Vec::new();
        check_limits(
            Format::ClientContacts,
            "desk",
            body.as_object().expect("object"),
            &mut failures,
        );
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].field, "description");
        assert!(failures[0].message.contains("\"desk\""), "{failures:?}");
        let mut none = Vec::new();
        check_limits(
            Format::BusinessContacts,
            "b",
            body.as_object().expect("object"),
            &mut none,
        );
        assert!(none.is_empty());
    }

    /// Each writable field is one the format's import reads into the same contact field,
    /// so what is written comes back as the same value.
    #[test]
    fn every_writable_field_is_the_reverse_of_the_import_mapping() {
        for format in [
            Format::ClientContacts,
            Format::BusinessContacts,
            Format::PipelineContacts,
            Format::AccountContacts,
        ] {
            let connector = format.connector();
            for f in writable_fields(format) {
                if f.path == FULL_NAME {
                    continue;
                }
                let value = match f.path {
                    p if p.starts_with("dnd.") || p == "isTestContact" => json!(true),
                    "secondaryEmails" | "secondaryPhones" | "assignees" => json!(["x"]),
                    _ => json!("x"),
                };
                let record = json!({ connector.id_field(): "1", f.vendor: value.clone() });
                let mapped = connector
                    .map(&record, &MapContext::default())
                    .expect("maps");
                let mut at = Some(&Value::Object(mapped.fields.clone()));
                for part in f.path.split('.') {
                    at = at.and_then(|v| v.get(part));
                }
                assert_eq!(
                    at,
                    Some(&value),
                    "{} {} -> {}",
                    format.name(),
                    f.vendor,
                    f.path
                );
            }
        }
    }
}
