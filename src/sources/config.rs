//! The sources file (`--sources sources.toml` / `SOURCES_FILE`): vendor APIs an operator
//! declares, one `[[sources]]` table each, upserted into the database at start (see
//! `catalog::upsert_file_sources`); and [`SourceConfig`], what a run of a source needs.
//!
//! ```toml
//! [[sources]]
//! name = "crm"
//! format = "client-contacts"
//! url = "https://crm.example.com/api/contacts"
//! tenant = "0192f0c4-…"
//! token_env = "CRM_TOKEN"
//! headers = { "X-Company" = "acme", "X-Api-Version" = "2" }
//! interval = "15m"
//! full_every = "1d"
//! max_requests_per_minute = 120
//! enabled = true
//!
//! [[sources]]
//! name = "helpdesk"
//! format = "business-contacts"
//! url = "https://helpdesk.example.com/api/v1/businesses/{businessId}/contacts"
//! businesses = ["3c90c3cc-0d44-4b50-8888-8dd25736052a"]
//! tenant = "0192f0c4-…"
//! token_env = "HELPDESK_TOKEN"
//! ```
use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use uuid::Uuid;

use super::definition::{SourceDraft, SourceSettings};
use super::{Format, MapContext};
use crate::error::{Error, Result};
use crate::tenancy::TenantId;
use crate::write_back::config::WriteBackDraft;

/// A vendor's bearer token, opened for a run. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(pub String);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(…)")
    }
}

/// What a run of one source needs: its settings and its token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceConfig {
    /// The source's row id.
    pub id: Uuid,
    /// The tenant the contacts go to.
    pub tenant: Uuid,
    /// The bearer token, if any.
    pub token: Option<BearerToken>,
    /// Name, format, URL and lists, headers, schedule, overlap, pacing.
    pub settings: SourceSettings,
}

impl SourceConfig {
    /// The run configuration of a stored source.
    pub fn from_settings(
        id: Uuid,
        tenant: TenantId,
        settings: SourceSettings,
        token: Option<String>,
    ) -> Self {
        Self {
            id,
            tenant: tenant.0,
            token: token.map(BearerToken),
            settings,
        }
    }

    /// The lists to fetch: each URL (`{accountId}` / `{businessId}` filled from `accounts` /
    /// `businesses`, one list per id) with what the URL says of its records.
    pub fn lists(&self) -> Vec<(String, MapContext)> {
        let s = &self.settings;
        if s.url.contains("{accountId}") {
            s.accounts
                .iter()
                .map(|a| {
                    let context = MapContext {
                        account: Some(a.clone()),
                        business: None,
                    };
                    (s.url.replace("{accountId}", a), context)
                })
                .collect()
        } else if s.url.contains("{businessId}") {
            s.businesses
                .iter()
                .map(|b| {
                    let context = MapContext {
                        account: None,
                        business: Some(b.clone()),
                    };
                    (s.url.replace("{businessId}", b), context)
                })
                .collect()
        } else {
            vec![(s.url.clone(), MapContext::default())]
        }
    }
}

/// One `[[sources]]` table of the sources file.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// Unique in its tenant.
    pub name: String,
    /// The API's payload format.
    pub format: Format,
    /// The list endpoint (see [`SourceConfig::url`]).
    pub url: String,
    /// Values of `{accountId}`.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Values of `{businessId}`.
    #[serde(default)]
    pub businesses: Vec<String>,
    /// The tenant the contacts go to.
    pub tenant: Uuid,
    /// The environment variable that holds the bearer token; read at start and stored
    /// encrypted. Left out, or the variable unset, the stored token stays.
    pub token_env: Option<String>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time between scheduled runs, humantime (`"15m"`).
    pub interval: Option<String>,
    /// Time between FULL runs, humantime (`"1d"`).
    pub full_every: Option<String>,
    /// How far before the watermark an incremental run asks from, humantime (`"5m"`).
    pub overlap: Option<String>,
    /// Requests per minute to pace to.
    pub max_requests_per_minute: Option<i64>,
    /// Whether the scheduler runs it (default true).
    pub enabled: Option<bool>,
    /// How changes are written back (`write = { method = "PATCH", url = "https://…/{id}",
    /// precondition = "if-unmodified-since", conflict_policy = "manual" }`); left out, the
    /// source is read-only.
    pub write: Option<WriteBackDraft>,
}

impl FileSource {
    /// The settings as written, to validate.
    pub fn draft(&self) -> SourceDraft {
        SourceDraft {
            name: self.name.clone(),
            format: self.format.name().to_string(),
            url: self.url.clone(),
            accounts: self.accounts.clone(),
            businesses: self.businesses.clone(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            interval: self.interval.clone(),
            full_every: self.full_every.clone(),
            overlap: self.overlap.clone(),
            max_requests_per_minute: self.max_requests_per_minute,
            enabled: self.enabled,
            write: self.write.clone(),
        }
    }

    /// The token from `token_env`, when that variable is set; a warning when it is named but
    /// unset (the stored token, if any, stays).
    pub fn token(&self) -> Result<Option<String>> {
        let Some(var) = &self.token_env else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(token) => Ok(Some(token)),
            Err(std::env::VarError::NotPresent) => {
                tracing::warn!(source = %self.name, variable = %var, "token_env is not set; keeping the stored token");
                Ok(None)
            }
            // Not the error's text: it would hold the value.
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::invalid(
                "token_env",
                format!("{var} does not hold valid Unicode"),
            )),
        }
    }
}

/// Every source of the file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SourcesFile {
    /// The sources, in file order.
    #[serde(default)]
    pub sources: Vec<FileSource>,
}

impl SourcesFile {
    /// Reads and checks a sources file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?;
        Self::parse(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
    }

    /// Parses the text of a sources file and checks every source as `createSource` would.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: SourcesFile = toml::from_str(text)?;
        let mut names = std::collections::HashSet::new();
        for source in &file.sources {
            if !names.insert((source.tenant, source.name.as_str())) {
                anyhow::bail!("source {:?} is defined twice", source.name);
            }
            if let Err(err) = source.draft().validate() {
                anyhow::bail!("source {:?}: {}", source.name, err.message());
            }
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_expands_lists() {
        let file = SourcesFile::parse(
            r#"
            [[sources]]
            name = "desk"
            format = "business-contacts"
            url = "http://127.0.0.1:1/api/v1/businesses/{businessId}/contacts"
            businesses = ["b1", "b2"]
            tenant = "00000000-0000-0000-0000-000000000001"
            token_env = "DESK_TOKEN"
            headers = { "X-Api-Version" = "2" }
            "#,
        )
        .expect("valid");
        let source = &file.sources[0];
        let settings = source.draft().validate().expect("valid settings");
        let config =
            SourceConfig::from_settings(Uuid::nil(), TenantId(source.tenant), settings, None);
        let lists = config.lists();
        assert_eq!(lists.len(), 2);
        assert_eq!(
            lists[1].0,
            "http://127.0.0.1:1/api/v1/businesses/b2/contacts"
        );
        assert_eq!(lists[1].1.business.as_deref(), Some("b2"));
    }

    #[test]
    fn write_settings_are_read_with_the_format_s_defaults_for_what_is_left_out() {
        let file = SourcesFile::parse(
            r#"
            [[sources]]
            name = "crm"
            format = "client-contacts"
            url = "https://crm.example/api/contacts"
            tenant = "00000000-0000-0000-0000-000000000001"
            write = { conflict_policy = "gateway-wins", delete = true }
            "#,
        )
        .expect("valid");
        let settings = file.sources[0].draft().validate().expect("valid settings");
        let write = settings.write.expect("written to");
        assert_eq!(write.url, "https://crm.example/api/contacts/{id}");
        assert_eq!(
            write.conflict_policy,
            crate::write_back::config::ConflictPolicy::GatewayWins
        );
        assert!(write.delete);
        let bad = r#"
            [[sources]]
            name = "crm"
            format = "client-contacts"
            url = "https://crm.example/api/contacts"
            tenant = "00000000-0000-0000-0000-000000000001"
            write = { method = "PUT" }
        "#;
        assert!(SourcesFile::parse(bad).is_err());
    }

    #[test]
    fn rejects_duplicates_and_missing_lists() {
        let one = r#"
            [[sources]]
            name = "a"
            format = "account-contacts"
            url = "http://x/api/accounts/{accountId}/contacts"
            tenant = "00000000-0000-0000-0000-000000000001"
        "#;
        assert!(SourcesFile::parse(one).is_err());
        let twice = r#"
            [[sources]]
            name = "a"
            format = "client-contacts"
            url = "http://x/api/contacts"
            tenant = "00000000-0000-0000-0000-000000000001"
            [[sources]]
            name = "a"
            format = "client-contacts"
            url = "http://x/api/contacts"
            tenant = "00000000-0000-0000-0000-000000000001"
        "#;
        assert!(SourcesFile::parse(twice).is_err());
    }
}
