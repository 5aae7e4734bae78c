//! Who is calling: every `/graphql` request carries `Authorization: Bearer sk-...`; the key
//! gives the [`Principal`] (tenant and scopes). Verified keys are cached in memory for a
//! short time (`--key-cache-secs`, default 30 s; a revocation takes effect within it), so
//! in the steady state authentication costs no SQL; `lastUsedAt` is written in batches.
pub mod api_keys;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

pub use api_keys::Scope;

use crate::tenancy::TenantId;
use crate::time::now_millis;

/// The caller of a request.
#[derive(Clone, Debug)]
pub struct Principal {
    /// The tenant whose data the caller sees.
    pub tenant: TenantId,
    /// The key used.
    pub key_id: Uuid,
    /// What the key allows.
    pub scopes: Vec<Scope>,
}

impl Principal {
    /// Whether the key has `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

struct CachedKey {
    principal: Principal,
    expires_at: Option<i64>,
    verified: Instant,
}

/// Verifies keys, with a short-lived cache, and remembers when they were used.
pub struct Authenticator {
    db: DatabaseConnection,
    ttl: Duration,
    cache: Mutex<HashMap<String, CachedKey>>,
    used: Mutex<HashMap<Uuid, i64>>,
}

/// Why a request is not authenticated.
#[derive(Debug)]
pub enum AuthRejection {
    /// No key, or not a valid one: HTTP 401 `UNAUTHENTICATED`.
    Unauthenticated(&'static str),
    /// The key could not be checked because the database is unavailable: HTTP 503
    /// `SERVICE_UNAVAILABLE` with `Retry-After`, so that clients retry instead of treating
    /// a valid key as bad (and logging their user out).
    Unavailable,
    /// The key could not be checked for another reason (the server's fault): HTTP 500.
    Failed,
}

use AuthRejection::Unauthenticated;

impl Authenticator {
    /// An authenticator over `db`, caching verified keys for `ttl`.
    pub fn new(db: DatabaseConnection, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            db,
            ttl,
            cache: Mutex::new(HashMap::new()),
            used: Mutex::new(HashMap::new()),
        })
    }

    /// The principal of an `Authorization` header value.
    pub async fn verify(&self, authorization: Option<&str>) -> Result<Principal, AuthRejection> {
        let header = authorization.ok_or(Unauthenticated(
            "missing Authorization header: send `Authorization: Bearer sk-...`",
        ))?;
        let key = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|k| k.starts_with("sk-") && k.len() > 11)
            .ok_or(Unauthenticated(
                "malformed Authorization header: expected `Bearer sk-...`",
            ))?;
        let hash = api_keys::hash_key(key);
        let now = now_millis();
        let cached = self.cache.lock().ok().and_then(|cache| {
            cache.get(&hash).and_then(|c| {
                (c.verified.elapsed() < self.ttl && c.expires_at.is_none_or(|at| at > now))
                    .then(|| c.principal.clone())
            })
        });
        let principal = match cached {
            Some(principal) => principal,
            None => {
                let record = api_keys::find_valid(&self.db, &hash)
                    .await
                    .map_err(|err| {
                        tracing::warn!(error = %err.detail(), "could not verify an API key");
                        match err {
                            crate::error::Error::Unavailable(_) => AuthRejection::Unavailable,
                            _ => AuthRejection::Failed,
                        }
                    })?
                    .ok_or(Unauthenticated("unknown, revoked or expired API key"))?;
                let principal = Principal {
                    tenant: TenantId(record.tenant_id),
                    key_id: record.id,
                    scopes: api_keys::scopes_of(&record),
                };
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(
                        hash,
                        CachedKey {
                            principal: principal.clone(),
                            expires_at: record.expires_at,
                            verified: Instant::now(),
                        },
                    );
                }
                principal
            }
        };
        if let Ok(mut used) = self.used.lock() {
            used.insert(principal.key_id, now);
        }
        Ok(principal)
    }

    /// Writes the `lastUsedAt` of the keys used since the last flush.
    pub async fn flush_last_used(&self) {
        let used: Vec<(Uuid, i64)> = match self.used.lock() {
            Ok(mut used) => used.drain().collect(),
            Err(_) => return,
        };
        if let Err(err) = api_keys::record_last_used(&self.db, &used).await {
            tracing::warn!(error = %err.detail(), "could not record when keys were used");
        }
    }
}

/// Any router state that holds the [`Authenticator`] (axum's `FromRef`) can extract the
/// caller.
impl<S> FromRequestParts<S> for Principal
where
    Arc<Authenticator>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        Arc::<Authenticator>::from_ref(state).verify(header).await
    }
}
