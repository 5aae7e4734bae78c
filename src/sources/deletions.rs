//! Deletion detection: after a sync run that listed every record of a source, the records it
//! had and did not see are marked deleted at that source (`contact_sources.deleted_at`), and a
//! contact whose every source record is deleted is archived (`contacts.archived_at`). A record
//! that is seen again is restored, and so is its contact.
//!
//! The run remembers what it saw as 64-bit hashes of vendor ids ([`SeenIds`]): 100,000 ids
//! take some 2 MB. Two ids sharing a hash can only make a deletion go unnoticed, never delete
//! a record that is still there.
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

use entity::prelude::{Contact, ContactSource};
use entity::{contact, contact_source};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::events;
use crate::tenancy::TenantId;

/// Stored records read per statement while looking for the missing ones.
const READ_CHUNK: u64 = 10_000;
/// Rows changed per UPDATE statement.
const WRITE_CHUNK: usize = 1_000;

/// The vendor ids a run has seen, as hashes.
#[derive(Default)]
pub struct SeenIds(HashSet<u64, BuildHasherDefault<IdentityHasher>>);

impl SeenIds {
    fn hash(id: &str) -> u64 {
        // SipHash with fixed keys: the same id hashes alike for the whole run.
        BuildHasherDefault::<DefaultHasher>::default().hash_one(id)
    }

    /// Notes `id` as seen.
    pub fn insert(&mut self, id: &str) {
        self.0.insert(Self::hash(id));
    }

    /// Whether `id` was seen (or, rarely, an id with the same hash).
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains(&Self::hash(id))
    }

    /// How many distinct ids were seen.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The keys are already hashes: a set of them needs no second hash.
#[derive(Default)]
pub struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// What a complete listing found missing.
#[derive(Debug, Default)]
pub struct Missing {
    /// Records the source had (not deleted) before the run.
    pub stored: u64,
    /// `contact_sources` ids of those the run did not see, with their contacts.
    pub records: Vec<(Uuid, Uuid)>,
}

/// Whether deleting `missing` of `stored` records stays within `max_share` (0.0–1.0) of
/// the source; `allow_mass_deletion` lifts the limit. `SUSPICIOUS_DELETION` otherwise.
pub fn check_share(
    source: &str,
    stored: u64,
    missing: u64,
    max_share: f64,
    allow_mass_deletion: bool,
) -> Result<()> {
    if allow_mass_deletion || missing == 0 {
        return Ok(());
    }
    let share = missing as f64 / Ord::max(stored, 1) as f64;
    if share > max_share {
        return Err(Error::SuspiciousDeletion(format!(
            "source {source}: this run would mark {missing} of {stored} records deleted \
             ({:.0}%, more than the {:.0}% allowed); nothing was deleted. If the vendor really \
             lost them, run it again with allowMassDeletion: true",
            share * 100.0,
            max_share * 100.0
        )));
    }
    Ok(())
}

/// The source's live records (not already deleted) that `seen` lacks, read in chunks of
/// [`READ_CHUNK`] along the `(tenant_id, source, external_id)` index.
pub async fn find_missing(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    source: &str,
    seen: &SeenIds,
) -> Result<Missing> {
    use contact_source::Column as C;
    let mut missing = Missing::default();
    let mut after: Option<String> = None;
    loop {
        let mut select = ContactSource::find()
            .select_only()
            .columns([C::Id, C::ContactId, C::ExternalId])
            .filter(C::TenantId.eq(tenant.0))
            .filter(C::Source.eq(source))
            .filter(C::DeletedAt.is_null())
            .order_by_asc(C::ExternalId)
            .limit(READ_CHUNK);
        if let Some(after) = &after {
            select = select.filter(C::ExternalId.gt(after.clone()));
        }
        let rows: Vec<(Uuid, Uuid, String)> = select.into_tuple().all(db).await?;
        let full = rows.len() as u64 == READ_CHUNK;
        missing.stored += rows.len() as u64;
        for (id, contact_id, external_id) in &rows {
            if !seen.contains(external_id) {
                missing.records.push((*id, *contact_id));
            }
        }
        match rows.into_iter().last() {
            Some((_, _, last)) if full => after = Some(last),
            _ => break,
        }
    }
    Ok(missing)
}

/// Marks `missing` deleted at `now` and archives the contacts left with no live source
/// record; returns how many records were marked. Set-based: one UPDATE per
/// [`WRITE_CHUNK`] records, and one per chunk of contacts.
pub async fn mark_deleted(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    missing: &Missing,
    now: i64,
) -> Result<u64> {
    let mut marked = 0;
    for chunk in missing.records.chunks(WRITE_CHUNK) {
        let done = ContactSource::update_many()
            .col_expr(contact_source::Column::DeletedAt, Expr::val(now))
            .filter(contact_source::Column::TenantId.eq(tenant.0))
            .filter(contact_source::Column::Id.is_in(chunk.iter().map(|(id, _)| *id)))
            .filter(contact_source::Column::DeletedAt.is_null())
            .exec(db)
            .await?;
        marked += done.rows_affected;
        let contacts: Vec<Uuid> = chunk.iter().map(|(_, contact)| *contact).collect();
        archive_orphans(db, tenant, &contacts, now).await?;
    }
    Ok(marked)
}

/// Archives those of `contacts` whose every source record is deleted.
async fn archive_orphans(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    contacts: &[Uuid],
    now: i64,
) -> Result<()> {
    let live = Query::select()
        .expr(Expr::val(1))
        .from(ContactSource)
        .and_where(
            Expr::col((ContactSource, contact_source::Column::ContactId))
                .equals((Contact, contact::Column::Id)),
        )
        .and_where(Expr::col((ContactSource, contact_source::Column::DeletedAt)).is_null())
        .to_owned();
    let archived = Contact::update_many()
        .col_expr(contact::Column::ArchivedAt, Expr::val(now))
        .filter(contact::Column::TenantId.eq(tenant.0))
        .filter(contact::Column::Id.is_in(contacts.iter().copied()))
        .filter(contact::Column::ArchivedAt.is_null())
        .filter(Expr::exists(live).not())
        .exec_with_returning(db)
        .await?;
    let events = archived
        .iter()
        .map(|c| events::event(tenant, c.id, events::kind::ARCHIVED, now))
        .collect();
    events::record(db, events).await
}

/// Whether the source has any record marked deleted (then each page restores what it sees
/// again, see [`restore_seen`]).
pub async fn any_deleted(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    source: &str,
) -> Result<bool> {
    use contact_source::Column as C;
    Ok(ContactSource::find()
        .select_only()
        .column(C::Id)
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::Source.eq(source))
        .filter(C::DeletedAt.is_not_null())
        .limit(1)
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_some())
}

/// Restores the records of `external_ids` that were marked deleted, and un-archives their
/// contacts: they are back at the source. Two statements.
pub async fn restore_seen(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    source: &str,
    external_ids: &[String],
) -> Result<u64> {
    use contact_source::Column as C;
    if external_ids.is_empty() {
        return Ok(0);
    }
    let back: Vec<Uuid> = ContactSource::find()
        .select_only()
        .column(C::ContactId)
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::Source.eq(source))
        .filter(C::ExternalId.is_in(external_ids.iter().cloned()))
        .filter(C::DeletedAt.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    if back.is_empty() {
        return Ok(0);
    }
    let restored = ContactSource::update_many()
        .col_expr(C::DeletedAt, Expr::val(Option::<i64>::None))
        .filter(C::TenantId.eq(tenant.0))
        .filter(C::Source.eq(source))
        .filter(C::ExternalId.is_in(external_ids.iter().cloned()))
        .filter(C::DeletedAt.is_not_null())
        .exec(db)
        .await?;
    let unarchived = Contact::update_many()
        .col_expr(contact::Column::ArchivedAt, Expr::val(Option::<i64>::None))
        .filter(contact::Column::TenantId.eq(tenant.0))
        .filter(contact::Column::Id.is_in(back))
        .filter(contact::Column::ArchivedAt.is_not_null())
        .exec_with_returning(db)
        .await?;
    let now = crate::time::now_millis();
    let events = unarchived
        .iter()
        .map(|c| events::event(tenant, c.id, events::kind::RESTORED, now))
        .collect();
    events::record(db, events).await?;
    Ok(restored.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_ids_remember_what_was_inserted() {
        let mut seen = SeenIds::default();
        for i in 0..1000 {
            seen.insert(&format!("id-{i}"));
        }
        seen.insert("id-1");
        assert_eq!(seen.len(), 1000);
        assert!(seen.contains("id-999"));
        assert!(!seen.contains("id-1000"));
    }

    #[test]
    fn the_share_guard_stops_mass_deletions_unless_allowed() {
        assert!(check_share("s", 100, 50, 0.5, false).is_ok());
        let err = check_share("s", 100, 51, 0.5, false).expect_err("51% > 50%");
        assert_eq!(err.code().as_str(), "SUSPICIOUS_DELETION");
        assert!(check_share("s", 100, 100, 0.5, true).is_ok());
        assert!(check_share("s", 0, 0, 0.5, false).is_ok());
        assert!(check_share("s", 1, 1, 0.5, false).is_err());
    }
}
