//! Copying a SQLite WAL into the database file while a bulk import writes.
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::sync::watch;

/// Copies a SQLite database's WAL into the database file every 100 ms, on a connection of
/// its own, while a bulk import writes on another (see [`super::connect_for_import`]).
///
/// A passive checkpoint never waits for the writer or for readers; it copies what has been
/// committed so far. Copying on commit instead made each import batch wait for its pages to
/// be written twice, a second of every 100k contacts.
pub struct WalCheckpointer {
    db: DatabaseConnection,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

const PASSIVE_CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";
const FULL_CHECKPOINT: &str = "PRAGMA wal_checkpoint(FULL)";

/// How long [`WalCheckpointer::finish`] retries a checkpoint that another one is in the way of.
const FINISH_WITHIN: Duration = Duration::from_secs(10);

impl WalCheckpointer {
    /// Starts checkpointing `db`; `None` unless it is SQLite.
    pub fn start(db: &DatabaseConnection) -> Option<Self> {
        if db.get_database_backend() != DbBackend::Sqlite {
            return None;
        }
        let background = db.clone();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                // Only the wait is cancelled: a checkpoint, once started, runs to its end
                // (dropping its future would not stop it on SQLite's worker thread).
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stopped.changed() => return,
                }
                if let Err(err) = background.execute_unprepared(PASSIVE_CHECKPOINT).await {
                    tracing::warn!(%err, "WAL checkpoint failed");
                }
            }
        });
        Some(Self {
            db: db.clone(),
            stop,
            task,
        })
    }

    /// Stops, after copying all of the WAL into the database file.
    ///
    /// The background checkpoint is let finish first, then a `FULL` checkpoint copies the
    /// rest. A checkpoint answers `busy` (and copies only part) while another is running, so
    /// it is repeated until it is not.
    pub async fn finish(mut self) -> crate::Result<()> {
        let _ = self.stop.send(true);
        // The task returns on the signal; a JoinError would only say it panicked.
        let _ = (&mut self.task).await;
        let deadline = tokio::time::Instant::now() + FINISH_WITHIN;
        loop {
            let busy = self
                .db
                .query_one_raw(Statement::from_string(DbBackend::Sqlite, FULL_CHECKPOINT))
                .await?
                .and_then(|row| row.try_get_by_index::<i64>(0).ok())
                .unwrap_or(0);
            if busy == 0 || tokio::time::Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
