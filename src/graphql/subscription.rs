//! `Subscription.contactChanged`: the change feed of the caller's tenant over WebSocket
//! (`graphql-transport-ws`, see `http::websocket`), filtered like `contacts(filter)`.
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_graphql::{Context, Enum, ErrorExtensions, ID, Object, Subscription};
use entity::contact::Columns;
use futures::Stream;
use futures::future::Either;
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use uuid::Uuid;

use super::contact::columns_of_node;
use super::filter::{ContactFilterInput, filter as domain_filter};
use super::{Contact, Loaders};
use crate::auth::Principal;
use crate::code::Code;
use crate::contacts::{self, ContactFilter};
use crate::events::feed::{ChangeEvent, Feed};
use crate::events::kind;
use crate::tenancy::TenantId;
use crate::time::Timestamp;

/// The root of subscriptions.
#[derive(Default)]
pub struct SubscriptionRoot;

/// Events taken from the feed at a time (filtered with one statement).
const BATCH: usize = 100;

#[Subscription]
impl SubscriptionRoot {
    /// Every committed change of a contact of your tenant from now on, in order: created,
    /// updated (with the changed fields), deleted, archived, restored, merged away, and
    /// write-back outcomes. With `filter`, only changes of contacts that match it after the
    /// change (as `contacts(filter)` would list them); `DELETED` and `MERGED` match every
    /// filter (the contact is gone). A subscriber that falls more than the server's buffer
    /// behind gets one `LAGGED` change (then re-query) and continues. Needs
    /// `contacts:read`; `TOO_MANY_SUBSCRIPTIONS` past the limits per key and per connection.
    async fn contact_changed(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Which contacts; all of them when omitted.")] filter: Option<
            ContactFilterInput,
        >,
    ) -> async_graphql::Result<impl Stream<Item = ContactChange> + use<>> {
        if let Some(Lagged(skipped)) = ctx.data_opt::<Lagged>() {
            // One subscriber of a shared operation fell behind (`subscription_hub`).
            let lagged = ContactChange::lagged(*skipped);
            return Ok(Either::Left(futures::stream::once(async move { lagged })));
        }
        let principal = ctx.data::<Principal>()?;
        let db = ctx.data::<DatabaseConnection>()?.clone();
        let feed = ctx.data::<Arc<Feed>>()?;
        let filter: Option<ContactFilter> = filter.map(|f| domain_filter(Some(f)));
        if let Some(filter) = &filter {
            // A filter that `contacts` would refuse is refused here, before anything is sent.
            contacts::filtered(&db, principal.tenant, filter)?;
        }
        // The feed reads each change's contact with the columns its subscribers select.
        let columns = ctx
            .field()
            .selection_set()
            .filter(|field| field.name() == "contact")
            .fold(Columns::NONE, |columns, field| {
                columns.union(columns_of_node(field))
            });
        let receiver = feed.subscribe(columns).await?;
        let watch = Watch {
            receiver,
            seen: feed.position(principal.tenant.0).await,
            behind: false,
            tenant: principal.tenant,
            filter,
            db,
            ready: VecDeque::new(),
            progress: ctx.data_opt::<Arc<Progress>>().cloned(),
        };
        Ok(Either::Right(futures::stream::unfold(watch, Watch::next)))
    }
}

/// One subscriber's place in the feed.
struct Watch {
    receiver: broadcast::Receiver<Arc<ChangeEvent>>,
    /// The position of the last event of its tenant received ([`ChangeEvent::position`]).
    seen: u64,
    /// Fell behind the feed: the next event of its tenant tells how many were missed.
    behind: bool,
    tenant: TenantId,
    filter: Option<ContactFilter>,
    db: DatabaseConnection,
    ready: VecDeque<ContactChange>,
    progress: Option<Arc<Progress>>,
}

/// Request data counting the changes `contactChanged` has yielded, a `LAGGED` one counting
/// its `skipped`. A shared operation uses it to tell a subscriber that falls behind how many
/// changes it missed.
#[derive(Default)]
pub struct Progress(pub AtomicU64);

/// Request data that makes `contactChanged` yield one `LAGGED` change with this `skipped`
/// and end: how a shared operation renders that change for the one subscriber that fell
/// behind.
pub struct Lagged(pub u64);

impl Watch {
    async fn next(mut self) -> Option<(ContactChange, Watch)> {
        let change = self.pull().await?;
        if let Some(progress) = &self.progress {
            let changes = match change.kind {
                ContactChangeKind::Lagged => change.skipped,
                _ => 1,
            };
            progress.0.fetch_add(changes, Ordering::SeqCst);
        }
        Some((change, self))
    }

    async fn pull(&mut self) -> Option<ContactChange> {
        loop {
            if let Some(change) = self.ready.pop_front() {
                return Some(change);
            }
            let mut batch = Vec::new();
            match self.receiver.recv().await {
                Ok(event) => batch.push(event),
                Err(RecvError::Lagged(_)) => {
                    self.behind = true;
                    continue;
                }
                Err(RecvError::Closed) => return None,
            }
            while batch.len() < BATCH {
                match self.receiver.try_recv() {
                    Ok(event) => batch.push(event),
                    Err(TryRecvError::Lagged(_)) => {
                        self.behind = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            // Another tenant's events are never looked at further.
            batch.retain(|e| e.tenant == self.tenant.0);
            // Missed events of its own tenant are told before the next one (none missed:
            // nothing to tell).
            if let Some(first) = batch.first() {
                if self.behind {
                    let missed = first.position.saturating_sub(self.seen + 1);
                    if missed > 0 {
                        self.ready.push_back(ContactChange::lagged(missed));
                    }
                    self.behind = false;
                }
                self.seen = batch.last().map_or(self.seen, |e| e.position);
            }
            if let Some(filter) = &self.filter {
                let gone = |e: &ChangeEvent| e.kind == kind::DELETED || e.kind == kind::MERGED;
                let ids: Vec<Uuid> = batch
                    .iter()
                    .filter(|e| !gone(e))
                    .map(|e| e.contact_id)
                    .collect();
                let matching = if ids.is_empty() {
                    Default::default()
                } else {
                    match contacts::matching(&self.db, self.tenant, filter, &ids).await {
                        Ok(matching) => matching,
                        Err(error) => {
                            tracing::warn!(?error, "filtering the change feed failed");
                            Default::default()
                        }
                    }
                };
                batch.retain(|e| gone(e) || matching.contains(&e.contact_id));
            }
            self.ready.extend(batch.into_iter().map(ContactChange::of));
        }
    }
}

/// What happened to a contact.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactChangeKind {
    /// Created (by a mutation, an import or a sync).
    Created,
    /// Changed; `changedFields` names the fields (`tags` for its tag links).
    Updated,
    /// Deleted.
    Deleted,
    /// Archived: every record of it at its sources is gone.
    Archived,
    /// Back from the archive.
    Restored,
    /// Merged into `survivorId`, and deleted.
    Merged,
    /// A change of it was delivered to a source.
    WriteBackDelivered,
    /// A change of it failed at a source.
    WriteBackFailed,
    /// A change of it conflicted with a change at a source.
    WriteConflict,
    /// This subscriber fell behind and `skipped` changes were dropped: query again.
    Lagged,
}

impl ContactChangeKind {
    /// The stored kind ([`kind`]) as this enum.
    pub fn of(kind: &str) -> Self {
        match kind {
            kind::CREATED => Self::Created,
            kind::DELETED => Self::Deleted,
            kind::ARCHIVED => Self::Archived,
            kind::RESTORED => Self::Restored,
            kind::MERGED => Self::Merged,
            kind::WRITE_BACK_DELIVERED => Self::WriteBackDelivered,
            kind::WRITE_BACK_FAILED => Self::WriteBackFailed,
            kind::WRITE_CONFLICT => Self::WriteConflict,
            _ => Self::Updated,
        }
    }

    /// The stored kind ([`kind`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => kind::CREATED,
            Self::Updated => kind::UPDATED,
            Self::Deleted => kind::DELETED,
            Self::Archived => kind::ARCHIVED,
            Self::Restored => kind::RESTORED,
            Self::Merged => kind::MERGED,
            Self::WriteBackDelivered => kind::WRITE_BACK_DELIVERED,
            Self::WriteBackFailed => kind::WRITE_BACK_FAILED,
            Self::WriteConflict => kind::WRITE_CONFLICT,
            Self::Lagged => "LAGGED",
        }
    }
}

/// One change of a contact, as `contactChanged` delivers it.
pub struct ContactChange {
    kind: ContactChangeKind,
    event: Option<Arc<ChangeEvent>>,
    skipped: u64,
}

impl ContactChange {
    fn of(event: Arc<ChangeEvent>) -> Self {
        Self {
            kind: ContactChangeKind::of(&event.kind),
            event: Some(event),
            skipped: 0,
        }
    }

    fn lagged(skipped: u64) -> Self {
        Self {
            kind: ContactChangeKind::Lagged,
            event: None,
            skipped,
        }
    }
}

#[Object]
impl ContactChange {
    /// What happened.
    async fn kind(&self) -> ContactChangeKind {
        self.kind
    }

    /// The contact's id (null for `LAGGED`).
    async fn contact_id(&self) -> Option<ID> {
        self.event.as_ref().map(|e| ID(e.contact_id.to_string()))
    }

    /// For `UPDATED`: the changed fields, as named in `ContactPatch` (`address.city`), or
    /// `tags`; empty otherwise.
    async fn changed_fields(&self) -> Vec<String> {
        self.event
            .as_ref()
            .map(|e| e.changed_fields.clone())
            .unwrap_or_default()
    }

    /// For `MERGED`: the contact it was merged into.
    async fn survivor_id(&self) -> Option<ID> {
        self.event
            .as_ref()
            .and_then(|e| e.survivor)
            .map(|id| ID(id.to_string()))
    }

    /// When the change was made (null for `LAGGED`).
    async fn at(&self) -> Option<Timestamp> {
        self.event.as_ref().map(|e| Timestamp::from_millis(e.at))
    }

    /// The contact as it was read just after the change; null once deleted, and for
    /// `LAGGED`.
    async fn contact(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Contact>> {
        let Some(event) = &self.event else {
            return Ok(None);
        };
        let Some(contact) = &event.contact else {
            return Ok(None);
        };
        if event.columns.covers(columns_of_node(ctx.field())) {
            return Ok(Some(Contact::shared(contact.clone())));
        }
        // The feed reads what every subscription asks for when it subscribes, so this is a
        // safeguard: the contact is read whole, as it is now.
        let loaders = ctx.data::<Arc<Loaders>>()?;
        Ok(loaders
            .contacts
            .load_one(event.contact_id)
            .await?
            .map(|model| Contact::shared(Arc::new(model))))
    }

    /// For `LAGGED`: how many changes were dropped; 0 otherwise.
    async fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// Subscriptions open per API key (in this process), against their limits.
pub struct SubscriptionSlots {
    per_key: usize,
    per_connection: usize,
    open: Mutex<HashMap<Uuid, usize>>,
}

/// Subscriptions open on one WebSocket connection.
#[derive(Default)]
pub struct ConnectionSubscriptions(AtomicUsize);

/// One open subscription, counted until dropped.
pub struct Slot {
    slots: Arc<SubscriptionSlots>,
    key: Uuid,
    connection: Option<Arc<ConnectionSubscriptions>>,
}

impl SubscriptionSlots {
    /// At most `per_key` subscriptions per API key and `per_connection` per connection.
    pub fn new(per_key: usize, per_connection: usize) -> Arc<Self> {
        Arc::new(Self {
            per_key,
            per_connection,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for one more subscription of `key` (on `connection`).
    ///
    /// # Errors
    /// `TOO_MANY_SUBSCRIPTIONS` past either limit.
    pub fn take(
        self: &Arc<Self>,
        key: Uuid,
        connection: Option<Arc<ConnectionSubscriptions>>,
    ) -> async_graphql::Result<Slot> {
        let too_many = |what: &str, limit: usize| {
            async_graphql::Error::new(format!(
                "at most {limit} subscriptions may be open at once per {what}"
            ))
            .extend_with(|_, e| e.set("code", Code::TooManySubscriptions.as_str()))
        };
        if let Some(connection) = &connection {
            let open = connection.0.fetch_add(1, Ordering::SeqCst);
            if open >= self.per_connection {
                connection.0.fetch_sub(1, Ordering::SeqCst);
                return Err(too_many("connection", self.per_connection));
            }
        }
        let mut open = self
            .open
            .lock()
            .map_err(|_| "subscription slots poisoned")?;
        let count = open.entry(key).or_default();
        if *count >= self.per_key {
            if let Some(connection) = &connection {
                connection.0.fetch_sub(1, Ordering::SeqCst);
            }
            return Err(too_many("API key", self.per_key));
        }
        *count += 1;
        Ok(Slot {
            slots: self.clone(),
            key,
            connection,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(connection) = &self.connection {
            connection.0.fetch_sub(1, Ordering::SeqCst);
        }
        if let Ok(mut open) = self.slots.open.lock()
            && let Some(count) = open.get_mut(&self.key)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}
