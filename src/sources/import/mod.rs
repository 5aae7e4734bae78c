//! Applying vendor records to the unified graph, shared by `import` (a file) and `sync` (pages
//! of a live API).
//!
//! Records are matched by (source, vendor id). A new record creates a contact; a record
//! whose raw JSON is byte-for-byte what was stored last time is skipped (nothing is written,
//! not even `updatedAt`); a changed record updates only the unified fields whose mapped value
//! changed since its last import, so local edits to other fields survive. Values that fail
//! validation are not stored in their field (the raw record keeps them) and are reported.
//!
//! One file per step, in the order a record goes through them: [`read`] (a payload's records,
//! in import order), [`map`] (mapped, validated, fingerprinted), [`parents`] (its account,
//! business and tags, created when new), [`stored`] and [`plan`] (what the database holds of a
//! batch, and what the batch changes: pure decisions), [`write`] (the plan's statements);
//! [`run`] drives a whole payload through them.
mod map;
mod parents;
mod plan;
mod read;
mod run;
mod stored;
mod write;

use std::collections::HashMap;

use sea_orm::DatabaseTransaction;
use serde::Serialize;

pub use map::{Incoming, prepare, record_hash};
pub use read::parse_payload;
pub use run::import_payload;
pub use stored::unchanged_records;

use crate::contacts::WriteSettings;
use crate::error::{Error, FieldFailure, Result};
use crate::sources::{Format, MapContext, MappedRecord};
use crate::tenancy::TenantId;
use crate::write_back::conflicts;
use uuid::Uuid;

/// Records written per transaction by a file import.
pub const RECORDS_PER_TRANSACTION: usize = 2_000;
/// Rows per INSERT statement. A 100k import took 5.9 s at 500 rows against 6.9–7.9 s at
/// 100: fewer statements to prepare, bind and journal. (The seed stays at 100, see
/// `demo::ROWS_PER_INSERT`; an import keeps the memory it frees, so its larger value lists
/// no longer fault in fresh pages.)
const ROWS_PER_INSERT: usize = 500;

/// What to import and how.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The tenant the records go to.
    pub tenant: TenantId,
    /// The source's name: records are matched by (source, vendor id).
    pub source: String,
    /// The payload's format.
    pub format: Format,
    /// What the caller knows of the records (e.g. their account).
    pub context: MapContext,
    /// Fail, writing nothing, on any warning or rejected record.
    pub strict: bool,
    /// How input values are read (default phone region).
    pub settings: WriteSettings,
}

/// A warning about a record or its rejection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// The record's vendor id, or `#n` (its position) when it has none.
    pub record: String,
    /// The field concerned, if one.
    pub field: Option<String>,
    /// What happened.
    pub message: String,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "record {}: {field}: {}", self.record, self.message),
            None => write!(f, "record {}: {}", self.record, self.message),
        }
    }
}

/// What an import or sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    /// Contacts created.
    pub created: u64,
    /// Contacts changed.
    pub updated: u64,
    /// Records that changed nothing.
    pub unchanged: u64,
    /// Values not stored, by record and field.
    pub warnings: Vec<Notice>,
    /// Records not imported at all.
    pub rejected: Vec<Notice>,
}

impl ImportSummary {
    /// Adds the counts of `other`.
    pub fn add(&mut self, other: ImportSummary) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.warnings.extend(other.warnings);
        self.rejected.extend(other.rejected);
    }
}

/// The failures that make a strict import fail.
pub fn strict_failures(summary: &ImportSummary) -> Vec<FieldFailure> {
    summary
        .rejected
        .iter()
        .chain(&summary.warnings)
        .map(|n| {
            let field = match &n.field {
                Some(field) => format!("{}.{field}", n.record),
                None => n.record.clone(),
            };
            FieldFailure::new(field, n.message.clone())
        })
        .collect()
}

/// Fails with `NOT_FOUND` unless `tenant` exists.
pub async fn check_tenant(db: &impl sea_orm::ConnectionTrait, tenant: TenantId) -> Result<()> {
    use sea_orm::EntityTrait;
    entity::prelude::Tenant::find_by_id(tenant.0)
        .one(db)
        .await?
        .map(|_| ())
        .ok_or_else(|| Error::NotFound(format!("Tenant {}", tenant.0)))
}

/// Writes `batch` inside `txn` (the caller commits): creates, updates or skips each record's
/// contact, and stores the records. Returns the counts.
pub async fn apply_records(
    txn: &DatabaseTransaction,
    options: &ImportOptions,
    batch: &[Incoming],
    now: i64,
) -> Result<ImportSummary> {
    if batch.is_empty() {
        return Ok(ImportSummary::default());
    }
    let (tenant, source) = (options.tenant, options.source.as_str());
    let records: Vec<&MappedRecord> = batch.iter().map(|inc| &inc.mapped).collect();
    let mut parents = parents::resolve_parents(txn, tenant, source, &records, now).await?;
    let stored = stored::stored_records(txn, tenant, source, batch).await?;
    // Only the contacts of changed records are read, and the tags their records had last
    // time, so that tags a record no longer has can be unlinked.
    let to_read = plan::contacts_to_read(batch, &stored);
    let contacts = stored::contacts(txn, tenant, &to_read).await?;
    // Changes the vendor refused as conflicts: their fields are not taken from the vendor
    // (unless it wins), and the vendor's values become the conflicts' `theirs`.
    let open = conflicts::open_changes(txn, tenant, source, &to_read).await?;
    let held: HashMap<Uuid, Vec<&'static str>> = open
        .iter()
        .map(|(contact, changes)| {
            let paths = changes.iter().flat_map(|c| c.held_paths()).collect();
            (*contact, paths)
        })
        .collect();
    let previous = plan::previous_states(batch, &stored);
    let former_tags = plan::unknown_former_tags(&previous, &parents.tags);
    if !former_tags.is_empty() {
        let tags = former_tags.into_iter();
        let known = parents::known_entities(txn, tenant, source, parents::TAG, tags).await?;
        parents.tags.extend(known);
    }
    let current = plan::Current {
        stored: &stored,
        previous: &previous,
        contacts: &contacts,
        parents: &parents,
        held: &held,
    };
    let mut plan = plan::plan_batch(options, batch, &current, now);
    let counts = std::mem::take(&mut plan.counts);
    write::write_plan(txn, tenant, plan, now).await?;
    if !open.is_empty() {
        let records: HashMap<&str, &str> = batch
            .iter()
            .map(|inc| (inc.external_id(), inc.record.as_str()))
            .collect();
        conflicts::record(txn, &open, &records, now).await?;
    }
    Ok(counts)
}
