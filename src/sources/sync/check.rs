//! The run's middle stage, between fetching and writing: the records of each fetched page
//! that the source holds byte for byte already are counted and dropped, the others mapped
//! and validated. It runs as a task of its own, so that this CPU work runs beside the
//! fetching and the writing.
use std::collections::HashSet;

use sea_orm::DatabaseConnection;
use serde_json::Value;
use tokio::sync::mpsc::{Receiver, Sender};

use super::{PAGES_AHEAD, RunCursor};
use crate::contacts::WriteSettings;
use crate::error::{Error, Result};
use crate::sources::config::SourceConfig;
use crate::sources::import::{ImportSummary, Incoming, prepare, unchanged_records};
use crate::sources::{MapContext, mapping};
use crate::tenancy::TenantId;
use crate::time::{format_millis, parse_rfc3339_millis};

/// A page on its way from the reader to the checker: parsed, its records fingerprinted.
pub(super) struct RawPage {
    /// `page N of URL`, for errors.
    pub name: String,
    pub context: MapContext,
    pub records: Vec<Value>,
    /// (vendor id, SHA-256 of the record) of each record with an id.
    pub fingerprints: Vec<(String, String)>,
    pub list_ends: bool,
    pub after: Option<RunCursor>,
}

/// A page on its way from the checker to the writer.
pub(super) struct FetchedPage {
    /// What its list's URL says of its records.
    pub context: MapContext,
    pub page: Page,
    /// Whether it is the last page of its list (the batch is written then).
    pub list_ends: bool,
    /// The resume point after it (`None`: it was the run's last page).
    pub after: Option<RunCursor>,
    /// The newest vendor update time seen so far.
    pub newest: Option<String>,
}

/// One page, checked: what to write, and what was there already.
pub(super) struct Page {
    pub incoming: Vec<Incoming>,
    /// Its vendor ids, when records marked deleted are to be restored.
    pub ids: Vec<String>,
    pub unchanged: usize,
    pub warnings: usize,
}

/// The check stage of one run.
pub(super) struct Checker {
    pub db: DatabaseConnection,
    pub source: SourceConfig,
    pub settings: WriteSettings,
    /// Whether the source has records marked deleted (then each page's ids are passed on,
    /// to restore those seen again).
    pub restore: bool,
    /// The newest vendor update time seen so far.
    pub newest: Option<String>,
}

impl Checker {
    /// Checks the pages arriving on `raw` in order and hands them to `checked`, until `raw`
    /// ends, the writer stops listening, or a page fails (its error is handed on, after the
    /// pages before it).
    pub async fn run(
        mut self,
        mut raw: Receiver<Result<RawPage>>,
        checked: Sender<Result<FetchedPage>>,
    ) {
        while let Some(first) = raw.recv().await {
            // The pages waiting already are checked together: one lookup of their records'
            // fingerprints instead of one per page.
            let mut group = vec![first];
            while group.len() < PAGES_AHEAD && group.last().is_some_and(Result::is_ok) {
                match raw.try_recv() {
                    Ok(more) => group.push(more),
                    Err(_) => break,
                }
            }
            let fingerprints: Vec<(String, String)> = group
                .iter()
                .filter_map(|raw| raw.as_ref().ok())
                .flat_map(|raw| raw.fingerprints.iter().cloned())
                .collect();
            let held = unchanged_records(
                &self.db,
                TenantId(self.source.tenant),
                &self.source.settings.name,
                &fingerprints,
            )
            .await;
            for page in group {
                let page = match (&held, page) {
                    (_, Err(err)) => Err(err),
                    (Err(err), _) => Err(err.clone()),
                    (Ok(held), Ok(page)) => self.check(page, held),
                };
                let failed = page.is_err();
                if checked.send(page).await.is_err() || failed {
                    return;
                }
            }
        }
    }

    /// Checks one page: records the source holds byte for byte already (`held`) are counted,
    /// the others mapped and validated; a record that cannot be mapped fails the page
    /// (`BAD_PAYLOAD`). Keeps `newest`, the newest vendor update time seen.
    fn check(&mut self, raw: RawPage, held: &HashSet<String>) -> Result<FetchedPage> {
        let source = &self.source.settings;
        let connector = source.format.connector();
        let RawPage {
            name,
            context,
            records,
            fingerprints,
            list_ends,
            mut after,
        } = raw;
        let unchanged = fingerprints
            .iter()
            .filter(|(id, _)| held.contains(id))
            .count();
        let records: Vec<Value> = if unchanged == 0 {
            records
        } else {
            records
                .into_iter()
                .filter(|r| {
                    mapping::record_id(r, connector.id_field())
                        .map_or(true, |id| !held.contains(&id))
                })
                .collect()
        };
        let mut page = ImportSummary::default();
        let incoming = prepare(connector, records, &context, self.settings, &mut page);
        if let Some(first) = page.rejected.first() {
            return Err(Error::BadPayload(format!(
                "source {}: malformed {name}: record {}: {} ({} of the page's records \
                 rejected); nothing of the page was written",
                source.name,
                first.record,
                first.message,
                page.rejected.len()
            )));
        }
        for inc in &incoming {
            if let Some(updated) = inc.updated_at()
                && self
                    .newest
                    .as_deref()
                    .and_then(parse_rfc3339_millis)
                    .is_none_or(|current| updated > current)
            {
                self.newest = Some(format_millis(updated));
            }
        }
        if let Some(after) = &mut after {
            after.newest = self.newest.clone();
        }
        Ok(FetchedPage {
            context,
            page: Page {
                incoming,
                ids: if self.restore {
                    fingerprints.into_iter().map(|(id, _)| id).collect()
                } else {
                    Vec::new()
                },
                unchanged,
                warnings: page.warnings.len(),
            },
            list_ends,
            after,
            newest: self.newest.clone(),
        })
    }
}
