//! A tenant's sources as rows of `sources`: create, update, delete, read, page through, and
//! the upsert of the sources file at start. The bearer token is sealed with the server's
//! [`SecretKey`] before it is written and opened only to run the source.
use std::time::Duration;

use entity::prelude::{Source, SourceLease, SourceState};
use entity::source::{self, Column};
use entity::{source_lease, source_state};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, IntoSimpleExpr, QueryFilter, Set,
};
use uuid::Uuid;

use super::config::SourceConfig;
use super::definition::{SourceDraft, SourceSettings, check_token, last4, parse_format};
use crate::change::Change;
use crate::db::begin_write;
use crate::error::{Error, Result};
use crate::paging::{self, Direction, KeyValue, Ordering, Page, PageArgs, SortKey};
use crate::secrets::SecretKey;
use crate::tenancy::{TenantId, scoped};
use crate::time::now_millis;
use crate::write_back::config::WriteBackDraft;

/// What `updateSource` changes: a field left out (`None`, [`Change::Keep`]) stays.
#[derive(Clone, Debug, Default)]
pub struct SourcePatch {
    pub format: Option<String>,
    pub url: Option<String>,
    pub accounts: Option<Vec<String>>,
    pub businesses: Option<Vec<String>>,
    pub headers: Option<Vec<(String, String)>>,
    pub interval: Option<String>,
    pub full_every: Option<String>,
    pub overlap: Option<String>,
    pub max_requests_per_minute: Change<i64>,
    pub enabled: Option<bool>,
    /// `Clear` removes the stored token.
    pub token: Change<String>,
    /// `Set` replaces the write settings (what it leaves out takes the format's default),
    /// `Clear` makes the source read-only.
    pub write: Change<WriteBackDraft>,
}

impl SourcePatch {
    /// `draft` with this patch's fields put in.
    fn apply(&self, mut draft: SourceDraft) -> SourceDraft {
        if let Some(v) = &self.format {
            draft.format = v.clone();
        }
        if let Some(v) = &self.url {
            draft.url = v.clone();
        }
        if let Some(v) = &self.accounts {
            draft.accounts = v.clone();
        }
        if let Some(v) = &self.businesses {
            draft.businesses = v.clone();
        }
        if let Some(v) = &self.headers {
            draft.headers = v.clone();
        }
        if let Some(v) = &self.interval {
            draft.interval = Some(v.clone());
        }
        if let Some(v) = &self.full_every {
            draft.full_every = Some(v.clone());
        }
        if let Some(v) = &self.overlap {
            draft.overlap = Some(v.clone());
        }
        match &self.max_requests_per_minute {
            Change::Keep => {}
            Change::Clear => draft.max_requests_per_minute = None,
            Change::Set(v) => draft.max_requests_per_minute = Some(*v),
        }
        if let Some(v) = self.enabled {
            draft.enabled = Some(v);
        }
        match &self.write {
            Change::Keep => {}
            Change::Clear => draft.write = None,
            Change::Set(v) => draft.write = Some(v.clone()),
        }
        draft
    }
}

/// The settings stored in `row`.
pub fn settings_of(row: &source::Model) -> Result<SourceSettings> {
    let bad =
        |what: &str| Error::Internal(format!("source {}: stored {what} unreadable", row.name));
    let millis = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or_default());
    Ok(SourceSettings {
        name: row.name.clone(),
        format: parse_format(&row.format).ok_or_else(|| bad("format"))?,
        url: row.url.clone(),
        accounts: serde_json::from_str(&row.accounts).map_err(|_| bad("accounts"))?,
        businesses: serde_json::from_str(&row.businesses).map_err(|_| bad("businesses"))?,
        headers: serde_json::from_str(&row.headers).map_err(|_| bad("headers"))?,
        interval: millis(row.interval_ms),
        full_every: millis(row.full_every_ms),
        overlap: millis(row.overlap_ms),
        max_requests_per_minute: row
            .max_requests_per_minute
            .and_then(|n| u32::try_from(n).ok()),
        enabled: row.enabled,
        write: match &row.write_back {
            Some(text) => Some(serde_json::from_str(text).map_err(|_| bad("write settings"))?),
            None => None,
        },
    })
}

fn millis_of(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Writes `settings` into `row` (not the token, the schedule state or the times).
fn put_settings(row: &mut source::ActiveModel, settings: &SourceSettings) {
    row.name = Set(settings.name.clone());
    row.format = Set(settings.format.name().to_string());
    row.url = Set(settings.url.clone());
    row.accounts = Set(json(&settings.accounts));
    row.businesses = Set(json(&settings.businesses));
    row.headers = Set(json(&settings.headers));
    row.interval_ms = Set(millis_of(settings.interval));
    row.full_every_ms = Set(millis_of(settings.full_every));
    row.overlap_ms = Set(millis_of(settings.overlap));
    row.max_requests_per_minute = Set(settings
        .max_requests_per_minute
        .and_then(|n| i32::try_from(n).ok()));
    row.enabled = Set(settings.enabled);
    row.write_back = Set(settings.write.as_ref().map(json));
}

/// JSON text of a list or map column.
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The sealed form of `token` for the source `id`, and its last four characters (none for
/// a short token); the
/// token is checked first (`VALIDATION_FAILED` on `token`).
fn seal(key: Option<&SecretKey>, id: Uuid, token: &str) -> Result<(String, Option<String>)> {
    check_token(token)?;
    let key = key.ok_or_else(|| {
        Error::invalid(
            "token",
            "this server has no secret key to store a token with: set GATEWAY_SECRET_KEY",
        )
    })?;
    Ok((key.seal(token, id.as_bytes()), last4(token)))
}

/// The tenant's source `name` (`NOT_FOUND` when it has none of that name).
pub async fn find(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    name: &str,
) -> Result<source::Model> {
    scoped_sources(tenant)
        .filter(Column::Name.eq(name))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("Source {name:?}")))
}

fn scoped_sources(tenant: TenantId) -> sea_orm::Select<Source> {
    scoped::<Source>(tenant)
}

/// Creates a source for `tenant`. Every failing field is reported at once; a name already
/// in use is a failure of `name`. It is first due at once when enabled.
pub async fn create(
    db: &DatabaseConnection,
    key: Option<&SecretKey>,
    tenant: TenantId,
    draft: &SourceDraft,
    token: Option<&str>,
) -> Result<source::Model> {
    let id = Uuid::now_v7();
    let settings = draft.validate();
    let sealed = token.map(|t| seal(key, id, t)).transpose();
    let (settings, sealed) = merge_failures(settings, sealed)?;
    let (txn, _lock) = begin_write(db).await?;
    if find(&txn, tenant, &settings.name).await.is_ok() {
        return Err(Error::invalid("name", "a source of this name exists"));
    }
    let now = now_millis();
    let mut row = source::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant.0),
        token: Set(sealed.as_ref().map(|(s, _)| s.clone())),
        token_last4: Set(sealed.and_then(|(_, l)| l)),
        suspended: Set(None),
        next_run_at: Set(settings.enabled.then_some(now)),
        last_full_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    put_settings(&mut row, &settings);
    let row = row.insert(&txn).await?;
    txn.commit().await?;
    crate::write_back::writable::forget(tenant);
    Ok(row)
}

/// Both results, or every failure of both.
fn merge_failures<A, B>(a: Result<A>, b: Result<B>) -> Result<(A, B)> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (Err(Error::Validation(mut x)), Err(Error::Validation(y))) => {
            x.extend(y);
            Err(Error::Validation(x))
        }
        (Err(err), _) | (_, Err(err)) => Err(err),
    }
}

/// Changes the tenant's source `name` by `patch`, checked as a whole.
///
/// - A stored token is not sent to another host: a URL whose host changes needs `token`
///   again (or `null`), else `VALIDATION_FAILED` on `token`.
/// - A change of where records are read (format, URL, accounts, businesses) drops the resume
///   point of an interrupted run, which pointed into the old lists.
/// - A patch that changes nothing writes nothing (a sources file upserted at every start
///   leaves its sources as they are); any change, or `enabled: true`, lifts a suspension (the
///   vendor refused the token), and a source that becomes enabled is due at once.
pub async fn update(
    db: &DatabaseConnection,
    key: Option<&SecretKey>,
    tenant: TenantId,
    name: &str,
    patch: &SourcePatch,
) -> Result<source::Model> {
    let (txn, _lock) = begin_write(db).await?;
    let stored = find(&txn, tenant, name).await?;
    let current = settings_of(&stored)?;
    let settings = patch.apply(current.to_draft()).validate();
    let sealed = match &patch.token {
        Change::Set(token) => seal(key, stored.id, token).map(Change::Set),
        Change::Clear => Ok(Change::Clear),
        Change::Keep => match &settings {
            Ok(new) if stored.token.is_some() && host(&new.url) != host(&current.url) => {
                Err(Error::invalid(
                    "token",
                    "the url's host changes: give the token again (or null to remove it), \
                     so that a token is never sent to a host it was not given for",
                ))
            }
            _ => Ok(Change::Keep),
        },
    };
    let (settings, sealed) = merge_failures(settings, sealed)?;
    // Enabling a suspended source re-enables it, even when it was enabled already.
    let re_enabled = stored.suspended.is_some() && patch.enabled == Some(true);
    if settings == current && matches!(sealed, Change::Keep) && !re_enabled {
        return Ok(stored);
    }
    let moved = settings.format != current.format
        || settings.url != current.url
        || settings.accounts != current.accounts
        || settings.businesses != current.businesses;
    if moved {
        SourceState::update_many()
            .col_expr(
                source_state::Column::Cursor,
                Expr::val(Option::<String>::None),
            )
            .filter(source_state::Column::TenantId.eq(tenant.0))
            .filter(source_state::Column::Name.eq(name))
            .exec(&txn)
            .await?;
    }
    let now = now_millis();
    let was_due = stored.next_run_at;
    let mut row = stored.into_active_model();
    put_settings(&mut row, &settings);
    match sealed {
        Change::Set((token, last4)) => {
            row.token = Set(Some(token));
            row.token_last4 = Set(last4);
        }
        Change::Clear => {
            row.token = Set(None);
            row.token_last4 = Set(None);
        }
        Change::Keep => {}
    }
    row.suspended = Set(None);
    row.next_run_at = Set(settings.enabled.then_some(was_due.unwrap_or(now)));
    row.updated_at = Set(now);
    let row = row.update(&txn).await?;
    txn.commit().await?;
    crate::write_back::writable::forget(tenant);
    Ok(row)
}

/// The host (and port) of a source URL, placeholders filled.
fn host(url: &str) -> Option<String> {
    let filled = url.replace("{accountId}", "a").replace("{businessId}", "b");
    let parsed = url::Url::parse(&filled).ok()?;
    Some(format!(
        "{}:{}",
        parsed.host_str()?,
        parsed.port_or_known_default().unwrap_or_default()
    ))
}

/// Deletes the tenant's source `name`, with its runs, sync state and lease. Its contacts
/// and their vendor records stay.
pub async fn delete(db: &DatabaseConnection, tenant: TenantId, name: &str) -> Result<Uuid> {
    let (txn, _lock) = begin_write(db).await?;
    let stored = find(&txn, tenant, name).await?;
    SourceState::delete_many()
        .filter(source_state::Column::TenantId.eq(tenant.0))
        .filter(source_state::Column::Name.eq(name))
        .exec(&txn)
        .await?;
    SourceLease::delete_many()
        .filter(source_lease::Column::TenantId.eq(tenant.0))
        .filter(source_lease::Column::Name.eq(name))
        .exec(&txn)
        .await?;
    Source::delete_by_id(stored.id).exec(&txn).await?;
    txn.commit().await?;
    crate::write_back::writable::forget(tenant);
    Ok(stored.id)
}

/// The order of `sources`: by name.
pub fn ordering() -> Ordering<source::Model> {
    let by_name = SortKey {
        name: "name",
        expr: Column::Name.into_simple_expr(),
        direction: Direction::Asc,
        value: |m: &source::Model| KeyValue::Text(m.name.clone()),
        text: true,
    };
    Ordering::dedup([], by_name, Column::Id.into_simple_expr(), |m| m.id)
}

/// A page of the tenant's sources, by name.
pub async fn page(
    db: &DatabaseConnection,
    tenant: TenantId,
    args: &PageArgs,
) -> Result<Page<source::Model>> {
    paging::fetch_page(db, scoped_sources(tenant), &ordering(), args).await
}

/// How many sources the tenant has.
pub async fn count(db: &DatabaseConnection, tenant: TenantId) -> Result<i64> {
    use sea_orm::PaginatorTrait;
    Ok(scoped_sources(tenant).count(db).await? as i64)
}

/// What a run of `row` needs: its settings and its token, opened.
pub fn runnable(row: &source::Model, key: Option<&SecretKey>) -> Result<SourceConfig> {
    let settings = settings_of(row)?;
    let token = match &row.token {
        None => None,
        Some(sealed) => {
            let key = key.ok_or_else(|| {
                Error::Upstream(format!(
                    "source {}: a token is stored but this server has no secret key \
                     (GATEWAY_SECRET_KEY) to open it",
                    row.name
                ))
            })?;
            Some(
                key.open(sealed, row.id.as_bytes())
                    .map_err(|err| Error::Upstream(format!("source {}: {err}", row.name)))?,
            )
        }
    };
    Ok(SourceConfig::from_settings(
        row.id,
        TenantId(row.tenant_id),
        settings,
        token,
    ))
}

/// Upserts the sources of the sources file: each is created, or its settings (and token,
/// when its `token_env` is set) replaced; sources not in the file are left alone.
pub async fn upsert_file_sources(
    db: &DatabaseConnection,
    key: Option<&SecretKey>,
    file: &super::config::SourcesFile,
) -> Result<()> {
    for entry in &file.sources {
        let tenant = TenantId(entry.tenant);
        let token = entry.token()?;
        let draft = entry.draft();
        let result = match find(db, tenant, &entry.name).await {
            Err(Error::NotFound(_)) => create(db, key, tenant, &draft, token.as_deref())
                .await
                .map(|_| ()),
            Err(err) => Err(err),
            Ok(stored) => {
                let patch = SourcePatch {
                    write: match &draft.write {
                        Some(write) => Change::Set(write.clone()),
                        None => Change::Clear,
                    },
                    format: Some(draft.format.clone()),
                    url: Some(draft.url.clone()),
                    accounts: Some(draft.accounts.clone()),
                    businesses: Some(draft.businesses.clone()),
                    headers: Some(draft.headers.clone()),
                    interval: draft.interval.clone(),
                    full_every: draft.full_every.clone(),
                    overlap: draft.overlap.clone(),
                    max_requests_per_minute: match draft.max_requests_per_minute {
                        Some(n) => Change::Set(n),
                        None => Change::Clear,
                    },
                    // Only a change re-enables a suspended source; the same `enabled = true`
                    // at every start does not.
                    enabled: draft.enabled.filter(|e| *e != stored.enabled),
                    token: match token {
                        Some(t) => Change::Set(t),
                        None => Change::Keep,
                    },
                };
                update(db, key, tenant, &entry.name, &patch)
                    .await
                    .map(|_| ())
            }
        };
        result.map_err(|err| err.under(&format!("sources file: source {}", entry.name)))?;
    }
    Ok(())
}

/// Marks a source as refused by its vendor (401/403): off the schedule until updated.
pub async fn suspend(db: &impl ConnectionTrait, id: Uuid, why: &str) -> Result<()> {
    Source::update_many()
        .col_expr(Column::Suspended, Expr::val(why.to_string()))
        .col_expr(Column::NextRunAt, Expr::val(Option::<i64>::None))
        .filter(Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
