//! A whole payload (a file) through the steps, in transactions of
//! [`RECORDS_PER_TRANSACTION`] records: mapped and validated on a blocking thread while the
//! batches before are written.
use sea_orm::{DatabaseConnection, DbBackend};

use super::map::{Incoming, validate};
use super::parents::resolve_parents;
use super::read::{RecordQueue, read_records};
use super::{
    ImportOptions, ImportSummary, RECORDS_PER_TRANSACTION, apply_records, check_tenant,
    strict_failures,
};
use crate::db::{ANALYZE_AFTER_ROWS, WalCheckpointer, analyze_contacts, begin_write};
use crate::error::{Error, Result};
use crate::sources::MappedRecord;
use crate::time::now_millis;

/// Imports a whole payload (a file) in transactions of [`RECORDS_PER_TRANSACTION`] records.
/// A payload that is not of its format writes nothing. Under `strict`, every record is
/// validated before anything is written, and any warning or rejection writes nothing;
/// otherwise each batch is validated on a blocking thread while the batch before it is
/// written, and on PostgreSQL two batches are written at once (so when one fails, a later
/// one may already be in). On SQLite a [`WalCheckpointer`] copies the WAL into the database
/// file meanwhile (`db` should come from [`crate::db::connect_for_import`]). `progress` gets
/// the records done so far and the total. An import that created or changed
/// [`ANALYZE_AFTER_ROWS`] contacts or more ends by refreshing PostgreSQL's statistics.
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
    if summary.created + summary.updated >= ANALYZE_AFTER_ROWS {
        analyze_contacts(db).await;
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
