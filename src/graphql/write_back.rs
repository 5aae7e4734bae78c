//! Write-back in GraphQL: a source's write settings (`Source.write`), the changes queued for
//! the vendors (`Contact.writeBacks`, the `writeBacks` connection) and `retryWriteBack`.
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};
use entity::{write_back, write_conflict};

use super::RequestContext;
use super::connection::{Connection, TotalCount};
use super::ids::parse_id;
use crate::paging::PageArgs;
use crate::time::{Timestamp, now_millis};
use crate::write_back::config::{self, WriteBack};
use crate::write_back::conflicts::{self, ConflictFilter};
use crate::write_back::outbox;
use crate::write_back::outcomes;
use crate::write_back::queue::{self, QueueFilter};

/// How a source is written to.
#[derive(SimpleObject, Clone)]
pub struct SourceWrite {
    /// `PATCH` or `POST`.
    pub method: String,
    /// The record's URL; `{id}` is the vendor id, `{accountId}` / `{businessId}` the
    /// record's account and business at the vendor.
    pub url: String,
    /// `none`, `if-match` or `if-unmodified-since`.
    pub precondition: String,
    /// `manual`, `source-wins` or `gateway-wins`.
    pub conflict_policy: String,
    /// Whether `deleteContact` deletes the record at the vendor.
    pub delete: bool,
}

impl From<&WriteBack> for SourceWrite {
    fn from(write: &WriteBack) -> Self {
        SourceWrite {
            method: config::method_name(write.method).to_string(),
            url: write.url.clone(),
            precondition: config::precondition_name(write.precondition).to_string(),
            conflict_policy: config::policy_name(write.conflict_policy).to_string(),
            delete: write.delete,
        }
    }
}

/// Where a queued change stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum WriteBackState {
    /// Waiting to be sent (first, or again after a failure).
    Pending,
    /// Being sent.
    Delivering,
    /// The vendor took it.
    Delivered,
    /// The vendor refused it for good, or every attempt failed: see `lastError`;
    /// `retryWriteBack` queues it again.
    Failed,
    /// The vendor's record changed since the last sync (412/409): nothing was overwritten.
    Conflict,
}

impl WriteBackState {
    fn as_str(self) -> &'static str {
        match self {
            WriteBackState::Pending => outbox::state::PENDING,
            WriteBackState::Delivering => outbox::state::DELIVERING,
            WriteBackState::Delivered => outbox::state::DELIVERED,
            WriteBackState::Failed => outbox::state::FAILED,
            WriteBackState::Conflict => outbox::state::CONFLICT,
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            outbox::state::DELIVERING => WriteBackState::Delivering,
            outbox::state::DELIVERED => WriteBackState::Delivered,
            outbox::state::FAILED => WriteBackState::Failed,
            outbox::state::CONFLICT => WriteBackState::Conflict,
            _ => WriteBackState::Pending,
        }
    }
}

/// A contact change queued for one of the vendor systems the contact came from.
#[derive(Clone)]
pub struct WriteBackChange(pub write_back::Model);

/// Every field of a page's WriteBackChange goes through its resolver.
impl super::plain_fields::DirectFields for WriteBackChange {}

/// A contact change queued for one of the vendor systems the contact came from.
#[Object(name = "WriteBack")]
impl WriteBackChange {
    /// The change's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The contact's id.
    async fn contact_id(&self) -> ID {
        ID(self.0.contact_id.to_string())
    }
    /// The source's name.
    async fn source(&self) -> &str {
        &self.0.source
    }
    /// The record's id at the vendor.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }
    /// `UPDATE` (the changed fields are sent) or `DELETE`.
    async fn operation(&self) -> &str {
        &self.0.operation
    }
    /// What is sent: the vendor's field names and the latest values (several changes made
    /// before it was sent are one request).
    async fn body(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.body).unwrap_or_default())
    }
    /// Where it stands.
    async fn state(&self) -> WriteBackState {
        WriteBackState::parse(&self.0.state)
    }
    /// Requests sent so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    /// Why the last attempt failed (the vendor's message, when it gave one).
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// When the next attempt is due (`PENDING` only).
    async fn next_attempt_at(&self) -> Option<Timestamp> {
        (self.0.state == outbox::state::PENDING)
            .then(|| Timestamp::from_millis(self.0.next_attempt_at))
    }
    /// When the vendor took it.
    async fn delivered_at(&self) -> Option<Timestamp> {
        self.0.delivered_at.map(Timestamp::from_millis)
    }
    /// When it was queued.
    async fn created_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.created_at)
    }
}

/// One field of a change the vendor refused because its record had changed since the last
/// sync: our value, the vendor's (read by the sync that followed), and how it was resolved.
#[derive(Clone)]
pub struct WriteConflictNode(pub write_conflict::Model);

/// Every field of a page's WriteConflictNode goes through its resolver.
impl super::plain_fields::DirectFields for WriteConflictNode {}

/// One field of a change the vendor refused because its record had changed since the last
/// sync.
#[Object(name = "WriteConflict")]
impl WriteConflictNode {
    /// The conflict's id (a UUID).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The refused change (`WriteBack.id`).
    async fn write_back_id(&self) -> ID {
        ID(self.0.write_back_id.to_string())
    }
    /// The contact's id.
    async fn contact_id(&self) -> ID {
        ID(self.0.contact_id.to_string())
    }
    /// The source's name.
    async fn source(&self) -> &str {
        &self.0.source
    }
    /// The contact field (`lastName`, `address.city`; `name` for a full name).
    async fn field(&self) -> &str {
        &self.0.field
    }
    /// The vendor's name of the field (e.g. `surname`).
    async fn vendor_field(&self) -> &str {
        &self.0.vendor_field
    }
    /// The value the gateway sent.
    async fn ours(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.ours).unwrap_or_default())
    }
    /// The vendor's value when the conflict was found.
    async fn theirs(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.theirs).unwrap_or_default())
    }
    /// When the vendor's value was read.
    async fn detected_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.detected_at)
    }
    /// `OURS` or `THEIRS`; null while open.
    async fn resolution(&self) -> Option<Keep> {
        match self.0.resolution.as_deref() {
            Some(conflicts::resolution::OURS) => Some(Keep::Ours),
            Some(conflicts::resolution::THEIRS) => Some(Keep::Theirs),
            _ => None,
        }
    }
    /// When it was resolved (by a person, or at once by the source's policy).
    async fn resolved_at(&self) -> Option<Timestamp> {
        self.0.resolved_at.map(Timestamp::from_millis)
    }
}

/// Which side of a write conflict to keep.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The gateway's value: sent again against the vendor's new version.
    Ours,
    /// The vendor's value: the contact takes it.
    Theirs,
}

/// Which write conflicts to list.
#[derive(InputObject, Default)]
pub struct WriteConflictFilter {
    /// Resolved ones (`true`) or open ones (`false`).
    pub resolved: Option<bool>,
    /// Only conflicts at this source.
    pub source: Option<String>,
    /// Only conflicts of this contact.
    pub contact_id: Option<ID>,
}

/// Which queued changes to list.
#[derive(InputObject, Default)]
pub struct WriteBackFilter {
    /// Only changes in this state.
    pub state: Option<WriteBackState>,
    /// Only changes to this source.
    pub source: Option<String>,
    /// Only changes of this contact.
    pub contact_id: Option<ID>,
}

/// Reading the write-back queue (scope `contacts:read`).
#[derive(Default)]
pub struct WriteBackQueries;

/// Reading the write-back queue.
#[Object]
impl WriteBackQueries {
    /// Your tenant's contact changes queued for the vendor systems, newest first. Example:
    /// `writeBacks(filter: { state: FAILED }) { nodes { source state lastError } }`.
    async fn write_backs(
        &self,
        ctx: &Context<'_>,
        filter: Option<WriteBackFilter>,
        #[graphql(validator(minimum = 0, maximum = 100))] first: Option<i32>,
        after: Option<String>,
        #[graphql(validator(minimum = 0, maximum = 100))] last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<WriteBackChange>> {
        let request = RequestContext::of(ctx)?;
        let args = PageArgs::from_relay(first, after, last, before)?;
        let filter = filter.unwrap_or_default();
        let filter = QueueFilter {
            state: filter.state.map(|s| s.as_str().to_string()),
            source: filter.source,
            contact: match &filter.contact_id {
                Some(id) => Some(parse_id("filter.contactId", id)?),
                None => None,
            },
        };
        let page = queue::page(request.db, request.tenant, &filter, &args).await?;
        let db = request.db.clone();
        let tenant = request.tenant;
        let filter = Arc::new(filter);
        let total = TotalCount::Deferred(Arc::new(move || {
            let (db, filter) = (db.clone(), filter.clone());
            Box::pin(async move { queue::count(&db, tenant, &filter).await })
        }));
        Ok(Connection::new(
            page,
            &queue::ordering(),
            total,
            WriteBackChange,
        ))
    }

    /// Your tenant's write conflicts, newest first: changes the vendor refused because its
    /// record had changed. Example: `writeConflicts(filter: { resolved: false }) { nodes {
    /// id source field ours theirs } }`.
    async fn write_conflicts(
        &self,
        ctx: &Context<'_>,
        filter: Option<WriteConflictFilter>,
        #[graphql(validator(minimum = 0, maximum = 100))] first: Option<i32>,
        after: Option<String>,
        #[graphql(validator(minimum = 0, maximum = 100))] last: Option<i32>,
        before: Option<String>,
    ) -> async_graphql::Result<Connection<WriteConflictNode>> {
        let request = RequestContext::of(ctx)?;
        let args = PageArgs::from_relay(first, after, last, before)?;
        let filter = filter.unwrap_or_default();
        let filter = ConflictFilter {
            resolved: filter.resolved,
            source: filter.source,
            contact: match &filter.contact_id {
                Some(id) => Some(parse_id("filter.contactId", id)?),
                None => None,
            },
        };
        let page = conflicts::page(request.db, request.tenant, &filter, &args).await?;
        let db = request.db.clone();
        let tenant = request.tenant;
        let filter = Arc::new(filter);
        let total = TotalCount::Deferred(Arc::new(move || {
            let (db, filter) = (db.clone(), filter.clone());
            Box::pin(async move { conflicts::count(&db, tenant, &filter).await })
        }));
        Ok(Connection::new(
            page,
            &conflicts::ordering(),
            total,
            WriteConflictNode,
        ))
    }
}

/// Input of `retryWriteBack`.
#[derive(InputObject)]
pub struct RetryWriteBackInput {
    /// The change (`FAILED` or `CONFLICT`).
    pub id: ID,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of `retryWriteBack`.
#[derive(SimpleObject)]
pub struct WriteBackPayload {
    /// The change, queued again.
    pub write_back: WriteBackChange,
    /// The `clientMutationId` of the input.
    pub client_mutation_id: Option<String>,
}

/// Input of `resolveWriteConflict`.
#[derive(InputObject)]
pub struct ResolveWriteConflictInput {
    /// The open conflict.
    pub id: ID,
    /// `OURS` sends the gateway's value again (against the vendor's new version) once every
    /// conflict of its change is resolved; `THEIRS` gives the contact the vendor's value.
    pub keep: Keep,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of `resolveWriteConflict`.
#[derive(SimpleObject)]
pub struct WriteConflictPayload {
    /// The conflict, resolved.
    pub write_conflict: WriteConflictNode,
    /// The `clientMutationId` of the input.
    pub client_mutation_id: Option<String>,
}

/// Write-back mutations (scope `contacts:write`).
#[derive(Default)]
pub struct WriteBackMutations;

/// Write-back mutations.
#[Object]
impl WriteBackMutations {
    /// Queues a `FAILED` or `CONFLICT` change again: due at once, its attempts counted
    /// afresh. `NOT_FOUND` for an unknown id; `VALIDATION_FAILED` for a change in another
    /// state.
    async fn retry_write_back(
        &self,
        ctx: &Context<'_>,
        input: RetryWriteBackInput,
    ) -> async_graphql::Result<WriteBackPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("input.id", &input.id)?;
        let change = outcomes::retry(request.db, request.tenant, id, now_millis())
            .await
            .map_err(|err| err.under("input"))?;
        Ok(WriteBackPayload {
            write_back: WriteBackChange(change),
            client_mutation_id: input.client_mutation_id,
        })
    }

    /// Resolves an open write conflict. `NOT_FOUND` for an unknown id; `VALIDATION_FAILED`
    /// for one resolved already.
    async fn resolve_write_conflict(
        &self,
        ctx: &Context<'_>,
        input: ResolveWriteConflictInput,
    ) -> async_graphql::Result<WriteConflictPayload> {
        let request = RequestContext::of(ctx)?;
        let id = parse_id("input.id", &input.id)?;
        let keep = match input.keep {
            Keep::Ours => conflicts::resolution::OURS,
            Keep::Theirs => conflicts::resolution::THEIRS,
        };
        let settings = ctx
            .data_opt::<crate::contacts::WriteSettings>()
            .copied()
            .unwrap_or_default();
        let conflict =
            conflicts::resolve(request.db, request.tenant, id, keep, settings, now_millis())
                .await
                .map_err(|err| err.under("input"))?;
        Ok(WriteConflictPayload {
            write_conflict: WriteConflictNode(conflict),
            client_mutation_id: input.client_mutation_id,
        })
    }
}
