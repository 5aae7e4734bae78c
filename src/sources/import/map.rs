//! Step 2, mapping and validating: a vendor record becomes the unified fields of a contact
//! ([`Incoming`]); values that fail validation are dropped from its fields (the raw record
//! keeps them) and reported as warnings.
use std::collections::{BTreeSet, HashMap};

use entity::contact;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::read::RecordQueue;
use super::{ImportSummary, Notice};
use crate::contacts::rules::{Checker, MAX_SHORT};
use crate::contacts::write::blank_contact;
use crate::contacts::{ContactPatch, ResolutionStatus, WriteSettings, search_text, sort_name};
use crate::error::FieldFailure;
use crate::sources::{Connector, MapContext, MappedRecord};
use crate::tenancy::TenantId;

/// A record mapped to the unified fields, not yet validated.
pub(super) struct Mapped {
    pub(super) record: Value,
    pub(super) mapped: MappedRecord,
}

/// A record ready to be written: mapped, validated, fingerprinted.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub(super) mapped: MappedRecord,
    /// The valid fields applied to an empty contact (no id, tenant or times yet): what a
    /// new contact starts from.
    pub(super) draft: contact::Model,
    /// The raw record, as stored in `contact_sources.record`.
    pub(super) record: String,
    /// The raw record's SHA-256: an unchanged record is skipped.
    pub(super) hash: String,
    /// What the record maps to, as stored in `contact_sources.mapped` ([`MappedState`]).
    pub(super) state_json: String,
}

impl Incoming {
    /// The record's own update time (epoch ms), if it has one.
    pub fn updated_at(&self) -> Option<i64> {
        self.mapped.updated_at
    }

    /// The record's vendor id.
    pub fn external_id(&self) -> &str {
        &self.mapped.external_id
    }
}

/// Maps and validates `records`; rejections and warnings go to `summary`. When a vendor id
/// occurs twice, the later record wins (with a warning).
pub fn prepare(
    connector: &dyn Connector,
    records: Vec<Value>,
    context: &MapContext,
    settings: WriteSettings,
    summary: &mut ImportSummary,
) -> Vec<Incoming> {
    let mut queue = RecordQueue::of_values(connector, records, &mut summary.warnings);
    let mapped = queue.map_next(usize::MAX, context, &mut summary.rejected);
    mapped
        .into_iter()
        .map(|mapped| validate(mapped, settings, &mut summary.warnings))
        .collect()
}

/// The `ContactPatch` that a record's unified fields (`ContactPatch`'s camelCase names)
/// make, or why they make none (a failure of `record`).
fn patch_from_json(fields: Map<String, Value>) -> Result<ContactPatch, FieldFailure> {
    serde_json::from_value(Value::Object(fields))
        .map_err(|err| FieldFailure::new("record", err.to_string()))
}

/// Applies the unified `fields` to `contact` (`externalRef`, `resolutionStatus` and
/// `createdBy` here, the rest through `ContactPatch`); returns the values that failed
/// validation.
pub(super) fn apply_fields(
    contact: &mut contact::Model,
    fields: &Map<String, Value>,
    settings: WriteSettings,
) -> Vec<FieldFailure> {
    let mut check = Checker::new("record", settings);
    let mut patch_fields = Map::new();
    for (key, value) in fields {
        let text = value.as_str();
        match key.as_str() {
            "externalRef" => {
                contact.external_ref = text.and_then(|t| check.text(key, t, MAX_SHORT));
            }
            "createdBy" => contact.created_by = text.and_then(|t| check.text(key, t, MAX_SHORT)),
            "resolutionStatus" => match text.map(str::to_ascii_uppercase).as_deref() {
                Some(s @ ("UNRESOLVED" | "CRM_RESOLVED" | "MANUALLY_RESOLVED")) => {
                    contact.resolution_status = ResolutionStatus::parse(s).as_str().to_string();
                }
                None => {}
                Some(_) => check.failures.push(FieldFailure::new(
                    "record.resolutionStatus",
                    "not one of unresolved, crm_resolved, manually_resolved",
                )),
            },
            _ => {
                patch_fields.insert(key.clone(), value.clone());
            }
        }
    }
    let mut failures = check.failures;
    match patch_from_json(patch_fields) {
        Ok(patch) => failures.extend(patch.apply(contact, "record", settings)),
        Err(failure) => failures.push(failure),
    }
    contact.sort_name = sort_name(contact.first_name.as_deref(), contact.last_name.as_deref());
    contact.search_text = search_text(contact);
    failures
}

/// Removes from `fields` the values named by `failures` (`record.email`,
/// `record.secondaryEmails[1]`, `record.address.city`).
fn drop_failed(fields: &mut Map<String, Value>, failures: &[FieldFailure]) {
    let mut list_items: HashMap<String, BTreeSet<usize>> = HashMap::new();
    for failure in failures {
        let path = failure
            .field
            .strip_prefix("record.")
            .unwrap_or(&failure.field);
        if let Some((key, rest)) = path.split_once('[') {
            if let Ok(index) = rest.trim_end_matches(']').parse::<usize>() {
                list_items.entry(key.to_string()).or_default().insert(index);
            }
        } else if let Some((parent, child)) = path.split_once('.') {
            if let Some(Value::Object(nested)) = fields.get_mut(parent) {
                nested.remove(child);
            }
        } else if path == "record" {
            fields.clear();
        } else {
            fields.remove(path);
        }
    }
    for (key, indexes) in list_items {
        if let Some(Value::Array(items)) = fields.get_mut(&key) {
            let kept = std::mem::take(items)
                .into_iter()
                .enumerate()
                .filter(|(i, _)| !indexes.contains(i))
                .map(|(_, v)| v);
            *items = kept.collect();
        }
    }
}

/// Validates a mapped record: values that fail are dropped from its fields and reported in
/// `warnings`; the rest make the draft of a new contact. Fingerprints the raw record.
pub(super) fn validate(
    entry: Mapped,
    settings: WriteSettings,
    warnings: &mut Vec<Notice>,
) -> Incoming {
    let Mapped { record, mut mapped } = entry;
    let id = mapped.external_id.clone();
    let notice = |f: FieldFailure| Notice {
        record: id.clone(),
        field: Some(
            f.field
                .strip_prefix("record.")
                .unwrap_or(&f.field)
                .to_string(),
        ),
        message: f.message,
    };
    warnings.extend(mapped.warnings.drain(..).map(notice));
    let mut draft = blank_contact(TenantId(Uuid::nil()), 0);
    let failures = apply_fields(&mut draft, &mapped.fields, settings);
    if !failures.is_empty() {
        drop_failed(&mut mapped.fields, &failures);
        warnings.extend(failures.into_iter().map(notice));
        // Built again from what is kept, so that draft and stored fields agree.
        draft = blank_contact(TenantId(Uuid::nil()), 0);
        apply_fields(&mut draft, &mapped.fields, settings);
    }
    let raw = record.to_string();
    let hash = record_hash(&raw);
    let state_json = MappedState::of(&mapped).to_json();
    Incoming {
        mapped,
        draft,
        record: raw,
        hash,
        state_json,
    }
}

/// The fingerprint of a record's JSON text (`contact_sources.record_hash`): SHA-256, hex.
pub fn record_hash(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// What the last import of a record mapped it to (stored as `contact_sources.mapped`).
#[derive(Debug, Default, PartialEq)]
pub(super) struct MappedState {
    pub(super) fields: Map<String, Value>,
    pub(super) account: Option<String>,
    pub(super) business: Option<String>,
    pub(super) tags: Option<Vec<String>>,
}

impl MappedState {
    pub(super) fn of(mapped: &MappedRecord) -> Self {
        Self {
            fields: mapped.fields.clone(),
            account: mapped.account.as_ref().map(|a| a.external_id.clone()),
            business: mapped.business.as_ref().map(|b| b.external_id.clone()),
            tags: mapped
                .tags
                .as_ref()
                .map(|tags| tags.iter().map(|t| t.external_id.clone()).collect()),
        }
    }

    pub(super) fn to_json(&self) -> String {
        json!({
            "fields": self.fields,
            "account": self.account,
            "business": self.business,
            "tags": self.tags,
        })
        .to_string()
    }

    /// Reads a stored state; what cannot be read is empty.
    pub(super) fn parse(text: &str) -> Self {
        let value: Value = serde_json::from_str(text).unwrap_or_default();
        let text_of = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
        Self {
            fields: value
                .get("fields")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            account: text_of("account"),
            business: text_of("business"),
            tags: value.get("tags").and_then(Value::as_array).map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            }),
        }
    }
}

/// A validated record for the tests of this step and of the plan.
#[cfg(test)]
pub(super) fn incoming(record: Value, mapped: MappedRecord) -> Incoming {
    validate(
        Mapped { record, mapped },
        WriteSettings::default(),
        &mut Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{VendorRef, VendorTag};

    fn fields(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn mapped(id: &str, value: Value) -> MappedRecord {
        MappedRecord {
            external_id: id.to_string(),
            fields: fields(value),
            ..Default::default()
        }
    }

    #[test]
    fn patch_from_json_reads_the_patch_s_field_names() {
        let patch = patch_from_json(fields(json!({
            "firstName": "Ann", "secondaryEmails": ["a@example.com"], "address": { "city": "Oslo" }
        })))
        .expect("a patch");
        let mut c = blank_contact(TenantId(Uuid::nil()), 0);
        assert!(
            patch
                .apply(&mut c, "record", WriteSettings::default())
                .is_empty()
        );
        assert_eq!(c.first_name.as_deref(), Some("Ann"));
        assert_eq!(c.secondary_emails, json!(["a@example.com"]));
        assert_eq!(c.address_city.as_deref(), Some("Oslo"));
    }

    #[test]
    fn patch_from_json_refuses_what_is_not_a_patch_as_a_failure_of_the_record() {
        let failure = patch_from_json(fields(json!({ "firstName": 5 }))).unwrap_err();
        assert_eq!(failure.field, "record");
        assert!(!failure.message.is_empty());
    }

    #[test]
    fn fields_outside_the_patch_are_applied_and_checked_here() {
        let mut c = blank_contact(TenantId(Uuid::nil()), 0);
        let failures = apply_fields(
            &mut c,
            &fields(json!({
                "externalRef": " ext-1 ", "createdBy": "sync",
                "resolutionStatus": "crm_resolved", "lastName": "Berg", "firstName": "Ann"
            })),
            WriteSettings::default(),
        );
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(c.external_ref.as_deref(), Some("ext-1"));
        assert_eq!(c.created_by.as_deref(), Some("sync"));
        assert_eq!(c.resolution_status, "CRM_RESOLVED");
        assert_eq!(
            c.sort_name,
            sort_name(c.first_name.as_deref(), c.last_name.as_deref())
        );
        assert_eq!(c.search_text, search_text(&c));

        let mut c = blank_contact(TenantId(Uuid::nil()), 0);
        let failures = apply_fields(
            &mut c,
            &fields(json!({ "resolutionStatus": "maybe" })),
            WriteSettings::default(),
        );
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].field, "record.resolutionStatus");
        assert_eq!(c.resolution_status, "UNRESOLVED");
    }

    #[test]
    fn drop_failed_removes_fields_list_items_and_nested_parts() {
        let mut f = fields(json!({
            "email": "bad", "phone": "+4930123456",
            "secondaryEmails": ["a@example.com", "bad", "b@example.com", "worse"],
            "address": { "city": "Oslo", "postalCode": "x" }
        }));
        drop_failed(
            &mut f,
            &[
                FieldFailure::new("record.email", "no"),
                FieldFailure::new("record.secondaryEmails[1]", "no"),
                FieldFailure::new("record.secondaryEmails[3]", "no"),
                FieldFailure::new("record.address.postalCode", "no"),
            ],
        );
        assert_eq!(
            Value::Object(f),
            json!({
                "phone": "+4930123456",
                "secondaryEmails": ["a@example.com", "b@example.com"],
                "address": { "city": "Oslo" }
            })
        );
        let mut f = fields(json!({ "email": "a@example.com" }));
        drop_failed(&mut f, &[FieldFailure::new("record", "not a patch")]);
        assert!(f.is_empty());
    }

    #[test]
    fn validate_drops_failing_values_warns_and_builds_the_draft_from_the_rest() {
        let mut warnings = Vec::new();
        let mut m = mapped(
            "7",
            json!({ "email": "not an email", "firstName": "Ann", "secondaryEmails": ["x", "b@example.com"] }),
        );
        m.warnings
            .push(FieldFailure::new("record.phone", "a placeholder"));
        let record = json!({ "id": 7 });
        let inc = validate(
            Mapped {
                record: record.clone(),
                mapped: m,
            },
            WriteSettings::default(),
            &mut warnings,
        );
        let fields_warned: Vec<_> = warnings
            .iter()
            .map(|w| (w.record.as_str(), w.field.as_deref()))
            .collect();
        assert_eq!(
            fields_warned,
            vec![
                ("7", Some("phone")),
                ("7", Some("email")),
                ("7", Some("secondaryEmails[0]"))
            ]
        );
        assert_eq!(
            Value::Object(inc.mapped.fields.clone()),
            json!({ "firstName": "Ann", "secondaryEmails": ["b@example.com"] })
        );
        assert_eq!(inc.draft.email, None);
        assert_eq!(inc.draft.first_name.as_deref(), Some("Ann"));
        assert_eq!(inc.draft.secondary_emails, json!(["b@example.com"]));
        assert_eq!(inc.record, record.to_string());
        assert_eq!(inc.hash, hex::encode(Sha256::digest(record.to_string())));
        assert_eq!(
            MappedState::parse(&inc.state_json),
            MappedState::of(&inc.mapped)
        );
    }

    #[test]
    fn a_mapped_state_survives_its_json_and_bad_json_reads_as_empty() {
        let m = MappedRecord {
            external_id: "1".into(),
            fields: fields(json!({ "email": "a@example.com", "notes": null })),
            account: Some(VendorRef {
                external_id: "acc".into(),
                name: "Acc".into(),
            }),
            business: None,
            tags: Some(vec![VendorTag {
                external_id: "t1".into(),
                name: "T".into(),
                display_order: 0,
            }]),
            ..Default::default()
        };
        let state = MappedState::of(&m);
        assert_eq!(MappedState::parse(&state.to_json()), state);
        assert_eq!(state.tags, Some(vec!["t1".to_string()]));
        assert_eq!(MappedState::parse("not json"), MappedState::default());
    }
}
