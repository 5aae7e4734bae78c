//! Which sources of a tenant are written to, cached per process for a few seconds: every
//! contact change asks, and most tenants have none (then a change costs no statement at
//! all for write-back). A source created, changed or deleted through this process is seen
//! at once ([`forget`]); through another replica, within [`CACHE_TTL`].
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::prelude::Source;
use entity::source;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::config::WriteBack;
use crate::error::Result;
use crate::sources::Format;
use crate::sources::catalog::settings_of;
use crate::tenancy::TenantId;

/// How long a tenant's writable sources are trusted without asking the database.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// A source that is written to, and how.
#[derive(Clone, Debug)]
pub struct WritableSource {
    pub source: source::Model,
    pub format: Format,
    pub write: WriteBack,
}

type Cached = (Instant, Arc<Vec<WritableSource>>);

static CACHE: Mutex<Option<HashMap<Uuid, Cached>>> = Mutex::new(None);

/// The tenant's writable sources (one statement when not cached).
pub async fn writable_sources(
    db: &impl ConnectionTrait,
    tenant: TenantId,
) -> Result<Arc<Vec<WritableSource>>> {
    if let Ok(cache) = CACHE.lock()
        && let Some((at, sources)) = cache.as_ref().and_then(|c| c.get(&tenant.0))
        && at.elapsed() < CACHE_TTL
    {
        return Ok(sources.clone());
    }
    let mut sources = Vec::new();
    for row in Source::find()
        .filter(source::Column::TenantId.eq(tenant.0))
        .filter(source::Column::WriteBack.is_not_null())
        .all(db)
        .await?
    {
        let settings = settings_of(&row)?;
        if let Some(write) = settings.write {
            sources.push(WritableSource {
                source: row,
                format: settings.format,
                write,
            });
        }
    }
    let sources = Arc::new(sources);
    if let Ok(mut cache) = CACHE.lock() {
        cache
            .get_or_insert_with(HashMap::new)
            .insert(tenant.0, (Instant::now(), sources.clone()));
    }
    Ok(sources)
}

/// Drops what this process knows of the tenant's writable sources (after a change to them).
pub fn forget(tenant: TenantId) {
    if let Ok(mut cache) = CACHE.lock()
        && let Some(cache) = cache.as_mut()
    {
        cache.remove(&tenant.0);
    }
}
