//! Applying vendor records to the unified graph, shared by `import` (a file) and `sync` (pages
//! of a live API).
//!
//! Records are matched by (source, vendor id). A new record creates a contact; a record
//! whose raw JSON is byte-for-byte what was stored last time is skipped (nothing is written,
//! not even `updatedAt`); a changed record updates only the unified fields whose mapped value
//! changed since its last import, so local edits to other fields survive. Values that fail
//! validation are not stored in their field (the raw record keeps them) and are reported.
use std::collections::{BTreeSet, HashMap, HashSet};

use async_graphql::InputType;
use entity::prelude::{
    Account, Business, Contact, ContactAssignee, ContactSource, ContactTag, SourceEntity, Tag,
};
use entity::{contact, contact_assignee, contact_source, contact_tag, source_entity, tag};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, IntoActiveModel, QueryFilter, Statement,
};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{Connector, Format, MapContext, MappedRecord, mapping};
use crate::contacts::identity_keys::{insert_key_rows, key_rows, keys_differ, replace_keys};
use crate::contacts::rules::{Checker, MAX_SHORT};
use crate::contacts::write::{blank_contact, write_assignees, write_contact};
use crate::contacts::{ContactPatch, ResolutionStatus, WriteSettings, search_text, sort_name};
use crate::db::begin_write;
use crate::db::{WalCheckpointer, insert_all};
use crate::error::{Error, FieldFailure, Result};
use crate::organisations::Organisation;
use crate::tenancy::TenantId;
use crate::time::next_updated_at;
use crate::time::now_millis;

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

/// A record ready to be written: mapped, validated, fingerprinted.
#[derive(Clone, Debug)]
pub struct Incoming {
    mapped: MappedRecord,
    /// The valid fields applied to an empty contact (no id, tenant or times yet): what a
    /// new contact starts from.
    draft: contact::Model,
    record: String,
    hash: String,
    /// What the record maps to, as stored in `contact_sources.mapped` ([`MappedState`]).
    state_json: String,
}

impl Incoming {
    /// The record's own update time (epoch ms), if it has one.
    pub fn updated_at(&self) -> Option<i64> {
        self.mapped.updated_at
    }
}

/// Applies the unified `fields` to `contact` (`externalRef`, `resolutionStatus` and
/// `createdBy` here, the rest through `ContactPatch`); returns the values that failed
/// validation.
fn apply_fields(
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
    match ContactPatch::parse(Some(
        async_graphql::Value::from_json(Value::Object(patch_fields)).unwrap_or_default(),
    )) {
        Ok(patch) => failures.extend(patch.apply(contact, "record", settings)),
        Err(err) => failures.push(FieldFailure::new(
            "record",
            err.into_server_error(Default::default()).message,
        )),
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

/// Maps and validates `records`; rejections and warnings go to `summary`. When a vendor id
/// occurs twice, the later record wins (with a warning).
pub fn prepare(
    connector: &dyn Connector,
    records: Vec<Value>,
    context: &MapContext,
    settings: WriteSettings,
    summary: &mut ImportSummary,
) -> Vec<Incoming> {
    let records = records.into_iter().map(Record::Parsed).collect();
    let mut queue = RecordQueue::new(connector, records, &mut summary.warnings);
    let mapped = queue.map_next(usize::MAX, context, &mut summary.rejected);
    mapped
        .into_iter()
        .map(|mapped| validate(mapped, settings, &mut summary.warnings))
        .collect()
}

/// A record mapped to the unified fields, not yet validated.
struct Mapped {
    record: Value,
    mapped: MappedRecord,
}

/// A record of a payload: parsed, or still its raw JSON text.
enum Record {
    Parsed(Value),
    Raw(Box<RawValue>),
}

impl Record {
    /// Its vendor id, or why it has none.
    fn id(&self, id_field: &str) -> std::result::Result<String, String> {
        match self {
            Record::Parsed(value) => mapping::record_id(value, id_field),
            Record::Raw(raw) => mapping::raw_record_id(raw, id_field),
        }
    }

    fn into_value(self) -> std::result::Result<Value, String> {
        match self {
            Record::Parsed(value) => Ok(value),
            Record::Raw(raw) => serde_json::from_str(raw.get())
                .map_err(|err| format!("the record is not valid JSON: {err}")),
        }
    }
}

/// The records of a payload in the order they are imported, mapped a batch at a time.
///
/// When a vendor id occurs more than once, the last record with it takes the place of the
/// first and the others are left out (with a warning each). Finding that out reads only the
/// ids, so the records themselves can be mapped later, batch by batch, while earlier batches
/// are written.
struct RecordQueue<'c> {
    connector: &'c dyn Connector,
    /// The records; each is taken when it is mapped.
    records: Vec<Option<Record>>,
    /// Positions in `records`, in import order.
    order: std::vec::IntoIter<usize>,
}

impl<'c> RecordQueue<'c> {
    /// Orders `records`; a warning for each vendor id that occurs more than once.
    fn new(connector: &'c dyn Connector, records: Vec<Record>, warnings: &mut Vec<Notice>) -> Self {
        let mut order: Vec<usize> = Vec::with_capacity(records.len());
        let mut slot_of: HashMap<String, usize> = HashMap::with_capacity(records.len());
        for (position, record) in records.iter().enumerate() {
            // A record without a usable id keeps its place, to be rejected when mapped.
            let Ok(id) = record.id(connector.id_field()) else {
                order.push(position);
                continue;
            };
            if let Some(&slot) = slot_of.get(&id) {
                order[slot] = position;
                warnings.push(Notice {
                    record: id,
                    field: None,
                    message: "the id occurs more than once; the last record was imported".into(),
                });
            } else {
                slot_of.insert(id, order.len());
                order.push(position);
            }
        }
        Self {
            connector,
            records: records.into_iter().map(Some).collect(),
            order: order.into_iter(),
        }
    }

    /// How many records are still to be mapped.
    fn remaining(&self) -> usize {
        self.order.len()
    }

    /// Maps up to `count` more records; those that cannot be mapped are rejected.
    fn map_next(
        &mut self,
        count: usize,
        context: &MapContext,
        rejected: &mut Vec<Notice>,
    ) -> Vec<Mapped> {
        let mut out = Vec::with_capacity(count.min(self.remaining()));
        for position in self.order.by_ref().take(count) {
            let Some(record) = self.records[position].take() else {
                continue;
            };
            let reject = |reason| Notice {
                record: format!("#{}", position + 1),
                field: None,
                message: reason,
            };
            let record = match record.into_value() {
                Ok(record) => record,
                Err(reason) => {
                    rejected.push(reject(reason));
                    continue;
                }
            };
            match self.connector.map(&record, context) {
                Ok(mapped) => out.push(Mapped { record, mapped }),
                Err(reason) => rejected.push(reject(reason)),
            }
        }
        out
    }
}

/// Validates a mapped record: values that fail are dropped from its fields and reported in
/// `warnings`; the rest make the draft of a new contact. Fingerprints the raw record.
fn validate(entry: Mapped, settings: WriteSettings, warnings: &mut Vec<Notice>) -> Incoming {
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
    let hash = hex::encode(Sha256::digest(raw.as_bytes()));
    let state_json = MappedState::of(&mapped).to_json();
    Incoming {
        mapped,
        draft,
        record: raw,
        hash,
        state_json,
    }
}

/// Reads a payload of `format`: JSON, then the format's envelope.
pub fn parse_payload(format: Format, payload: &[u8]) -> Result<Vec<Value>> {
    let value: Value = serde_json::from_slice(&super::payload::normalise(payload))
        .map_err(|err| Error::BadPayload(format!("not valid JSON: {err}")))?;
    format
        .connector()
        .records(value)
        .map_err(|err| Error::BadPayload(format!("not a {} payload: {err}", format.name())))
}

/// The records of a whole payload: their raw texts when it is exactly of its format (each
/// is parsed when its batch is mapped, while earlier batches are written), else parsed here
/// by [`parse_payload`], which also says why a payload is not of its format.
fn read_records(format: Format, payload: &[u8]) -> Result<Vec<Record>> {
    if let Some(raw) = format
        .connector()
        .raw_records(&super::payload::normalise(payload))
    {
        return Ok(raw.into_iter().map(Record::Raw).collect());
    }
    Ok(parse_payload(format, payload)?
        .into_iter()
        .map(Record::Parsed)
        .collect())
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

/// Imports a whole payload (a file) in transactions of [`RECORDS_PER_TRANSACTION`] records.
/// A payload that is not of its format writes nothing. Under `strict`, every record is
/// validated before anything is written, and any warning or rejection writes nothing;
/// otherwise each batch is validated on a blocking thread while the batch before it is
/// written, and on PostgreSQL two batches are written at once (so when one fails, a later
/// one may already be in). On SQLite a [`WalCheckpointer`] copies the WAL into the database
/// file meanwhile (`db` should come from [`crate::db::connect_for_import`]). `progress` gets
/// the records done so far and the total.
pub async fn import_payload(
    db: &DatabaseConnection,
    options: &ImportOptions,
    payload: &[u8],
    progress: impl Fn(usize, usize),
) -> Result<ImportSummary> {
    let started = std::time::Instant::now();
    let records = read_records(options.format, payload)?;
    tracing::debug!(elapsed = ?started.elapsed(), records = records.len(), "payload read");
    let mut summary = ImportSummary::default();
    let connector = options.format.connector();
    let mut queue = RecordQueue::new(connector, records, &mut summary.warnings);
    let total = queue.remaining();
    let settings = options.settings;
    // Under `strict` every record is validated before anything is written.
    let validated: Option<Vec<Incoming>> = if options.strict {
        let mapped = queue.map_next(total, &options.context, &mut summary.rejected);
        let incoming = mapped
            .into_iter()
            .map(|m| validate(m, settings, &mut summary.warnings))
            .collect();
        if !summary.warnings.is_empty() || !summary.rejected.is_empty() {
            return Err(Error::Validation(strict_failures(&summary)));
        }
        Some(incoming)
    } else {
        None
    };
    check_tenant(db, options.tenant).await?;
    let checkpointer = WalCheckpointer::start(db);
    match validated {
        Some(incoming) => {
            let mut done = 0;
            for chunk in incoming.chunks(RECORDS_PER_TRANSACTION) {
                summary.add(write_batch(db, options, chunk).await?);
                done += chunk.len();
                progress(done, total);
            }
        }
        None => {
            let written = write_pipelined(db, options, queue, total, &progress).await?;
            summary.add(written);
        }
    }
    if let Some(checkpointer) = checkpointer {
        checkpointer.finish().await?;
    }
    Ok(summary)
}

/// Writes the records of `queue`, each batch mapped and validated on a blocking thread while
/// the batches before it are written (two at once on PostgreSQL). Returns the counts and
/// the batches' warnings and rejections.
async fn write_pipelined(
    db: &DatabaseConnection,
    options: &ImportOptions,
    mut queue: RecordQueue<'static>,
    total: usize,
    progress: &impl Fn(usize, usize),
) -> Result<ImportSummary> {
    let started = std::time::Instant::now();
    let settings = options.settings;
    let mut summary = ImportSummary::default();
    let (sender, mut batches) = tokio::sync::mpsc::channel::<Prepared>(2);
    let context = options.context.clone();
    let validator = tokio::task::spawn_blocking(move || {
        while queue.remaining() > 0 {
            let before = queue.remaining();
            let mut notices = ImportSummary::default();
            let batch: Vec<Incoming> = queue
                .map_next(RECORDS_PER_TRANSACTION, &context, &mut notices.rejected)
                .into_iter()
                .map(|m| validate(m, settings, &mut notices.warnings))
                .collect();
            let prepared = Prepared {
                batch,
                notices,
                records: before - queue.remaining(),
            };
            if sender.blocking_send(prepared).is_err() {
                return;
            }
        }
    });
    // PostgreSQL writes two batches at once (a backend each). The accounts, businesses and
    // tags of each batch are created before it is handed to a writer, in a transaction of
    // their own, so that two writers never both create one. SQLite has one writer: batches
    // follow each other.
    let concurrency = match db.get_database_backend() {
        DbBackend::Postgres => 2,
        _ => 1,
    };
    let mut done = 0;
    let mut writers = tokio::task::JoinSet::new();
    let mut finished = |written: Option<std::result::Result<Result<(ImportSummary, usize)>, _>>,
                        summary: &mut ImportSummary|
     -> Result<()> {
        let Some(written) = written else {
            return Ok(());
        };
        let (counts, records) =
            written.map_err(|err| Error::Internal(format!("import writer failed: {err}")))??;
        summary.add(counts);
        done += records;
        tracing::debug!(elapsed = ?started.elapsed(), done, "records written");
        progress(done, total);
        Ok(())
    };
    while let Some(Prepared {
        batch,
        notices,
        records,
    }) = batches.recv().await
    {
        summary.add(notices);
        if concurrency > 1 {
            let mapped: Vec<&MappedRecord> = batch.iter().map(|i| &i.mapped).collect();
            let (txn, _lock) = begin_write(db).await?;
            resolve_parents(&txn, options.tenant, &options.source, &mapped, now_millis()).await?;
            txn.commit().await?;
        }
        while writers.len() >= concurrency {
            finished(writers.join_next().await, &mut summary)?;
        }
        let (db, options) = (db.clone(), options.clone());
        writers.spawn(async move {
            let counts = write_batch(&db, &options, &batch).await?;
            Ok((counts, records))
        });
    }
    while !writers.is_empty() {
        finished(writers.join_next().await, &mut summary)?;
    }
    validator
        .await
        .map_err(|err| Error::Internal(format!("record validation failed: {err}")))?;
    Ok(summary)
}

/// A batch ready to be written, with what was found while preparing it.
struct Prepared {
    batch: Vec<Incoming>,
    /// Its warnings and rejected records.
    notices: ImportSummary,
    /// How many records of the payload it stands for (rejected ones included).
    records: usize,
}

/// Writes one batch in its own transaction.
async fn write_batch(
    db: &DatabaseConnection,
    options: &ImportOptions,
    batch: &[Incoming],
) -> Result<ImportSummary> {
    let (txn, _lock) = begin_write(db).await?;
    let counts = apply_records(&txn, options, batch, now_millis()).await?;
    txn.commit().await?;
    Ok(counts)
}

/// Fails with `NOT_FOUND` unless `tenant` exists.
pub async fn check_tenant(db: &impl sea_orm::ConnectionTrait, tenant: TenantId) -> Result<()> {
    entity::prelude::Tenant::find_by_id(tenant.0)
        .one(db)
        .await?
        .map(|_| ())
        .ok_or_else(|| Error::NotFound(format!("Tenant {}", tenant.0)))
}

/// What the last import of a record mapped it to (stored as `contact_sources.mapped`).
#[derive(Debug, Default, PartialEq)]
struct MappedState {
    fields: Map<String, Value>,
    account: Option<String>,
    business: Option<String>,
    tags: Option<Vec<String>>,
}

impl MappedState {
    fn of(mapped: &MappedRecord) -> Self {
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

    fn to_json(&self) -> String {
        json!({
            "fields": self.fields,
            "account": self.account,
            "business": self.business,
            "tags": self.tags,
        })
        .to_string()
    }

    fn parse(text: &str) -> Self {
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

/// Accounts, businesses and tags of a batch, by vendor id.
#[derive(Default)]
struct Parents {
    accounts: HashMap<String, Uuid>,
    businesses: HashMap<String, Uuid>,
    tags: HashMap<String, Uuid>,
}

const ACCOUNT: &str = "account";
const BUSINESS: &str = "business";
const TAG: &str = "tag";

/// The entity ids already known for vendor ids of `kind`.
async fn known_entities(
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
    let mut known = known_entities(
        txn,
        tenant,
        source,
        kind,
        wanted.keys().map(|k| k.to_string()),
    )
    .await?;
    let mut rows = Vec::new();
    let mut links = Vec::new();
    for (ext, name) in wanted {
        if !known.contains_key(*ext) {
            let model = E::new_model(tenant, name.to_string(), Some(ext.to_string()), now);
            let id = E::id_of(&model);
            links.push(entity_row(tenant, source, kind, ext, id));
            known.insert(ext.to_string(), id);
            rows.push(model);
        }
    }
    insert_all::<E>(txn, rows, ROWS_PER_INSERT).await?;
    insert_all::<SourceEntity>(txn, links, ROWS_PER_INSERT).await?;
    Ok(known)
}

/// Finds the batch's accounts, businesses and tags by vendor id, creating those seen for
/// the first time (a tag whose name already exists in its business is reused).
async fn resolve_parents(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    source: &str,
    records: &[&MappedRecord],
    now: i64,
) -> Result<Parents> {
    let mut wanted_accounts: HashMap<&str, &str> = HashMap::new();
    let mut wanted_businesses: HashMap<&str, &str> = HashMap::new();
    let mut wanted_tags: HashMap<&str, (&super::VendorTag, &str)> = HashMap::new();
    for record in records {
        if let Some(a) = &record.account {
            wanted_accounts.insert(&a.external_id, &a.name);
        }
        if let Some(b) = &record.business {
            wanted_businesses.insert(&b.external_id, &b.name);
            for t in record.tags.iter().flatten() {
                wanted_tags.insert(&t.external_id, (t, &b.external_id));
            }
        }
    }
    let mut parents = Parents {
        accounts: resolve_organisations::<Account>(
            txn,
            tenant,
            source,
            ACCOUNT,
            &wanted_accounts,
            now,
        )
        .await?,
        businesses: resolve_organisations::<Business>(
            txn,
            tenant,
            source,
            BUSINESS,
            &wanted_businesses,
            now,
        )
        .await?,
        tags: HashMap::new(),
    };
    if !wanted_tags.is_empty() {
        parents.tags = known_entities(
            txn,
            tenant,
            source,
            TAG,
            wanted_tags.keys().map(|k| k.to_string()),
        )
        .await?;
        let missing: Vec<(&str, &super::VendorTag, Uuid)> = wanted_tags
            .iter()
            .filter(|(ext, _)| !parents.tags.contains_key(**ext))
            .filter_map(|(ext, (t, business))| {
                Some((*ext, *t, *parents.businesses.get(*business)?))
            })
            .collect();
        if !missing.is_empty() {
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
            let mut rows = Vec::new();
            let mut links = Vec::new();
            let mut created: HashMap<(Uuid, String), Uuid> = HashMap::new();
            for (ext, t, business) in missing {
                let key = (business, t.name.clone());
                let id = match existing.get(&key).or_else(|| created.get(&key)) {
                    Some(id) => *id,
                    None => {
                        let id = Uuid::now_v7();
                        rows.push(tag::Model {
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
                links.push(entity_row(tenant, source, TAG, ext, id));
                parents.tags.insert(ext.to_string(), id);
            }
            insert_all::<Tag>(txn, rows, ROWS_PER_INSERT).await?;
            insert_all::<SourceEntity>(txn, links, ROWS_PER_INSERT).await?;
        }
    }
    Ok(parents)
}

/// Writes `batch` inside `txn` (the caller commits): creates, updates or skips each record's
/// contact, and stores the records. Returns the counts.
pub async fn apply_records(
    txn: &DatabaseTransaction,
    options: &ImportOptions,
    batch: &[Incoming],
    now: i64,
) -> Result<ImportSummary> {
    let tenant = options.tenant;
    let source = options.source.as_str();
    let mut summary = ImportSummary::default();
    if batch.is_empty() {
        return Ok(summary);
    }
    let records: Vec<&MappedRecord> = batch.iter().map(|inc| &inc.mapped).collect();
    let mut parents = resolve_parents(txn, tenant, source, &records, now).await?;

    let mut stored: HashMap<String, contact_source::Model> = HashMap::new();
    for chunk in batch.chunks(1_000) {
        let ids: Vec<&str> = chunk
            .iter()
            .map(|i| i.mapped.external_id.as_str())
            .collect();
        let rows = stored_records(txn, tenant, source, &ids).await?;
        stored.extend(rows.into_iter().map(|r| (r.external_id.clone(), r)));
    }
    // Only the contacts of changed records are read.
    let to_load: Vec<Uuid> = batch
        .iter()
        .filter_map(|inc| {
            let src = stored.get(&inc.mapped.external_id)?;
            (src.record_hash != inc.hash).then_some(src.contact_id)
        })
        .collect();
    let mut contacts: HashMap<Uuid, contact::Model> = HashMap::new();
    for chunk in to_load.chunks(1_000) {
        contacts.extend(crate::tenancy::find_by_ids::<Contact>(txn, tenant, chunk).await?);
    }
    // What changed records mapped to last time; their former tags are looked up too, so
    // that tags a record no longer has can be unlinked.
    let previous: HashMap<&str, MappedState> = batch
        .iter()
        .filter_map(|inc| {
            let src = stored.get(&inc.mapped.external_id)?;
            (src.record_hash != inc.hash).then(|| {
                (
                    inc.mapped.external_id.as_str(),
                    MappedState::parse(&src.mapped),
                )
            })
        })
        .collect();
    let former_tags: HashSet<String> = previous
        .values()
        .flat_map(|old| old.tags.iter().flatten())
        .filter(|t| !parents.tags.contains_key(*t))
        .cloned()
        .collect();
    if !former_tags.is_empty() {
        let known = known_entities(txn, tenant, source, TAG, former_tags.into_iter()).await?;
        parents.tags.extend(known);
    }

    let mut new_contacts = Vec::new();
    let mut new_sources = Vec::new();
    let mut new_links = Vec::new();
    let mut removed_links: Vec<(Uuid, Uuid)> = Vec::new();
    let mut changed = Vec::new();
    let mut source_updates = Vec::new();
    let tag_ids = |tags: &Option<Vec<String>>| -> Vec<Uuid> {
        tags.iter()
            .flatten()
            .filter_map(|t| parents.tags.get(t).copied())
            .collect()
    };
    for inc in batch {
        let existing = stored.get(&inc.mapped.external_id);
        match existing {
            Some(src) if src.record_hash == inc.hash => summary.unchanged += 1,
            Some(src) => {
                let state = MappedState::of(&inc.mapped);
                let Some(current) = contacts.get(&src.contact_id) else {
                    continue;
                };
                let Some(old) = previous.get(inc.mapped.external_id.as_str()) else {
                    continue;
                };
                let delta: Map<String, Value> = state
                    .fields
                    .iter()
                    .filter(|(k, v)| old.fields.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut updated = current.clone();
                apply_fields(&mut updated, &delta, options.settings);
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
                    let before: HashSet<Uuid> = tag_ids(&old.tags).into_iter().collect();
                    let after: HashSet<Uuid> = tag_ids(&state.tags).into_iter().collect();
                    for t in after.difference(&before) {
                        new_links.push(link(tenant, current.id, *t, now));
                    }
                    for t in before.difference(&after) {
                        removed_links.push((current.id, *t));
                    }
                    tags_changed = before != after;
                }
                if updated != *current {
                    updated.updated_at = next_updated_at(current.updated_at);
                    changed.push((current.clone(), updated));
                    summary.updated += 1;
                } else if tags_changed {
                    summary.updated += 1;
                } else {
                    summary.unchanged += 1;
                }
                let mut row = src.clone();
                row.record = inc.record.clone();
                row.mapped = inc.state_json.clone();
                row.record_hash = inc.hash.clone();
                row.fetched_at = now;
                source_updates.push(row);
            }
            None => {
                let mut c = inc.draft.clone();
                c.id = Uuid::now_v7();
                c.tenant_id = tenant.0;
                c.created_at = inc.mapped.created_at.unwrap_or(now);
                c.updated_at = inc
                    .mapped
                    .updated_at
                    .unwrap_or(c.created_at)
                    .max(c.created_at);
                let vendor = &inc.mapped;
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
                        new_links.push(link(tenant, c.id, t, now));
                    }
                }
                new_sources.push(contact_source::Model {
                    id: Uuid::now_v7(),
                    tenant_id: tenant.0,
                    contact_id: c.id,
                    source: source.to_string(),
                    format: options.format.name().to_string(),
                    external_id: inc.mapped.external_id.clone(),
                    record: inc.record.clone(),
                    mapped: inc.state_json.clone(),
                    record_hash: inc.hash.clone(),
                    fetched_at: now,
                });
                new_contacts.push(c);
                summary.created += 1;
            }
        }
    }

    // Their keys and assignees are taken before the contacts go to the INSERT.
    let keys = key_rows(&new_contacts);
    let assignees: Vec<contact_assignee::Model> = new_contacts
        .iter()
        .flat_map(|c| {
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
        })
        .collect();
    insert_all::<Contact>(txn, new_contacts, ROWS_PER_INSERT).await?;
    insert_all::<ContactAssignee>(txn, assignees, ROWS_PER_INSERT).await?;
    insert_key_rows(txn, keys).await?;
    insert_all::<ContactSource>(txn, new_sources, ROWS_PER_INSERT).await?;
    for (current, updated) in changed {
        let keys_changed = keys_differ(&current, &updated);
        let updated = write_contact(txn, &current, updated).await?;
        if keys_changed {
            replace_keys(txn, &[&updated]).await?;
        }
        if current.assignees != updated.assignees {
            write_assignees(txn, &updated, true).await?;
        }
    }
    for (contact_id, tag_id) in removed_links {
        ContactTag::delete_many()
            .filter(contact_tag::Column::TenantId.eq(tenant.0))
            .filter(contact_tag::Column::ContactId.eq(contact_id))
            .filter(contact_tag::Column::TagId.eq(tag_id))
            .exec(txn)
            .await?;
    }
    if !new_links.is_empty() {
        for chunk in new_links.chunks(ROWS_PER_INSERT) {
            ContactTag::insert_many(
                chunk
                    .iter()
                    .cloned()
                    .map(IntoActiveModel::into_active_model),
            )
            .on_conflict_do_nothing()
            .exec(txn)
            .await?;
        }
    }
    for row in source_updates {
        ContactSource::update(row.into_active_model().reset_all())
            .exec(txn)
            .await?;
    }
    Ok(summary)
}

/// The stored records of `source` with these vendor ids, by the unique index
/// (tenant_id, source, external_id).
///
/// On PostgreSQL the ids arrive as one JSON array, each looked up by itself (a LATERAL
/// subquery with `LIMIT 1` cannot be flattened into a join): with a long `IN` list, or a
/// join, the planner trusts statistics that a bulk import has just made stale and reads every
/// record of the source once per batch, which made a 100k import quadratic. One index probe
/// per id does not depend on statistics.
async fn stored_records(
    txn: &DatabaseTransaction,
    tenant: TenantId,
    source: &str,
    external_ids: &[&str],
) -> Result<Vec<contact_source::Model>> {
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres {
        let sql = "SELECT s.* FROM json_array_elements_text($3::json) AS wanted(external_id) \
                   CROSS JOIN LATERAL (SELECT * FROM contact_sources c WHERE c.tenant_id = $1 \
                   AND c.source = $2 AND c.external_id = wanted.external_id LIMIT 1) s";
        let statement = Statement::from_sql_and_values(
            backend,
            sql,
            [
                tenant.0.into(),
                source.into(),
                serde_json::to_string(external_ids)
                    .unwrap_or_default()
                    .into(),
            ],
        );
        return Ok(ContactSource::find()
            .from_raw_sql(statement)
            .all(txn)
            .await?);
    }
    Ok(ContactSource::find()
        .filter(contact_source::Column::TenantId.eq(tenant.0))
        .filter(contact_source::Column::Source.eq(source))
        .filter(contact_source::Column::ExternalId.is_in(external_ids.iter().copied()))
        .all(txn)
        .await?)
}

fn link(tenant: TenantId, contact: Uuid, tag: Uuid, now: i64) -> contact_tag::Model {
    contact_tag::Model {
        tenant_id: tenant.0,
        contact_id: contact,
        tag_id: tag,
        created_at: now,
    }
}
