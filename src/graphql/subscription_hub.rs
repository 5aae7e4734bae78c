//! One execution per distinct subscription, shared by all of its subscribers.
//!
//! Subscribers of one tenant, with the same scopes, that send the same operation (query,
//! operation name and variables) would get the same messages. So the operation runs once,
//! in a hub. Each change is executed and serialised once, and every subscriber gets the
//! same bytes, however many subscribers there are. A hub starts with its first subscriber
//! and stops when its last one leaves.
//!
//! A hub keeps at most about `SUBSCRIPTION_BUFFER` messages, in batches (see [`Sent`]). A
//! subscriber that falls further behind its hub than the batches kept gets one
//! `LAGGED` change and then continues. That change is rendered for this subscriber alone,
//! because `skipped` is its own count.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Pos, Request, Response, ServerError, Variables};
use std::panic::AssertUnwindSafe;

use futures::{FutureExt, Stream, StreamExt};
use prometheus_client::metrics::gauge::Gauge;
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use uuid::Uuid;

use super::field_order::Shape;
use super::pipeline::{self, Parsed, Prepared};
use super::subscription::{ConnectionSubscriptions, Lagged, Progress, Slot, SubscriptionSlots};
use super::{AppSchema, Loaders};
use crate::auth::{Principal, Scope};
use crate::config::Limits;

/// A `subscribe` message's operation (`graphql-transport-ws`'s `SubscribePayload`).
#[derive(Clone, Debug)]
pub struct Operation {
    /// The GraphQL document.
    pub query: String,
    /// Which operation of the document to run.
    pub operation_name: Option<String>,
    /// The variables, as sent (`null` when absent).
    pub variables: serde_json::Value,
}

/// What a subscriber is sent, already serialised to JSON.
#[derive(Debug)]
pub enum Outgoing {
    /// A `next` message's payload: an execution result (`{"data":…}`).
    Next(Box<str>),
    /// An `error` message's payload: the operation failed before it ran (a list of errors).
    /// Nothing follows.
    Error(Box<str>),
    /// The subscription ended. Nothing follows.
    Complete,
}

impl Outgoing {
    /// A response with no data and errors failed before it ran (`error`); any other one is
    /// a result (`next`).
    fn of(response: Response) -> Self {
        if response.data == async_graphql::Value::Null && !response.errors.is_empty() {
            return Self::errors(&response.errors);
        }
        match serde_json::to_string(&response) {
            Ok(json) => Self::Next(json.into()),
            Err(error) => Self::errors(&[ServerError::new(error.to_string(), None)]),
        }
    }

    /// An `error` payload of `errors`.
    pub fn errors(errors: &[ServerError]) -> Self {
        Self::Error(
            serde_json::to_string(errors)
                .unwrap_or_else(|_| r#"[{"message":"internal error"}]"#.to_string())
                .into(),
        )
    }
}

/// Messages of a hub that were ready together (at most [`HUB_BATCH`]; an `Error` or
/// `Complete` is last), with the changes they stand for: those after `before` through
/// `through`, counted by [`Progress`] (a `next` of a change is one; a `LAGGED` one is as
/// many as it skipped). One broadcast per batch: a burst of changes wakes each subscriber
/// once and costs each connection one write, not one a change.
#[derive(Clone)]
struct Sent {
    messages: Arc<[Outgoing]>,
    before: u64,
    through: u64,
}

/// Most messages a hub sends as one [`Sent`] (fewer when `SUBSCRIPTION_BUFFER` is smaller).
const HUB_BATCH: usize = 16;

/// A hub's batch size and the number of batches its channel keeps for `buffer` messages:
/// at most `buffer` messages (rounded up to a whole batch). A subscriber that reads nothing
/// falls behind after that many batches: `buffer` changes in a burst, fewer when changes
/// come one at a time.
fn hub_channel(buffer: usize) -> (usize, usize) {
    let batch = HUB_BATCH.min(buffer).max(1);
    (batch, buffer.div_ceil(batch).max(1))
}

/// What makes two subscriptions the same: the tenant, the scopes and the operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct HubKey {
    tenant: Uuid,
    scopes: Vec<Scope>,
    query: String,
    operation_name: Option<String>,
    variables: String,
}

/// The hubs running in this process.
pub struct SubscriptionHubs {
    schema: AppSchema,
    db: DatabaseConnection,
    limits: Limits,
    slots: Arc<SubscriptionSlots>,
    buffer: usize,
    hubs: Mutex<HashMap<HubKey, Weak<Hub>>>,
    subscriptions: Gauge,
    executions: Gauge,
}

/// One running operation and its subscribers' channel.
struct Hub {
    hubs: Weak<SubscriptionHubs>,
    key: HubKey,
    request: RequestParts,
    sender: broadcast::Sender<Sent>,
    /// The changes counted through the last message sent.
    through: Arc<AtomicU64>,
    task: tokio::task::AbortHandle,
    executions: Gauge,
}

/// What a hub's operation runs with (the first subscriber's principal: every subscriber
/// of a hub has its tenant and scopes).
#[derive(Clone)]
struct RequestParts {
    schema: AppSchema,
    db: DatabaseConnection,
    principal: Principal,
    operation: Operation,
    variables: Variables,
    /// The operation's document, checked once by the first subscriber's `subscribe`.
    document: ExecutableDocument,
    shape: Arc<Shape>,
    limits: Limits,
}

impl RequestParts {
    fn request(&self) -> Request {
        let mut request = Request::new(self.operation.query.clone())
            .variables(self.variables.clone())
            .data(self.principal.clone())
            .data(Arc::new(Loaders::uncached(&self.db, self.principal.tenant)));
        request.set_parsed_query(self.document.clone());
        match &self.operation.operation_name {
            Some(name) => request.operation_name(name.clone()),
            None => request,
        }
    }

    /// What is sent for `response`, finished ([`pipeline::finish`]).
    fn outgoing(&self, mut response: Response) -> Outgoing {
        pipeline::finish(&mut response, &self.shape, &self.limits);
        Outgoing::of(response)
    }
}

impl SubscriptionHubs {
    /// Hubs over `schema`; each buffers `buffer` messages for its slowest subscriber.
    pub fn new(
        schema: AppSchema,
        db: DatabaseConnection,
        limits: Limits,
        slots: Arc<SubscriptionSlots>,
        buffer: usize,
        metrics: &crate::metrics::Metrics,
    ) -> Arc<Self> {
        Arc::new(Self {
            schema,
            db,
            limits,
            slots,
            buffer: buffer.max(1),
            hubs: Mutex::new(HashMap::new()),
            subscriptions: metrics.subscriptions.clone(),
            executions: metrics.subscription_executions.clone(),
        })
    }

    /// Subscribes `principal` to `operation`, joining its hub or starting one. The stream
    /// yields the messages in batches of those ready together; it ends after an `Error` or
    /// `Complete` (its last message, always); dropping it unsubscribes.
    /// The [`Slot`] counts the subscription against its limits until it is dropped: the
    /// connection keeps it with the subscription's id, so that a `complete` frees it at once.
    ///
    /// # Errors
    /// An `error` payload: the operation is not a subscription of one root field
    /// ([`Parsed::check_subscription`]) or fails the checks of [`pipeline`];
    /// `TOO_MANY_SUBSCRIPTIONS` past the limits per key and per connection.
    pub fn subscribe(
        self: &Arc<Self>,
        principal: &Principal,
        connection: &Arc<ConnectionSubscriptions>,
        operation: Operation,
    ) -> Result<(impl Stream<Item = Batch> + Send + use<>, Slot), Outgoing> {
        let variables = Variables::from_json(operation.variables.clone());
        let name = operation.operation_name.as_deref();
        let prepared = Parsed::parse(&operation.query, &self.limits)
            .and_then(|parsed| {
                parsed.check_subscription(name)?;
                parsed.prepare(&variables, name, principal, &self.limits)
            })
            .map_err(|error| Outgoing::errors(&[error]))?;
        let slot = self
            .slots
            .take(principal.key_id, Some(connection.clone()))
            .map_err(|error| Outgoing::errors(&[error.into_server_error(Pos::default())]))?;
        let mut scopes = principal.scopes.clone();
        scopes.sort_by_key(|s| s.to_string());
        let key = HubKey {
            tenant: principal.tenant.0,
            scopes,
            query: operation.query.clone(),
            operation_name: operation.operation_name.clone(),
            variables: operation.variables.to_string(),
        };
        let (hub, receiver) = {
            let mut hubs = self
                .hubs
                .lock()
                .map_err(|_| Outgoing::errors(&[ServerError::new("hubs poisoned", None)]))?;
            match hubs.get(&key).and_then(Weak::upgrade) {
                Some(hub) => {
                    let receiver = hub.sender.subscribe();
                    (hub, receiver)
                }
                None => {
                    let hub = self.start(key.clone(), principal, operation, variables, prepared);
                    let receiver = hub.sender.subscribe();
                    hubs.insert(key, Arc::downgrade(&hub));
                    (hub, receiver)
                }
            }
        };
        let subscriber = Subscriber {
            seen: hub.through.load(Ordering::SeqCst),
            hub,
            receiver,
            behind: false,
            done: false,
            _open: Open::new(self.subscriptions.clone()),
        };
        Ok((futures::stream::unfold(subscriber, Subscriber::next), slot))
    }

    /// A new hub for `key`, its operation running (called with `hubs` locked).
    fn start(
        self: &Arc<Self>,
        key: HubKey,
        principal: &Principal,
        operation: Operation,
        variables: Variables,
        prepared: Prepared,
    ) -> Arc<Hub> {
        let (batch, batches) = hub_channel(self.buffer);
        let (sender, _) = broadcast::channel(batches);
        let through = Arc::new(AtomicU64::new(0));
        let request = RequestParts {
            schema: self.schema.clone(),
            db: self.db.clone(),
            principal: principal.clone(),
            operation,
            variables,
            document: prepared.document,
            shape: prepared.shape,
            limits: self.limits,
        };
        self.executions.inc();
        Arc::new_cyclic(|me: &Weak<Hub>| {
            let running = run(
                request.clone(),
                sender.clone(),
                through.clone(),
                Arc::downgrade(self),
                me.clone(),
                key.clone(),
                batch,
            );
            let (on_panic, hubs, me, failed_key) = (
                sender.clone(),
                Arc::downgrade(self),
                me.clone(),
                key.clone(),
            );
            let task = tokio::spawn(async move {
                // A panic in a resolver must not leave the hub's subscribers waiting for
                // ever: the hub leaves the registry and tells them (results of its batch
                // not sent yet are lost with it; they are told to subscribe again).
                if AssertUnwindSafe(running).catch_unwind().await.is_err() {
                    if let Some(hubs) = hubs.upgrade() {
                        hubs.forget(&failed_key, &me);
                    }
                    let _ = on_panic.send(Sent {
                        messages: Arc::new([Outgoing::errors(&[ServerError::new(
                            "the subscription failed; subscribe again",
                            None,
                        )])]),
                        before: 0,
                        through: 0,
                    });
                }
            });
            Hub {
                hubs: Arc::downgrade(self),
                key,
                request,
                sender,
                through,
                task: task.abort_handle(),
                executions: self.executions.clone(),
            }
        })
    }

    /// Removes `key`'s entry if it is `hub` or a hub that is gone.
    fn forget(&self, key: &HubKey, hub: &Weak<Hub>) {
        if let Ok(mut hubs) = self.hubs.lock()
            && hubs
                .get(key)
                .is_some_and(|entry| entry.ptr_eq(hub) || entry.strong_count() == 0)
        {
            hubs.remove(key);
        }
    }
}

/// Runs a hub's operation, sending each result to its subscribers. A hub that ends leaves
/// the registry before its last message, so no one joins it after that.
async fn run(
    parts: RequestParts,
    sender: broadcast::Sender<Sent>,
    sent_through: Arc<AtomicU64>,
    hubs: Weak<SubscriptionHubs>,
    me: Weak<Hub>,
    key: HubKey,
    batch: usize,
) {
    let progress = Arc::new(Progress::default());
    let mut results = parts
        .schema
        .execute_stream(parts.request().data(progress.clone()));
    let mut before = 0;
    loop {
        let mut messages = Vec::new();
        let mut next = Some(results.next().await);
        let mut through = before;
        // Then the results that are ready already (a burst of changes), up to `batch`.
        while let Some(result) = next.take() {
            let outgoing = match result {
                Some(response) => parts.outgoing(response),
                None => Outgoing::Complete,
            };
            // The stream is polled for its next change only after this one's response is
            // taken: the count is this message's.
            through = progress.0.load(Ordering::SeqCst);
            let last = !matches!(outgoing, Outgoing::Next(_));
            messages.push(outgoing);
            if last || messages.len() >= batch {
                break;
            }
            next = results.next().now_or_never();
        }
        let last = !matches!(messages.last(), Some(Outgoing::Next(_)));
        if last && let Some(hubs) = hubs.upgrade() {
            hubs.forget(&key, &me);
        }
        // No receiver right now is not an error: subscribers come and go.
        sent_through.store(through, Ordering::SeqCst);
        let _ = sender.send(Sent {
            messages: messages.into(),
            before,
            through,
        });
        before = through;
        if last {
            return;
        }
    }
}

impl Hub {
    /// A `LAGGED` change telling one subscriber it missed `skipped` messages, shaped by the
    /// operation's selection.
    async fn lagged(&self, skipped: u64) -> Outgoing {
        let request = self.request.request().data(Lagged(skipped));
        match self.request.schema.execute_stream(request).next().await {
            Some(response) => self.request.outgoing(response),
            None => Outgoing::Complete,
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.task.abort();
        self.executions.dec();
        if let Some(hubs) = self.hubs.upgrade() {
            // This hub's own entry no longer upgrades (it is being dropped).
            hubs.forget(&self.key, &Weak::new());
        }
    }
}

/// Most batches a subscriber takes from its hub at once (one item of its stream).
const BATCH: usize = 16;

/// Messages that were ready together for one subscriber, in order, as the hub shares them;
/// an `Error` or `Complete` is always last.
pub type Batch = Vec<Arc<[Outgoing]>>;

/// One subscriber of a hub.
struct Subscriber {
    hub: Arc<Hub>,
    receiver: broadcast::Receiver<Sent>,
    /// The changes counted through the last message received (or sent before it joined).
    seen: u64,
    /// Fell behind while taking a batch: the next batch starts with the `LAGGED` change.
    behind: bool,
    done: bool,
    _open: Open,
}

impl Subscriber {
    /// The hub is gone without a last message (it cannot be, short of a bug): complete.
    fn closed(mut self, mut batch: Batch) -> Option<(Batch, Self)> {
        self.done = true;
        batch.push(Arc::new([Outgoing::Complete]));
        Some((batch, self))
    }

    /// Takes `sent` into `batch`: whether more may follow it.
    fn take(&mut self, sent: Sent, batch: &mut Batch) -> bool {
        self.seen = sent.through;
        self.done = !matches!(sent.messages.last(), Some(Outgoing::Next(_)));
        batch.push(sent.messages);
        !self.done
    }

    /// The next messages: one batch awaited, then those already waiting (up to [`BATCH`]
    /// batches), so that a burst of changes costs one poll of the connection's streams.
    async fn next(mut self) -> Option<(Batch, Self)> {
        if self.done {
            return None;
        }
        let mut batch = Batch::new();
        let first = match self.behind {
            true => None,
            false => match self.receiver.recv().await {
                Ok(sent) => Some(sent),
                Err(RecvError::Lagged(_)) => None,
                Err(RecvError::Closed) => return self.closed(batch),
            },
        };
        let first = match first {
            Some(sent) => sent,
            None => {
                // The oldest message kept is next: the changes between the last one
                // received and it were missed.
                self.behind = false;
                let next = loop {
                    match self.receiver.recv().await {
                        Ok(sent) => break sent,
                        // Behind again already: the count below covers it.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return self.closed(batch),
                    }
                };
                let skipped = next.before.saturating_sub(self.seen).max(1);
                self.seen = next.before;
                let lagged = self.hub.lagged(skipped).await;
                self.done = !matches!(lagged, Outgoing::Next(_));
                batch.push(Arc::new([lagged]));
                if self.done {
                    return Some((batch, self));
                }
                next
            }
        };
        if !self.take(first, &mut batch) {
            return Some((batch, self));
        }
        while batch.len() < BATCH {
            match self.receiver.try_recv() {
                Ok(sent) => {
                    if !self.take(sent, &mut batch) {
                        break;
                    }
                }
                Err(TryRecvError::Lagged(_)) => {
                    self.behind = true;
                    break;
                }
                Err(TryRecvError::Closed) => return self.closed(batch),
                Err(TryRecvError::Empty) => break,
            }
        }
        Some((batch, self))
    }
}

/// Counts one open subscription in the `graphql_subscriptions` gauge while it lives.
struct Open(Gauge);

impl Open {
    fn new(gauge: Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_keeps_about_its_buffer_of_messages_in_batches() {
        assert_eq!(hub_channel(1024), (16, 64));
        assert_eq!(hub_channel(1000), (16, 63));
        // A buffer smaller than a batch is one batch of it.
        assert_eq!(hub_channel(4), (4, 1));
        assert_eq!(hub_channel(1), (1, 1));
        assert_eq!(hub_channel(0), (1, 1));
        for buffer in 1..200 {
            let (batch, batches) = hub_channel(buffer);
            assert!(batch * batches >= buffer && batch * batches < buffer + batch);
        }
    }
}
