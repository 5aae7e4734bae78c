//! Step 4, planning: what a batch writes, decided without the database from the batch, what
//! is stored of its records, their contacts and their parents.
//!
//! A new record creates a contact. A record whose raw JSON is byte-for-byte what was stored
//! last time is unchanged (nothing is written, not even `updatedAt`). A changed record
//! updates only the unified fields whose mapped value changed since its last import, so that
//! local edits to other fields survive; its account, business and tags likewise.
use std::collections::{HashMap, HashSet};

use entity::{contact, contact_assignee, contact_key, contact_source, contact_tag};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::map::{Incoming, MappedState, apply_fields};
use super::parents::Parents;
use super::{ImportOptions, ImportSummary};
use crate::contacts::identity_keys::key_rows;
use crate::tenancy::TenantId;
use crate::time::next_updated_at;

/// The stored records of a batch, by vendor id.
pub(super) type Stored = HashMap<String, contact_source::Model>;

/// The stored record of `inc` if the record changed since (its raw text differs).
fn changed<'s>(stored: &'s Stored, inc: &Incoming) -> Option<&'s contact_source::Model> {
    stored
        .get(&inc.mapped.external_id)
        .filter(|src| src.record_hash != inc.hash)
}

/// The contacts to read: those of the batch's changed records.
pub(super) fn contacts_to_read(batch: &[Incoming], stored: &Stored) -> Vec<Uuid> {
    batch
        .iter()
        .filter_map(|inc| Some(changed(stored, inc)?.contact_id))
        .collect()
}

/// What the batch's changed records mapped to last time, by vendor id.
pub(super) fn previous_states<'b>(
    batch: &'b [Incoming],
    stored: &Stored,
) -> HashMap<&'b str, MappedState> {
    batch
        .iter()
        .filter_map(|inc| {
            let src = changed(stored, inc)?;
            Some((
                inc.mapped.external_id.as_str(),
                MappedState::parse(&src.mapped),
            ))
        })
        .collect()
}

/// The tags that changed records had last time and whose ids are not in `known`: looked up
/// so that tags a record no longer has can be unlinked.
pub(super) fn unknown_former_tags(
    previous: &HashMap<&str, MappedState>,
    known: &HashMap<String, Uuid>,
) -> HashSet<String> {
    previous
        .values()
        .flat_map(|old| old.tags.iter().flatten())
        .filter(|t| !known.contains_key(*t))
        .cloned()
        .collect()
}

/// What the database holds of a batch, the inputs of [`plan_batch`].
pub(super) struct Current<'a> {
    /// The stored records, by vendor id.
    pub(super) stored: &'a Stored,
    /// What changed records mapped to last time ([`previous_states`]).
    pub(super) previous: &'a HashMap<&'a str, MappedState>,
    /// The contacts of changed records ([`contacts_to_read`]), by id.
    pub(super) contacts: &'a HashMap<Uuid, contact::Model>,
    /// The batch's accounts, businesses and tags (former tags of changed records included).
    pub(super) parents: &'a Parents,
    /// Contact fields (`ContactPatch` paths) not to take from the vendor, by contact: those
    /// of changes the vendor refused as conflicts.
    pub(super) held: &'a HashMap<Uuid, Vec<&'static str>>,
}

/// What a batch writes.
#[derive(Debug, Default)]
pub(super) struct BatchPlan {
    /// Contacts to insert, with their assignee and key rows.
    pub(super) new_contacts: Vec<contact::Model>,
    pub(super) new_assignees: Vec<contact_assignee::Model>,
    pub(super) new_keys: Vec<contact_key::Model>,
    /// Records of new contacts.
    pub(super) new_sources: Vec<contact_source::Model>,
    /// Contacts to update: as read, and as they become (their assignees and keys follow).
    pub(super) changed: Vec<(contact::Model, contact::Model)>,
    /// Tag links to add.
    pub(super) new_links: Vec<contact_tag::Model>,
    /// Tag links to remove, as (contact id, tag id).
    pub(super) removed_links: Vec<(Uuid, Uuid)>,
    /// Stored records whose raw record, mapped state, hash and fetch time change.
    pub(super) source_updates: Vec<contact_source::Model>,
    /// The counts of created, updated and unchanged contacts.
    pub(super) counts: ImportSummary,
}

/// Decides what `batch` writes, given what the database holds of it.
pub(super) fn plan_batch(
    options: &ImportOptions,
    batch: &[Incoming],
    current: &Current<'_>,
    now: i64,
) -> BatchPlan {
    let with = With {
        options,
        parents: current.parents,
        held: current.held,
        now,
    };
    let mut plan = BatchPlan::default();
    for inc in batch {
        match current.stored.get(&inc.mapped.external_id) {
            Some(src) if src.record_hash == inc.hash => plan.counts.unchanged += 1,
            Some(src) => {
                let (Some(contact), Some(old)) = (
                    current.contacts.get(&src.contact_id),
                    current.previous.get(inc.mapped.external_id.as_str()),
                ) else {
                    continue;
                };
                plan.change(&with, inc, src, contact, old);
            }
            None => plan.create(&with, inc),
        }
    }
    // Their keys and assignees are taken before the contacts go to the INSERT.
    plan.new_keys = key_rows(&plan.new_contacts);
    plan.new_assignees = plan.new_contacts.iter().flat_map(assignee_rows).collect();
    plan
}

/// What each record of a batch is planned with.
struct With<'a> {
    options: &'a ImportOptions,
    parents: &'a Parents,
    held: &'a HashMap<Uuid, Vec<&'static str>>,
    now: i64,
}

/// Removes `path` (`lastName`, `address.city`) from `fields`.
fn remove_path(fields: &mut Map<String, Value>, path: &str) {
    match path.split_once('.') {
        None => {
            fields.remove(path);
        }
        Some((head, rest)) => {
            if let Some(Value::Object(inner)) = fields.get_mut(head) {
                remove_path(inner, rest);
            }
        }
    }
}

impl BatchPlan {
    /// A new contact from `inc`, its tag links and its stored record.
    fn create(&mut self, with: &With<'_>, inc: &Incoming) {
        let (tenant, parents, now) = (with.options.tenant, with.parents, with.now);
        let vendor = &inc.mapped;
        let mut c = inc.draft.clone();
        c.id = Uuid::now_v7();
        c.tenant_id = tenant.0;
        c.created_at = vendor.created_at.unwrap_or(now);
        c.updated_at = vendor.updated_at.unwrap_or(c.created_at).max(c.created_at);
        c.account_id = vendor
            .account
            .as_ref()
            .and_then(|a| parents.accounts.get(&a.external_id).copied());
        c.business_id = vendor
            .business
            .as_ref()
            .and_then(|b| parents.businesses.get(&b.external_id).copied());
        let mut seen = HashSet::new();
        let tags = vendor.tags.iter().flatten();
        for t in tags.filter_map(|t| parents.tags.get(&t.external_id).copied()) {
            if seen.insert(t) {
                self.new_links.push(link(tenant, c.id, t, now));
            }
        }
        self.new_sources.push(contact_source::Model {
            id: Uuid::now_v7(),
            tenant_id: tenant.0,
            contact_id: c.id,
            source: with.options.source.clone(),
            format: with.options.format.name().to_string(),
            external_id: vendor.external_id.clone(),
            record: inc.record.clone(),
            mapped: inc.state_json.clone(),
            record_hash: inc.hash.clone(),
            fetched_at: now,
            deleted_at: None,
        });
        self.new_contacts.push(c);
        self.counts.created += 1;
    }

    /// The update of `contact` by the changed record `inc` (stored as `src`, which mapped to
    /// `old` last time): the fields, parents and tags whose mapped value changed since.
    fn change(
        &mut self,
        with: &With<'_>,
        inc: &Incoming,
        src: &contact_source::Model,
        contact: &contact::Model,
        old: &MappedState,
    ) {
        let (parents, now) = (with.parents, with.now);
        let state = MappedState::of(&inc.mapped);
        let mut delta: Map<String, Value> = state
            .fields
            .iter()
            .filter(|(k, v)| old.fields.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for path in with.held.get(&contact.id).into_iter().flatten() {
            remove_path(&mut delta, path);
        }
        let mut updated = contact.clone();
        apply_fields(&mut updated, &delta, with.options.settings);
        if state.account != old.account {
            updated.account_id = state
                .account
                .as_ref()
                .and_then(|a| parents.accounts.get(a).copied());
        }
        if state.business != old.business {
            updated.business_id = state
                .business
                .as_ref()
                .and_then(|b| parents.businesses.get(b).copied());
        }
        let mut tags_changed = false;
        if state.tags.is_some() && state.tags != old.tags {
            let tag_ids = |tags: &Option<Vec<String>>| -> HashSet<Uuid> {
                tags.iter()
                    .flatten()
                    .filter_map(|t| parents.tags.get(t).copied())
                    .collect()
            };
            let (before, after) = (tag_ids(&old.tags), tag_ids(&state.tags));
            for t in after.difference(&before) {
                self.new_links
                    .push(link(with.options.tenant, contact.id, *t, now));
            }
            for t in before.difference(&after) {
                self.removed_links.push((contact.id, *t));
            }
            tags_changed = before != after;
        }
        if updated != *contact {
            updated.updated_at = next_updated_at(contact.updated_at);
            self.changed.push((contact.clone(), updated));
            self.counts.updated += 1;
        } else if tags_changed {
            self.counts.updated += 1;
        } else {
            self.counts.unchanged += 1;
        }
        let mut row = src.clone();
        row.record = inc.record.clone();
        row.mapped = inc.state_json.clone();
        row.record_hash = inc.hash.clone();
        row.fetched_at = now;
        self.source_updates.push(row);
    }
}

fn assignee_rows(c: &contact::Model) -> impl Iterator<Item = contact_assignee::Model> + '_ {
    c.assignees
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .map(|a| contact_assignee::Model {
            tenant_id: c.tenant_id,
            contact_id: c.id,
            assignee: a.to_string(),
        })
}

fn link(tenant: TenantId, contact: Uuid, tag: Uuid, now: i64) -> contact_tag::Model {
    contact_tag::Model::new(tenant.0, contact, tag, now)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::sources::import::map::incoming;
    use crate::sources::{Format, MapContext, MappedRecord, VendorRef, VendorTag};

    const NOW: i64 = 1_000_000;

    fn options() -> ImportOptions {
        ImportOptions {
            tenant: TenantId(Uuid::from_u128(1)),
            source: "crm".into(),
            format: Format::BusinessContacts,
            context: MapContext::default(),
            strict: false,
            settings: Default::default(),
        }
    }

    fn vendor(id: &str) -> Option<VendorRef> {
        Some(VendorRef {
            external_id: id.into(),
            name: format!("Name of {id}"),
        })
    }

    fn tags(ids: &[&str]) -> Option<Vec<VendorTag>> {
        Some(
            ids.iter()
                .map(|id| VendorTag {
                    external_id: id.to_string(),
                    name: id.to_uppercase(),
                    display_order: 0,
                })
                .collect(),
        )
    }

    /// A record `id` whose raw JSON is `raw` (its fingerprint) mapping to `fields`.
    fn record(id: &str, raw: Value, fields: Value) -> (Value, MappedRecord) {
        let mapped = MappedRecord {
            external_id: id.into(),
            fields: fields.as_object().cloned().unwrap_or_default(),
            created_at: Some(500),
            updated_at: Some(700),
            business: vendor("b1"),
            tags: tags(&[]),
            ..Default::default()
        };
        (raw, mapped)
    }

    fn parents() -> Parents {
        let id = |n: u128| Uuid::from_u128(n);
        Parents {
            accounts: HashMap::from([("a1".into(), id(11)), ("a2".into(), id(12))]),
            businesses: HashMap::from([("b1".into(), id(21)), ("b2".into(), id(22))]),
            tags: HashMap::from([
                ("t1".into(), id(31)),
                ("t2".into(), id(32)),
                ("t3".into(), id(33)),
            ]),
        }
    }

    /// The stored state of a record imported before as `inc`, for contact `contact`.
    fn stored_as(inc: &Incoming, contact: Uuid) -> contact_source::Model {
        contact_source::Model {
            id: Uuid::from_u128(99),
            tenant_id: options().tenant.0,
            contact_id: contact,
            source: "crm".into(),
            format: "business-contacts".into(),
            external_id: inc.mapped.external_id.clone(),
            record: inc.record.clone(),
            mapped: inc.state_json.clone(),
            record_hash: inc.hash.clone(),
            fetched_at: 1,
            deleted_at: None,
        }
    }

    /// The contact that importing `inc` created, with the id of `parents()`.
    fn contact_of(inc: &Incoming) -> contact::Model {
        let plan = plan_new_only(std::slice::from_ref(inc));
        plan.new_contacts.into_iter().next().expect("a contact")
    }

    fn plan_new_only(batch: &[Incoming]) -> BatchPlan {
        let (stored, previous, contacts) = (Stored::new(), HashMap::new(), HashMap::new());
        let parents = parents();
        let current = Current {
            stored: &stored,
            previous: &previous,
            contacts: &contacts,
            parents: &parents,
            held: &HashMap::new(),
        };
        plan_batch(&options(), batch, &current, NOW)
    }

    fn make((raw, mapped): (Value, MappedRecord)) -> Incoming {
        incoming(raw, mapped)
    }

    /// Plans `now` after `before` was imported into `contact` (as it is now).
    fn plan_update(before: &Incoming, contact: &contact::Model, now: &Incoming) -> BatchPlan {
        plan_update_holding(before, contact, now, &[])
    }

    /// [`plan_update`] with `held` fields of the contact not taken from the vendor.
    fn plan_update_holding(
        before: &Incoming,
        contact: &contact::Model,
        now: &Incoming,
        held: &[&'static str],
    ) -> BatchPlan {
        let held = HashMap::from([(contact.id, held.to_vec())]);
        let stored = Stored::from([(
            before.mapped.external_id.clone(),
            stored_as(before, contact.id),
        )]);
        let batch = std::slice::from_ref(now);
        let previous = previous_states(batch, &stored);
        let mut parents = parents();
        // Former tags are known once looked up.
        parents.tags.extend(
            unknown_former_tags(&previous, &parents.tags)
                .into_iter()
                .map(|t| (t, Uuid::from_u128(77))),
        );
        let contacts = HashMap::from([(contact.id, contact.clone())]);
        let current = Current {
            stored: &stored,
            previous: &previous,
            contacts: &contacts,
            parents: &parents,
            held: &held,
        };
        plan_batch(&options(), batch, &current, NOW)
    }

    #[test]
    fn a_new_record_makes_a_contact_its_links_its_rows_and_its_record() {
        let mut m = record(
            "1",
            json!({ "id": "1" }),
            json!({ "email": "ann@example.com", "phone": "+4930123456", "assignees": ["u1", "u2"] }),
        );
        m.1.account = vendor("a2");
        m.1.tags = tags(&["t1", "t2", "t1", "unknown"]);
        let inc = make(m);
        let plan = plan_new_only(std::slice::from_ref(&inc));
        assert_eq!(plan.counts.created, 1);
        assert_eq!(plan.new_contacts.len(), 1);
        let c = &plan.new_contacts[0];
        assert_eq!(c.tenant_id, options().tenant.0);
        assert_eq!((c.created_at, c.updated_at), (500, 700));
        assert_eq!(c.account_id, Some(Uuid::from_u128(12)));
        assert_eq!(c.business_id, Some(Uuid::from_u128(21)));
        assert_eq!(c.email.as_deref(), Some("ann@example.com"));
        let links: Vec<(Uuid, Uuid, i64)> = plan
            .new_links
            .iter()
            .map(|l| (l.contact_id, l.tag_id, l.created_at))
            .collect();
        assert_eq!(
            links,
            vec![
                (c.id, Uuid::from_u128(31), NOW),
                (c.id, Uuid::from_u128(32), NOW)
            ]
        );
        let assignees: Vec<&str> = plan
            .new_assignees
            .iter()
            .map(|a| a.assignee.as_str())
            .collect();
        assert_eq!(assignees, vec!["u1", "u2"]);
        assert!(plan.new_assignees.iter().all(|a| a.contact_id == c.id));
        assert_eq!(plan.new_keys, key_rows([c]));
        assert_eq!(plan.new_keys.len(), 2);
        let src = &plan.new_sources[0];
        assert_eq!(src.contact_id, c.id);
        assert_eq!(
            (
                src.source.as_str(),
                src.format.as_str(),
                src.external_id.as_str()
            ),
            ("crm", "business-contacts", "1")
        );
        assert_eq!(
            (&src.record, &src.mapped, &src.record_hash, src.fetched_at),
            (&inc.record, &inc.state_json, &inc.hash, NOW)
        );
        assert!(plan.changed.is_empty() && plan.removed_links.is_empty());
        assert!(plan.source_updates.is_empty());
    }

    #[test]
    fn a_new_contact_is_never_updated_before_it_was_created() {
        let mut m = record("1", json!({ "id": "1" }), json!({}));
        m.1.created_at = Some(900);
        m.1.updated_at = Some(800);
        assert_eq!(contact_of(&make(m)).updated_at, 900);
        let mut m = record("1", json!({ "id": "1" }), json!({}));
        m.1.created_at = None;
        m.1.updated_at = None;
        let c = contact_of(&make(m));
        assert_eq!((c.created_at, c.updated_at), (NOW, NOW));
    }

    #[test]
    fn an_unchanged_record_writes_nothing() {
        let inc = make(record(
            "1",
            json!({ "id": "1" }),
            json!({ "email": "a@example.com" }),
        ));
        let contact = contact_of(&inc);
        let plan = plan_update(&inc, &contact, &inc);
        assert_eq!(plan.counts.unchanged, 1);
        assert!(plan.new_contacts.is_empty() && plan.changed.is_empty());
        assert!(plan.new_links.is_empty() && plan.source_updates.is_empty());
        assert!(contacts_to_read(std::slice::from_ref(&inc), &Stored::new()).is_empty());
    }

    #[test]
    fn a_changed_record_updates_only_what_changed_since_its_last_import() {
        let before = make(record(
            "1",
            json!({ "id": "1", "v": 1 }),
            json!({ "email": "a@example.com", "notes": "vendor notes", "role": "Buyer" }),
        ));
        let mut contact = contact_of(&before);
        // Edited here since: the notes.
        contact.notes = Some("local notes".into());
        let now = make(record(
            "1",
            json!({ "id": "1", "v": 2 }),
            json!({ "email": "a@example.com", "notes": "vendor notes", "role": "Seller" }),
        ));
        let plan = plan_update(&before, &contact, &now);
        assert_eq!(plan.counts.updated, 1);
        let (read, updated) = &plan.changed[0];
        assert_eq!(read, &contact);
        assert_eq!(updated.role.as_deref(), Some("Seller"));
        assert_eq!(updated.notes.as_deref(), Some("local notes"));
        assert!(updated.updated_at > contact.updated_at);
        assert_eq!(updated.search_text, crate::contacts::search_text(updated));
        let row = &plan.source_updates[0];
        assert_eq!(row.id, Uuid::from_u128(99));
        assert_eq!(row.contact_id, contact.id);
        assert_eq!(
            (&row.record, &row.mapped, &row.record_hash, row.fetched_at),
            (&now.record, &now.state_json, &now.hash, NOW)
        );
        assert!(plan.new_contacts.is_empty());
    }

    #[test]
    fn fields_held_for_a_write_conflict_are_not_taken_from_the_vendor() {
        let before = make(record(
            "1",
            json!({ "id": "1", "v": 1 }),
            json!({ "role": "Buyer", "address": { "city": "Rome", "street": "Via 1" } }),
        ));
        let contact = contact_of(&before);
        let now = make(record(
            "1",
            json!({ "id": "1", "v": 2 }),
            json!({ "role": "Seller", "address": { "city": "Oslo", "street": "Gate 2" } }),
        ));
        let plan = plan_update_holding(&before, &contact, &now, &["role", "address.city"]);
        let (_, updated) = &plan.changed[0];
        assert_eq!(updated.role.as_deref(), Some("Buyer"));
        assert_eq!(updated.address_city.as_deref(), Some("Rome"));
        assert_eq!(
            updated.address_street.as_deref(),
            Some("Gate 2"),
            "not held"
        );
    }

    #[test]
    fn a_changed_record_that_maps_to_the_same_fields_counts_as_unchanged_but_is_stored() {
        let before = make(record(
            "1",
            json!({ "id": "1", "v": 1 }),
            json!({ "role": "Buyer" }),
        ));
        let contact = contact_of(&before);
        let now = make(record(
            "1",
            json!({ "id": "1", "v": 2 }),
            json!({ "role": "Buyer" }),
        ));
        let plan = plan_update(&before, &contact, &now);
        assert_eq!(plan.counts.unchanged, 1);
        assert!(plan.changed.is_empty());
        assert_eq!(plan.source_updates.len(), 1);
    }

    #[test]
    fn parents_change_only_when_the_record_moves() {
        let mut m = record("1", json!({ "id": "1", "v": 1 }), json!({}));
        m.1.account = vendor("a1");
        let before = make(m);
        let mut contact = contact_of(&before);
        // Moved here since: the business.
        contact.business_id = None;
        let mut m = record("1", json!({ "id": "1", "v": 2 }), json!({}));
        m.1.account = vendor("a2");
        let plan = plan_update(&before, &contact, &make(m));
        let (_, updated) = &plan.changed[0];
        assert_eq!(updated.account_id, Some(Uuid::from_u128(12)));
        assert_eq!(updated.business_id, None);
    }

    #[test]
    fn tags_a_record_no_longer_has_are_unlinked_and_new_ones_linked() {
        let mut m = record(
            "1",
            json!({ "id": "1", "v": 1 }),
            json!({ "role": "Buyer" }),
        );
        m.1.tags = tags(&["t1", "t2", "gone"]);
        let before = make(m);
        let contact = contact_of(&before);
        let mut m = record(
            "1",
            json!({ "id": "1", "v": 2 }),
            json!({ "role": "Buyer" }),
        );
        m.1.tags = tags(&["t2", "t3"]);
        let plan = plan_update(&before, &contact, &make(m));
        // Only the tags changed: counted as an update, the contact row is not written.
        assert_eq!(plan.counts.updated, 1);
        assert!(plan.changed.is_empty());
        let added: Vec<(Uuid, Uuid)> = plan
            .new_links
            .iter()
            .map(|l| (l.contact_id, l.tag_id))
            .collect();
        assert_eq!(added, vec![(contact.id, Uuid::from_u128(33))]);
        let mut removed = plan.removed_links.clone();
        removed.sort();
        assert_eq!(
            removed,
            vec![
                (contact.id, Uuid::from_u128(31)),
                (contact.id, Uuid::from_u128(77))
            ]
        );
    }

    #[test]
    fn a_record_without_tags_keeps_the_contacts_tags() {
        let mut m = record("1", json!({ "id": "1", "v": 1 }), json!({}));
        m.1.tags = tags(&["t1"]);
        let before = make(m);
        let contact = contact_of(&before);
        let mut m = record("1", json!({ "id": "1", "v": 2 }), json!({}));
        m.1.tags = None;
        let plan = plan_update(&before, &contact, &make(m));
        assert!(plan.new_links.is_empty() && plan.removed_links.is_empty());
        assert_eq!(plan.counts.unchanged, 1);
    }

    #[test]
    fn a_changed_record_whose_contact_was_not_found_is_skipped() {
        let before = make(record("1", json!({ "id": "1", "v": 1 }), json!({})));
        let now = make(record("1", json!({ "id": "1", "v": 2 }), json!({})));
        let stored = Stored::from([("1".to_string(), stored_as(&before, Uuid::from_u128(5)))]);
        let batch = std::slice::from_ref(&now);
        assert_eq!(contacts_to_read(batch, &stored), vec![Uuid::from_u128(5)]);
        let previous = previous_states(batch, &stored);
        let (contacts, parents) = (HashMap::new(), parents());
        let current = Current {
            stored: &stored,
            previous: &previous,
            contacts: &contacts,
            parents: &parents,
            held: &HashMap::new(),
        };
        let plan = plan_batch(&options(), batch, &current, NOW);
        assert_eq!(plan.counts, ImportSummary::default());
        assert!(plan.source_updates.is_empty());
    }

    #[test]
    fn former_tags_already_known_are_not_looked_up_again() {
        let mut m = record("1", json!({ "id": "1", "v": 1 }), json!({}));
        m.1.tags = tags(&["t1", "old"]);
        let before = make(m);
        let now = make(record("1", json!({ "id": "1", "v": 2 }), json!({})));
        let stored = Stored::from([("1".to_string(), stored_as(&before, Uuid::from_u128(5)))]);
        let previous = previous_states(std::slice::from_ref(&now), &stored);
        assert_eq!(
            unknown_former_tags(&previous, &parents().tags),
            HashSet::from(["old".to_string()])
        );
    }
}
