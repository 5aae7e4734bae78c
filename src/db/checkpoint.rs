//! Copying a SQLite WAL into the database file while a bulk import writes.
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

/// Copies a SQLite database's WAL into the database file every 100 ms, on a connection of
/// its own, while a bulk import writes on another (see [`super::connect_for_import`]).
///
/// A passive checkpoint never waits for the writer or for readers; it copies what has been
/// committed so far. Copying on commit instead made each import batch wait for its pages to
/// be written twice, a second of every 100k contacts.
pub struct WalCheckpointer {
    db: DatabaseConnection,
    task: tokio::task::JoinHandle<()>,
}

const PASSIVE_CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";
const FULL_CHECKPOINT: &str = "PRAGMA wal_checkpoint(FULL)";

impl WalCheckpointer {
    /// Starts checkpointing `db`; `None` unless it is SQLite.
    pub fn start(db: &DatabaseConnection) -> Option<Self> {
        if db.get_database_backend() != DbBackend::Sqlite {
            return None;
        }
        let background = db.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Err(err) = background.execute_unprepared(PASSIVE_CHECKPOINT).await {
                    tracing::warn!(%err, "WAL checkpoint failed");
                }
            }
        });
        Some(Self {
            db: db.clone(),
            task,
        })
    }

    /// Stops, after copying all of the WAL into the database file.
    ///
    /// The background checkpoint may be mid-statement on another connection, so it is waited
    /// for; the last checkpoint is `FULL` because a passive one gives up, leaving part of the
    /// WAL uncopied, while another checkpoint or a reader is in the way.
    pub async fn finish(mut self) -> crate::Result<()> {
        self.task.abort();
        // A cancelled task's JoinError says only that it was stopped.
        let _ = (&mut self.task).await;
        self.db.execute_unprepared(FULL_CHECKPOINT).await?;
        Ok(())
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
