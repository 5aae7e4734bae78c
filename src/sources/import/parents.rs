//! Step 3, parents: the accounts, businesses and tags a batch's records name, by vendor id,
//! created when seen for the first time (`source_entities` remembers which entity a vendor
//! id became; a new tag whose name its business already has reuses that tag).
use std::collections::{HashMap, HashSet};

use entity::prelude::{Account, Business, SourceEntity, Tag};
use entity::{source_entity, tag};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter};
use uuid::Uuid;

use super::ROWS_PER_INSERT;
use crate::db::insert_all;
use crate::error::Result;
use crate::organisations::Organisation;
use crate::sources::{MappedRecord, VendorTag};
use crate::tenancy::TenantId;

pub(super) const ACCOUNT: &str = "account";
pub(super) const BUSINESS: &str = "business";
pub(super) const TAG: &str = "tag";

/// Accounts, businesses and tags of a batch, by vendor id.
#[derive(Debug, Default)]
pub(super) struct Parents {
    pub(super) accounts: HashMap<String, Uuid>,
    pub(super) businesses: HashMap<String, Uuid>,
    pub(super) tags: HashMap<String, Uuid>,
}

/// What a batch's records name: accounts and businesses (vendor id → name; the last record
/// naming one gives its name), and tags (vendor id → the tag and its business's vendor id;
/// only the tags of records with a business).
#[derive(Debug, Default)]
struct Wanted<'a> {
    accounts: HashMap<&'a str, &'a str>,
    businesses: HashMap<&'a str, &'a str>,
    tags: HashMap<&'a str, (&'a VendorTag, &'a str)>,
}

impl<'a> Wanted<'a> {
    fn of(records: &[&'a MappedRecord]) -> Self {
        let mut wanted = Self::default();
        for record in records {
            if let Some(a) = &record.account {
                wanted.accounts.insert(&a.external_id, &a.name);
            }
            if let Some(b) = &record.business {
                wanted.businesses.insert(&b.external_id, &b.name);
                for t in record.tags.iter().flatten() {
                    wanted.tags.insert(&t.external_id, (t, &b.external_id));
                }
            }
        }
        wanted
    }

    /// The wanted tags not in `known`, with the id of their business (those whose business
    /// is unknown are left out).
    fn missing_tags(
        &self,
        known: &HashMap<String, Uuid>,
        businesses: &HashMap<String, Uuid>,
    ) -> Vec<(&'a str, &'a VendorTag, Uuid)> {
        self.tags
            .iter()
            .filter(|(ext, _)| !known.contains_key(**ext))
            .filter_map(|(ext, (t, business))| Some((*ext, *t, *businesses.get(*business)?)))
            .collect()
    }
}

/// The entities to create for vendor ids seen for the first time, and what each vendor id
/// stands for.
#[derive(Debug)]
struct NewEntities<M> {
    rows: Vec<M>,
    links: Vec<source_entity::Model>,
    ids: HashMap<String, Uuid>,
}

impl<M> Default for NewEntities<M> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            links: Vec::new(),
            ids: HashMap::new(),
        }
    }
}

/// The accounts or businesses to create: one per wanted vendor id not in `known`.
fn new_organisations<E: Organisation>(
    tenant: TenantId,
    source: &str,
    kind: &str,
    wanted: &HashMap<&str, &str>,
    known: &HashMap<String, Uuid>,
    now: i64,
) -> NewEntities<E::Model> {
    let mut new = NewEntities::default();
    for (ext, name) in wanted {
        if !known.contains_key(*ext) {
            let model = E::new_model(tenant, name.to_string(), Some(ext.to_string()), now);
            let id = E::id_of(&model);
            new.links.push(entity_row(tenant, source, kind, ext, id));
            new.ids.insert(ext.to_string(), id);
            new.rows.push(model);
        }
    }
    new
}

/// The tags to create for `missing` (vendor id, tag, business id): a tag whose name its
/// business has (`existing`, by business and name) is reused, and vendor tags of one name in
/// one business make one tag.
fn new_tags(
    tenant: TenantId,
    source: &str,
    missing: Vec<(&str, &VendorTag, Uuid)>,
    existing: &HashMap<(Uuid, String), Uuid>,
    now: i64,
) -> NewEntities<tag::Model> {
    let mut new = NewEntities::default();
    let mut created: HashMap<(Uuid, String), Uuid> = HashMap::new();
    for (ext, t, business) in missing {
        let key = (business, t.name.clone());
        let id = match existing.get(&key).or_else(|| created.get(&key)) {
            Some(id) => *id,
            None => {
                let id = Uuid::now_v7();
                new.rows.push(tag::Model {
                    id,
                    tenant_id: tenant.0,
                    business_id: business,
                    name: t.name.clone(),
                    name_folded: entity::fold(&t.name),
                    display_order: t.display_order,
                    created_at: now,
                    updated_at: now,
                });
                created.insert(key, id);
                id
            }
        };
        new.links.push(entity_row(tenant, source, TAG, ext, id));
        new.ids.insert(ext.to_string(), id);
    }
    new
}

fn entity_row(
    tenant: TenantId,
    source: &str,
    kind: &str,
    external_id: &str,
    id: Uuid,
) -> source_entity::Model {
    source_entity::Model {
        tenant_id: tenant.0,
        source: source.to_string(),
        kind: kind.to_string(),
        external_id: external_id.to_string(),
        entity_id: id,
    }
}

/// The entity ids already known for vendor ids of `kind`.
pub(super) async fn known_entities(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    source: &str,
    kind: &str,
    ids: impl Iterator<Item = String>,
) -> Result<HashMap<String, Uuid>> {
    let ids: Vec<String> = ids.collect();
    let mut known = HashMap::new();
    for chunk in ids.chunks(1_000) {
        let rows = SourceEntity::find()
            .filter(source_entity::Column::TenantId.eq(tenant.0))
            .filter(source_entity::Column::Source.eq(source))
            .filter(source_entity::Column::Kind.eq(kind))
            .filter(source_entity::Column::ExternalId.is_in(chunk.iter().cloned()))
            .all(txn)
            .await?;
        known.extend(rows.into_iter().map(|r| (r.external_id, r.entity_id)));
    }
    Ok(known)
}

/// The accounts or businesses `wanted` (vendor id → name) by vendor id, creating those seen
/// for the first time.
async fn resolve_organisations<E>(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    source: &str,
    kind: &str,
    wanted: &HashMap<&str, &str>,
    now: i64,
) -> Result<HashMap<String, Uuid>>
where
    E: Organisation,
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let ids = wanted.keys().map(|k| k.to_string());
    let mut known = known_entities(txn, tenant, source, kind, ids).await?;
    let new = new_organisations::<E>(tenant, source, kind, wanted, &known, now);
    known.extend(new.ids);
    insert_all::<E>(txn, new.rows, ROWS_PER_INSERT).await?;
    insert_all::<SourceEntity>(txn, new.links, ROWS_PER_INSERT).await?;
    Ok(known)
}

/// Finds the batch's accounts, businesses and tags by vendor id, creating those seen for
/// the first time (a tag whose name already exists in its business is reused).
pub(super) async fn resolve_parents(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    source: &str,
    records: &[&MappedRecord],
    now: i64,
) -> Result<Parents> {
    let wanted = Wanted::of(records);
    let accounts = &wanted.accounts;
    let businesses = &wanted.businesses;
    let mut parents = Parents {
        accounts: resolve_organisations::<Account>(txn, tenant, source, ACCOUNT, accounts, now)
            .await?,
        businesses: resolve_organisations::<Business>(
            txn, tenant, source, BUSINESS, businesses, now,
        )
        .await?,
        tags: HashMap::new(),
    };
    if wanted.tags.is_empty() {
        return Ok(parents);
    }
    let ids = wanted.tags.keys().map(|k| k.to_string());
    parents.tags = known_entities(txn, tenant, source, TAG, ids).await?;
    let missing = wanted.missing_tags(&parents.tags, &parents.businesses);
    if missing.is_empty() {
        return Ok(parents);
    }
    let names: HashSet<&str> = missing.iter().map(|(_, t, _)| t.name.as_str()).collect();
    let business_ids: HashSet<Uuid> = missing.iter().map(|(_, _, b)| *b).collect();
    let existing: HashMap<(Uuid, String), Uuid> = Tag::find()
        .filter(tag::Column::TenantId.eq(tenant.0))
        .filter(tag::Column::BusinessId.is_in(business_ids))
        .filter(tag::Column::Name.is_in(names))
        .all(txn)
        .await?
        .into_iter()
        .map(|t| ((t.business_id, t.name), t.id))
        .collect();
    let new = new_tags(tenant, source, missing, &existing, now);
    parents.tags.extend(new.ids);
    insert_all::<Tag>(txn, new.rows, ROWS_PER_INSERT).await?;
    insert_all::<SourceEntity>(txn, new.links, ROWS_PER_INSERT).await?;
    Ok(parents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::VendorRef;

    const TENANT: TenantId = TenantId(Uuid::nil());

    fn vendor(id: &str, name: &str) -> Option<VendorRef> {
        Some(VendorRef {
            external_id: id.into(),
            name: name.into(),
        })
    }

    fn tag(id: &str, name: &str) -> VendorTag {
        VendorTag {
            external_id: id.into(),
            name: name.into(),
            display_order: 3,
        }
    }

    fn record(account: Option<VendorRef>, business: Option<VendorRef>) -> MappedRecord {
        MappedRecord {
            account,
            business,
            ..Default::default()
        }
    }

    #[test]
    fn wanted_names_every_parent_once_the_last_name_winning() {
        let mut with_tags = record(vendor("a1", "Acme"), vendor("b1", "Shop"));
        with_tags.tags = Some(vec![tag("t1", "VIP"), tag("t2", "New")]);
        let mut tags_without_business = record(None, None);
        tags_without_business.tags = Some(vec![tag("t3", "Lost")]);
        let records = [
            record(vendor("a1", "Old name"), None),
            with_tags,
            tags_without_business,
            record(vendor("a2", "Other"), vendor("b1", "Shop")),
        ];
        let refs: Vec<&MappedRecord> = records.iter().collect();
        let wanted = Wanted::of(&refs);
        assert_eq!(
            wanted.accounts,
            HashMap::from([("a1", "Acme"), ("a2", "Other")])
        );
        assert_eq!(wanted.businesses, HashMap::from([("b1", "Shop")]));
        let mut tags: Vec<(&str, &str, &str)> = wanted
            .tags
            .iter()
            .map(|(ext, (t, b))| (*ext, t.name.as_str(), *b))
            .collect();
        tags.sort();
        assert_eq!(tags, vec![("t1", "VIP", "b1"), ("t2", "New", "b1")]);
    }

    #[test]
    fn missing_tags_are_the_unknown_ones_of_known_businesses() {
        let mut r1 = record(None, vendor("b1", "Shop"));
        r1.tags = Some(vec![tag("t1", "VIP"), tag("t2", "New")]);
        let mut r2 = record(None, vendor("b2", "Gone"));
        r2.tags = Some(vec![tag("t3", "Old")]);
        let records = [r1, r2];
        let refs: Vec<&MappedRecord> = records.iter().collect();
        let wanted = Wanted::of(&refs);
        let b1 = Uuid::now_v7();
        let known = HashMap::from([("t1".to_string(), Uuid::now_v7())]);
        let businesses = HashMap::from([("b1".to_string(), b1)]);
        let missing: Vec<(&str, &str, Uuid)> = wanted
            .missing_tags(&known, &businesses)
            .into_iter()
            .map(|(ext, t, b)| (ext, t.name.as_str(), b))
            .collect();
        assert_eq!(missing, vec![("t2", "New", b1)]);
    }

    #[test]
    fn only_organisations_seen_for_the_first_time_are_created() {
        let known_id = Uuid::now_v7();
        let known = HashMap::from([("a1".to_string(), known_id)]);
        let wanted = HashMap::from([("a1", "Acme"), ("a2", "Other")]);
        let new = new_organisations::<Account>(TENANT, "crm", ACCOUNT, &wanted, &known, 42);
        assert_eq!(new.rows.len(), 1);
        let row = &new.rows[0];
        assert_eq!(row.name, "Other");
        assert_eq!(row.external_ref.as_deref(), Some("a2"));
        assert_eq!(row.created_at, 42);
        assert_eq!(new.ids, HashMap::from([("a2".to_string(), row.id)]));
        assert_eq!(
            new.links,
            vec![entity_row(TENANT, "crm", ACCOUNT, "a2", row.id)]
        );
    }

    #[test]
    fn new_tags_reuse_a_name_of_their_business_and_are_made_once_per_name() {
        let (b1, b2) = (Uuid::now_v7(), Uuid::now_v7());
        let vip = Uuid::now_v7();
        let existing = HashMap::from([((b1, "VIP".to_string()), vip)]);
        let (t1, t2, t3, t4) = (
            tag("t1", "VIP"),
            tag("t2", "New"),
            tag("t3", "New"),
            tag("t4", "VIP"),
        );
        let missing = vec![
            ("t1", &t1, b1),
            ("t2", &t2, b1),
            ("t3", &t3, b1),
            ("t4", &t4, b2),
        ];
        let new = new_tags(TENANT, "crm", missing, &existing, 7);
        let made: Vec<(Uuid, &str, i32, i64)> = new
            .rows
            .iter()
            .map(|t| {
                (
                    t.business_id,
                    t.name.as_str(),
                    t.display_order,
                    t.created_at,
                )
            })
            .collect();
        assert_eq!(made, vec![(b1, "New", 3, 7), (b2, "VIP", 3, 7)]);
        assert_eq!(new.rows[0].name_folded, entity::fold("New"));
        assert_eq!(new.ids["t1"], vip);
        assert_eq!(new.ids["t2"], new.rows[0].id);
        assert_eq!(new.ids["t3"], new.rows[0].id);
        assert_eq!(new.ids["t4"], new.rows[1].id);
        let linked: Vec<(&str, &str, Uuid)> = new
            .links
            .iter()
            .map(|l| (l.external_id.as_str(), l.kind.as_str(), l.entity_id))
            .collect();
        assert_eq!(
            linked,
            vec![
                ("t1", TAG, vip),
                ("t2", TAG, new.rows[0].id),
                ("t3", TAG, new.rows[0].id),
                ("t4", TAG, new.rows[1].id)
            ]
        );
    }
}
