//! Each server process's reader of the change feed: it tails `contact_events` in order and
//! broadcasts each event, with the contact as it is after the change, to this process's
//! subscribers. The buffer is bounded ([`Feed::start`]'s `capacity`): a subscriber that
//! falls further behind skips ahead and is told so (`LAGGED`), and the server's memory
//! does not grow with it.
//!
//! Wake-ups: [`written`] from this process's writers (on SQLite the reader then waits for
//! the writer's commit; on PostgreSQL a write seen before its commit is read at the next
//! tick); and a tick every [`TICK`], which brings other replicas' events (PostgreSQL).
//! Nothing is read while the process has no subscriber. (`NOTIFY` is not used: a notifying
//! commit holds a database-wide lock until it is flushed, which serialised every write.)
//!
//! On PostgreSQL, `seq` is taken at INSERT but rows become visible at COMMIT, so a row can
//! appear behind a later one. The reader delivers what it sees at once and keeps waiting
//! for a missing `seq` for [`GAP_WAIT`] (a rolled-back change leaves a `seq` that never
//! comes).
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use entity::contact::Columns;
use entity::prelude::{Contact, ContactEvent as EventRow};
use entity::{contact, contact_event};
use sea_orm::sea_query::{Alias, Expr, JoinType, Order, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QuerySelect,
};
use tokio::sync::{Mutex, Notify, broadcast};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::error::Result;

/// How long a missing `seq` is waited for before the reader moves past it.
pub const GAP_WAIT: Duration = Duration::from_secs(60);

/// Rows read at a time.
const PAGE: u64 = 500;

/// How often the feed is read without a wake-up (while anyone subscribes): how late, at
/// most, another replica's event reaches this one's subscribers.
pub const TICK: Duration = Duration::from_millis(100);

static WRITTEN: Notify = Notify::const_new();

/// Tells this process's readers that events were recorded (called inside the writing
/// transaction; the reader waits for it to end).
pub fn written() {
    WRITTEN.notify_waiters();
}

/// One change of a contact, as delivered to subscribers.
#[derive(Debug)]
pub struct ChangeEvent {
    pub seq: i64,
    pub tenant: Uuid,
    pub contact_id: Uuid,
    /// One of [`super::kind`].
    pub kind: String,
    /// For `UPDATED`: the `ContactPatch` names of the changed fields.
    pub changed_fields: Vec<String>,
    /// For `MERGED`: the contact it was merged into.
    pub survivor: Option<Uuid>,
    /// Milliseconds since the epoch.
    pub at: i64,
    /// The contact when the event was read (none once deleted), with `columns` only: the
    /// other fields are empty ([`contact::Model::from_partial`]).
    pub contact: Option<Arc<contact::Model>>,
    /// The columns `contact` was read with: what the subscribers wanted when it was read
    /// ([`Feed::subscribe`]) and the keys.
    pub columns: Columns,
    /// How many of its tenant's events this process's reader has sent, this one included:
    /// a subscriber that falls behind counts what it missed of its own tenant from it
    /// (the buffer is shared by every tenant, and its own count would tell of theirs).
    pub position: u64,
}

/// Where the reader is: every `seq` up to `floor` is done; above it, those in `delivered`
/// are, and those in `missing` have been waited for since the instant given.
#[derive(Default)]
struct Cursor {
    floor: i64,
    delivered: BTreeSet<i64>,
    missing: BTreeMap<i64, Instant>,
    /// Nothing was read while nobody subscribed: the floor must be moved to the end.
    behind: bool,
    /// Events sent per tenant ([`ChangeEvent::position`]).
    positions: HashMap<Uuid, u64>,
}

impl Cursor {
    /// Takes note of `seqs` (read, ascending) and moves the floor over what is done.
    fn advance(&mut self, seqs: &[i64], now: Instant) {
        self.delivered.extend(seqs.iter().copied());
        if let Some(&top) = self.delivered.last() {
            // A missing seq far below the top is given up at once beyond this many.
            let start = (self.floor + 1).max(top - 1_000);
            for seq in start..top {
                if !self.delivered.contains(&seq) {
                    self.missing.entry(seq).or_insert(now);
                }
            }
        }
        loop {
            let next = self.floor + 1;
            if self.delivered.remove(&next) {
                self.missing.remove(&next);
            } else if let Some(since) = self.missing.get(&next).copied() {
                if now.duration_since(since) < GAP_WAIT {
                    break;
                }
                self.missing.remove(&next);
            } else if self.delivered.first().is_some_and(|&d| d > next) {
                // Below the give-up window: skip.
            } else {
                break;
            }
            self.floor = next;
        }
    }

    /// Whether `seq` was delivered already.
    fn done(&self, seq: i64) -> bool {
        seq <= self.floor || self.delivered.contains(&seq)
    }
}

/// This process's reader of the change feed.
pub struct Feed {
    db: DatabaseConnection,
    sender: broadcast::Sender<Arc<ChangeEvent>>,
    cursor: Mutex<Cursor>,
    /// The contact columns the subscribers read ([`Feed::subscribe`]); a change's contact is
    /// read with these only, plus [`KEYS`] (decoding all 44 columns of every changed
    /// contact was a third of the server's work during an import).
    wanted: AtomicU64,
}

/// The columns every change's contact is read with: its keys and relations.
pub const KEYS: Columns = Columns::NONE
    .with(contact::Column::Id)
    .with(contact::Column::TenantId)
    .with(contact::Column::AccountId)
    .with(contact::Column::BusinessId)
    .with(contact::Column::CreatedAt)
    .with(contact::Column::UpdatedAt);

impl Feed {
    /// Starts the reader (stopped by `stop`); each subscriber's buffer holds up to
    /// `capacity` events.
    pub fn start(db: DatabaseConnection, capacity: usize, stop: CancellationToken) -> Arc<Feed> {
        let (sender, _) = broadcast::channel(capacity.max(1));
        let feed = Arc::new(Feed {
            db,
            sender,
            cursor: Mutex::new(Cursor {
                behind: true,
                ..Cursor::default()
            }),
            wanted: AtomicU64::new(0),
        });
        tokio::spawn(feed.clone().run(stop));
        feed
    }

    /// A new subscriber's receiver: it gets every event recorded from now on, each
    /// change's contact read with at least `columns` (and [`KEYS`]). The columns wanted
    /// are forgotten when the feed has no subscriber left.
    pub async fn subscribe(
        &self,
        columns: Columns,
    ) -> Result<broadcast::Receiver<Arc<ChangeEvent>>> {
        // Under the lock: a read in progress (its contacts read with the columns wanted
        // before) sends nothing to this receiver, and the reader, which forgets the columns
        // only when it finds no receiver under the lock, cannot forget these.
        let mut cursor = self.cursor.lock().await;
        let receiver = self.sender.subscribe();
        self.wanted.fetch_or(columns.bits(), Ordering::SeqCst);
        if cursor.behind {
            *cursor = Cursor {
                floor: last_seq(&self.db).await?,
                ..Cursor::default()
            };
        }
        Ok(receiver)
    }

    /// How many of `tenant`'s events have been sent so far ([`ChangeEvent::position`]).
    pub async fn position(&self, tenant: Uuid) -> u64 {
        self.cursor
            .lock()
            .await
            .positions
            .get(&tenant)
            .copied()
            .unwrap_or_default()
    }

    async fn run(self: Arc<Self>, stop: CancellationToken) {
        let postgres = self.db.get_database_backend() == DbBackend::Postgres;
        let mut woken = false;
        loop {
            let notified = WRITTEN.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut read = self.read_logged().await;
            // On PostgreSQL a writer wakes the reader before its commit: look again shortly.
            if woken && postgres && read == Some(0) {
                for wait in [2, 4, 8, 16, 32] {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    read = self.read_logged().await;
                    if read != Some(0) {
                        break;
                    }
                }
            }
            woken = tokio::select! {
                _ = &mut notified => true,
                _ = tokio::time::sleep(TICK) => false,
                _ = stop.cancelled() => return,
            };
        }
    }

    /// [`Feed::read`], its failure logged: how many events were broadcast (`None`: none
    /// were looked for, or the read failed).
    async fn read_logged(&self) -> Option<usize> {
        match self.read().await {
            Ok(read) => read,
            Err(error) => {
                tracing::warn!(?error, "reading the change feed failed");
                None
            }
        }
    }

    /// Reads and broadcasts everything new: how many events (`None`: no subscriber).
    async fn read(&self) -> Result<Option<usize>> {
        use sea_orm::sea_query::ExprTrait;
        if self.db.get_database_backend() == DbBackend::Sqlite {
            crate::db::writers_done().await;
        }
        let mut cursor = self.cursor.lock().await;
        // Checked under the lock: a subscriber arriving now moves the floor first.
        if self.sender.receiver_count() == 0 {
            cursor.behind = true;
            self.wanted.store(0, Ordering::SeqCst);
        }
        if cursor.behind {
            return Ok(None); // a subscriber that arrives moves the floor
        }
        let mut broadcast = 0;
        loop {
            // New rows past the highest seen, and the missing ones below it, each with its
            // contact as it is now (one statement each).
            let columns = KEYS.union(Columns::from_bits(self.wanted.load(Ordering::SeqCst)));
            let high = cursor.delivered.last().copied().unwrap_or(cursor.floor);
            let mut rows = events_with_contacts(
                &self.db,
                Expr::col((EventRow, contact_event::Column::Seq)).gt(high),
                Some(PAGE),
                columns,
            )
            .await?;
            let full = rows.len() as u64 >= PAGE;
            if !cursor.missing.is_empty() {
                let late = events_with_contacts(
                    &self.db,
                    Expr::col((EventRow, contact_event::Column::Seq))
                        .is_in(cursor.missing.keys().copied()),
                    None,
                    columns,
                )
                .await?;
                rows.extend(late);
                rows.sort_by_key(|(r, _)| r.seq);
            }
            rows.retain(|(r, _)| !cursor.done(r.seq));
            let seqs: Vec<i64> = rows.iter().map(|(r, _)| r.seq).collect();
            for (row, contact) in rows {
                // No receiver left is not an error: the events are simply not wanted.
                let position = cursor.positions.entry(row.tenant_id).or_default();
                *position += 1;
                let event = change_event(row, contact.map(Arc::new), columns, *position);
                let _ = self.sender.send(Arc::new(event));
                broadcast += 1;
            }
            cursor.advance(&seqs, Instant::now());
            if !full || seqs.is_empty() {
                return Ok(Some(broadcast));
            }
        }
    }
}

/// The events matching `condition` in `seq` order (at most `limit`), each with its contact as
/// it is now, read with `columns` only (none once deleted): one statement, `contact_events
/// LEFT JOIN contacts`, the event's columns named `ev_…`.
async fn events_with_contacts(
    db: &DatabaseConnection,
    condition: SimpleExpr,
    limit: Option<u64>,
    columns: Columns,
) -> Result<Vec<(contact_event::Model, Option<contact::Model>)>> {
    use contact_event::Column as E;
    use sea_orm::sea_query::ExprTrait;
    let mut select = Query::select();
    for (column, name) in [
        (E::Seq, "ev_seq"),
        (E::TenantId, "ev_tenant_id"),
        (E::ContactId, "ev_contact_id"),
        (E::Kind, "ev_kind"),
        (E::ChangedFields, "ev_changed_fields"),
        (E::SurvivorId, "ev_survivor_id"),
        (E::CreatedAt, "ev_created_at"),
    ] {
        select.expr_as(Expr::col((EventRow, column)), Alias::new(name));
    }
    for column in columns.iter() {
        select.column((Contact, column));
    }
    select
        .from(EventRow)
        .join(
            JoinType::LeftJoin,
            Contact,
            Expr::col((Contact, contact::Column::Id)).equals((EventRow, E::ContactId)),
        )
        .and_where(condition)
        .order_by((EventRow, E::Seq), Order::Asc);
    if let Some(limit) = limit {
        select.limit(limit);
    }
    let mut events = Vec::new();
    for row in db.query_all(&select).await? {
        let event = contact_event::Model {
            seq: row.try_get("", "ev_seq")?,
            tenant_id: row.try_get("", "ev_tenant_id")?,
            contact_id: row.try_get("", "ev_contact_id")?,
            kind: row.try_get("", "ev_kind")?,
            changed_fields: row.try_get("", "ev_changed_fields")?,
            survivor_id: row.try_get("", "ev_survivor_id")?,
            created_at: row.try_get("", "ev_created_at")?,
        };
        let contact = match row.try_get::<Option<Uuid>>("", "id")? {
            Some(_) => Some(contact::Model::from_partial(&row, columns)?),
            None => None,
        };
        events.push((event, contact));
    }
    Ok(events)
}

fn change_event(
    row: contact_event::Model,
    contact: Option<Arc<contact::Model>>,
    columns: Columns,
    position: u64,
) -> ChangeEvent {
    let changed_fields = row
        .changed_fields
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_default();
    ChangeEvent {
        seq: row.seq,
        tenant: row.tenant_id,
        contact_id: row.contact_id,
        kind: row.kind,
        changed_fields,
        survivor: row.survivor_id,
        at: row.created_at,
        // A contact of another tenant under the same id cannot exist (ids are UUIDs), but
        // the tenant is checked anyway.
        contact: contact.filter(|c| c.tenant_id == row.tenant_id),
        columns,
        position,
    }
}

/// The newest `seq` (0 when the feed is empty).
async fn last_seq(db: &DatabaseConnection) -> Result<i64> {
    let seq: Option<Option<i64>> = EventRow::find()
        .select_only()
        .column_as(contact_event::Column::Seq.max(), "seq")
        .into_tuple()
        .one(db)
        .await?;
    Ok(seq.flatten().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_moves_over_what_is_done_and_waits_for_a_missing_seq() {
        let t0 = Instant::now();
        let mut cursor = Cursor::default();
        cursor.advance(&[1, 2, 4], t0);
        assert_eq!(cursor.floor, 2);
        assert!(cursor.done(4) && !cursor.done(3));
        // 3 commits late: delivered then, and the floor moves past 4.
        cursor.advance(&[3], t0 + Duration::from_millis(100));
        assert_eq!(cursor.floor, 4);
        assert!(cursor.missing.is_empty() && cursor.delivered.is_empty());
        // 5 never comes (rolled back): given up after GAP_WAIT.
        cursor.advance(&[6], t0);
        assert_eq!(cursor.floor, 4);
        cursor.advance(&[], t0 + GAP_WAIT);
        assert_eq!(cursor.floor, 6);
    }
}
