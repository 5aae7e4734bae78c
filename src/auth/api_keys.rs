//! API keys: `sk-` followed by 43 characters of base64url (256 random bits). Only the
//! SHA-256 hash is stored; the key is shown once, when it is created.
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::prelude::{ApiKey, Tenant};
use entity::{api_key, tenant};
use rand::RngCore;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::tenancy::TenantId;
use crate::time::now_millis;

/// What a key allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Queries (seed 003's `crm.view`).
    ContactsRead,
    /// Mutations.
    ContactsWrite,
    /// Reading, changing and running the tenant's sources (vendor APIs).
    SourcesManage,
    /// Reading and changing the tenant's webhooks.
    WebhooksManage,
}

impl Scope {
    /// The scope's name, e.g. `contacts:read`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ContactsRead => "contacts:read",
            Scope::ContactsWrite => "contacts:write",
            Scope::SourcesManage => "sources:manage",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim() {
            "contacts:read" => Ok(Scope::ContactsRead),
            "contacts:write" => Ok(Scope::ContactsWrite),
            "sources:manage" => Ok(Scope::SourcesManage),
            "webhooks:manage" => Ok(Scope::WebhooksManage),
            other => Err(format!(
                "unknown scope {other:?}: use contacts:read, contacts:write, sources:manage and/or webhooks:manage"
            )),
        }
    }
}

/// Reads a comma-separated scope list.
pub fn parse_scopes(list: &str) -> std::result::Result<Vec<Scope>, String> {
    let mut scopes: Vec<Scope> = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let scope: Scope = part.parse()?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if scopes.is_empty() {
        return Err("give at least one scope".into());
    }
    Ok(scopes)
}

fn format_scopes(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Hex SHA-256 of a key.
pub fn hash_key(key: &str) -> String {
    format!("{:x}", Sha256::digest(key.as_bytes()))
}

/// A key that was just created: the only time the key itself is known.
pub struct CreatedKey {
    /// The key, to hand to the client.
    pub key: String,
    /// Its stored record.
    pub record: api_key::Model,
}

/// Creates a key for `tenant`.
pub async fn create_key(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    scopes: &[Scope],
    name: Option<String>,
    expires_in: Option<Duration>,
) -> Result<CreatedKey> {
    if Tenant::find_by_id(tenant.0).one(db).await?.is_none() {
        return Err(Error::NotFound("Tenant".into()));
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!("sk-{}", URL_SAFE_NO_PAD.encode(bytes));
    let now = now_millis();
    let record = api_key::Model {
        id: Uuid::now_v7(),
        tenant_id: tenant.0,
        name,
        prefix: key[..11].to_string(),
        key_hash: hash_key(&key),
        scopes: format_scopes(scopes),
        created_at: now,
        last_used_at: None,
        expires_at: expires_in.map(|d| now + d.as_millis() as i64),
        revoked_at: None,
    };
    record.clone().into_active_model().insert(db).await?;
    Ok(CreatedKey { key, record })
}

/// The tenant's keys, newest first (never the keys themselves).
pub async fn list_keys(db: &DatabaseConnection, tenant: TenantId) -> Result<Vec<api_key::Model>> {
    Ok(ApiKey::find()
        .filter(api_key::Column::TenantId.eq(tenant.0))
        .order_by_desc(api_key::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Revokes the key with this prefix; `NOT_FOUND` when there is none.
pub async fn revoke_key(db: &impl ConnectionTrait, prefix: &str) -> Result<api_key::Model> {
    let key = ApiKey::find()
        .filter(api_key::Column::Prefix.eq(prefix))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound("API key".into()))?;
    let mut revoked = key.clone();
    revoked.revoked_at = Some(now_millis());
    ApiKey::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::val(revoked.revoked_at))
        .filter(api_key::Column::Id.eq(key.id))
        .exec(db)
        .await?;
    Ok(revoked)
}

/// The valid (unrevoked, unexpired) key whose hash is `hash`, if any.
pub async fn find_valid(db: &DatabaseConnection, hash: &str) -> Result<Option<api_key::Model>> {
    let found = ApiKey::find()
        .filter(api_key::Column::KeyHash.eq(hash))
        .one(db)
        .await?;
    Ok(found.filter(|k| {
        constant_time_eq::constant_time_eq(k.key_hash.as_bytes(), hash.as_bytes())
            && k.revoked_at.is_none()
            && k.expires_at.is_none_or(|at| at > now_millis())
    }))
}

/// Records when keys were last used: one UPDATE per key, not per request.
pub async fn record_last_used(db: &DatabaseConnection, used: &[(Uuid, i64)]) -> Result<()> {
    for (id, at) in used {
        ApiKey::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::val(*at))
            .filter(api_key::Column::Id.eq(*id))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Creates a tenant.
pub async fn create_tenant(db: &DatabaseConnection, name: &str) -> Result<tenant::Model> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("name", "must not be empty"));
    }
    let tenant = tenant::Model {
        id: Uuid::now_v7(),
        name: name.to_string(),
        created_at: now_millis(),
    };
    tenant.clone().into_active_model().insert(db).await?;
    Ok(tenant)
}

/// Every tenant, oldest first.
pub async fn list_tenants(db: &DatabaseConnection) -> Result<Vec<tenant::Model>> {
    Ok(Tenant::find()
        .order_by_asc(tenant::Column::CreatedAt)
        .all(db)
        .await?)
}

/// Name of the key `serve` makes for the demo tenant at each start.
pub const DEMO_KEY_NAME: &str = "demo (serve)";

/// Revokes the demo tenant's previous serve key and makes a new one with every scope.
pub async fn fresh_demo_key(db: &DatabaseConnection, tenant: TenantId) -> Result<CreatedKey> {
    let now = now_millis();
    ApiKey::update_many()
        .col_expr(api_key::Column::RevokedAt, Expr::val(now))
        .filter(api_key::Column::TenantId.eq(tenant.0))
        .filter(api_key::Column::Name.eq(DEMO_KEY_NAME))
        .filter(api_key::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    create_key(
        db,
        tenant,
        &[
            Scope::ContactsRead,
            Scope::ContactsWrite,
            Scope::SourcesManage,
            Scope::WebhooksManage,
        ],
        Some(DEMO_KEY_NAME.to_string()),
        None,
    )
    .await
}

/// The scopes stored on a key.
pub fn scopes_of(key: &api_key::Model) -> Vec<Scope> {
    key.scopes
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_reject_unknown_ones() {
        assert_eq!(
            parse_scopes("contacts:read, contacts:write,contacts:read"),
            Ok(vec![Scope::ContactsRead, Scope::ContactsWrite])
        );
        assert!(parse_scopes("crm.view").is_err());
        assert!(parse_scopes("").is_err());
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
