//! `ContactSource` (provenance), `Source` (a configured vendor API and its sync state),
//! `sources` and `syncSource`.
use std::sync::Arc;

use async_graphql::{Context, InputObject, Json, Object, SimpleObject};
use entity::{contact_source, source_state};

use super::RequestContext;
use crate::contacts::WriteSettings;
use crate::sources::config::SourceConfig;
use crate::sources::sync::{self, Syncer};
use crate::time::Timestamp;

/// A vendor record behind a contact: which source, which id there, and the record as it
/// was received (fields with no place in the unified model stay readable here).
#[derive(Clone)]
pub struct ContactSource(pub contact_source::Model);

/// A vendor record behind a contact.
#[Object]
impl ContactSource {
    /// The source's name (as in the sources file or `import --source`).
    async fn source(&self) -> &str {
        &self.0.source
    }

    /// The vendor format, e.g. `business-contacts`.
    async fn format(&self) -> &str {
        &self.0.format
    }

    /// The record's id in the vendor system.
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }

    /// When the record was last received with a change.
    async fn fetched_at(&self) -> Timestamp {
        Timestamp::from_millis(self.0.fetched_at)
    }

    /// The record exactly as received, as JSON.
    async fn record(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.record).unwrap_or_default())
    }
}

/// A configured vendor API and the state of its sync.
#[derive(SimpleObject)]
pub struct Source {
    /// The source's name.
    pub name: String,
    /// Its payload format.
    pub format: String,
    /// The list URL (placeholders unfilled).
    pub url: String,
    /// When the last run started.
    pub last_run_at: Option<Timestamp>,
    /// When the last run completed.
    pub last_success_at: Option<Timestamp>,
    /// Why the last run stopped, if it failed.
    pub last_error: Option<String>,
    /// Incremental sync: records updated after this are fetched next time.
    pub watermark: Option<String>,
    /// Whether a run was interrupted and will resume at the page it stopped at.
    pub resumable: bool,
    /// Contacts created by the last run.
    pub created: i64,
    /// Contacts changed by the last run.
    pub updated: i64,
    /// Records of the last run that changed nothing.
    pub unchanged: i64,
    /// Values the last run did not store.
    pub warnings: i64,
    /// Records the last run rejected.
    pub rejected: i64,
}

impl Source {
    fn new(config: &SourceConfig, state: source_state::Model) -> Self {
        Self {
            name: config.name.clone(),
            format: config.format.name().to_string(),
            url: config.url.clone(),
            last_run_at: state.last_run_at.map(Timestamp::from_millis),
            last_success_at: state.last_success_at.map(Timestamp::from_millis),
            last_error: state.last_error,
            watermark: state.watermark,
            resumable: state.cursor.is_some(),
            created: state.created,
            updated: state.updated,
            unchanged: state.unchanged,
            warnings: state.warnings,
            rejected: state.rejected,
        }
    }
}

/// Reading sources.
#[derive(Default)]
pub struct SourceQueries;

/// Reading sources.
#[Object]
impl SourceQueries {
    /// The vendor APIs configured for your tenant, with the state of their sync.
    async fn sources(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Source>> {
        let request = RequestContext::of(ctx)?;
        let syncer = ctx.data::<Arc<Syncer>>()?;
        let mine: Vec<SourceConfig> = syncer
            .sources
            .sources
            .iter()
            .filter(|s| s.tenant == request.tenant.0)
            .cloned()
            .collect();
        let states = sync::states(request.db, &mine).await?;
        Ok(states
            .iter()
            .map(|(c, s)| Source::new(c, s.clone()))
            .collect())
    }
}

/// Input of `syncSource`.
#[derive(InputObject)]
pub struct SyncSourceInput {
    /// The source's name.
    pub name: String,
    /// Echoed in the payload.
    pub client_mutation_id: Option<String>,
}

/// Result of `syncSource`.
#[derive(SimpleObject)]
pub struct SyncSourcePayload {
    /// The source's state after the run.
    pub source: Source,
    /// Contacts created by this call.
    pub created: i64,
    /// Contacts changed by this call.
    pub updated: i64,
    /// Records of this call that changed nothing.
    pub unchanged: i64,
    /// The input's `clientMutationId`.
    pub client_mutation_id: Option<String>,
}

/// Running syncs.
#[derive(Default)]
pub struct SourceMutations;

/// Running syncs.
#[Object]
impl SourceMutations {
    /// Fetches every page of one of your sources now (only what changed since the last run
    /// where the API allows it) and applies it. A vendor refusal (401, 403, 412) fails with
    /// `UPSTREAM_FAILED`, a malformed page with `BAD_PAYLOAD`; pages applied before stay,
    /// and the next run resumes at the page that failed. Example:
    /// `syncSource(input: { name: "crm" }) { created updated source { lastSuccessAt } }`.
    async fn sync_source(
        &self,
        ctx: &Context<'_>,
        input: SyncSourceInput,
    ) -> async_graphql::Result<SyncSourcePayload> {
        let request = RequestContext::of(ctx)?;
        let syncer = ctx.data::<Arc<Syncer>>()?;
        let settings = *ctx.data::<WriteSettings>()?;
        let summary = syncer
            .sync(request.db, Some(request.tenant), &input.name, settings)
            .await?;
        let config = syncer
            .sources
            .get(&input.name)
            .cloned()
            .ok_or_else(|| crate::error::Error::NotFound("Source".into()))?;
        let states = sync::states(request.db, std::slice::from_ref(&config)).await?;
        let source = states
            .into_iter()
            .next()
            .map(|(c, s)| Source::new(&c, s))
            .ok_or_else(|| crate::error::Error::NotFound("Source".into()))?;
        Ok(SyncSourcePayload {
            source,
            created: summary.created as i64,
            updated: summary.updated as i64,
            unchanged: summary.unchanged as i64,
            client_mutation_id: input.client_mutation_id,
        })
    }
}
