//! The sources file (`--sources sources.toml` / `SOURCES_FILE`): the vendor APIs to sync,
//! one `[[sources]]` table each.
//!
//! ```toml
//! [[sources]]
//! name = "crm"
//! format = "client-contacts"
//! url = "https://crm.example.com/api/contacts"
//! tenant = "0192f0c4-…"
//! token_env = "CRM_TOKEN"
//! headers = { "X-Company" = "acme", "X-Api-Version" = "2" }
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

use super::{Format, MapContext};

/// One vendor API to sync.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// Unique name; records are matched by (name, vendor id).
    pub name: String,
    /// The API's payload format.
    pub format: Format,
    /// The list endpoint; `{accountId}` / `{businessId}` are filled from `accounts` /
    /// `businesses`, one list per id.
    pub url: String,
    /// Values of `{accountId}`.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Values of `{businessId}`.
    #[serde(default)]
    pub businesses: Vec<String>,
    /// The tenant the contacts go to.
    pub tenant: Uuid,
    /// The environment variable that holds the bearer token.
    pub token_env: Option<String>,
    /// Extra request headers (seed 003 needs the company and the API version).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl SourceConfig {
    /// The lists to fetch: each URL with what the URL says of its records.
    pub fn lists(&self) -> Vec<(String, MapContext)> {
        if self.url.contains("{accountId}") {
            self.accounts
                .iter()
                .map(|a| {
                    let context = MapContext {
                        account: Some(a.clone()),
                        business: None,
                    };
                    (self.url.replace("{accountId}", a), context)
                })
                .collect()
        } else if self.url.contains("{businessId}") {
            self.businesses
                .iter()
                .map(|b| {
                    let context = MapContext {
                        account: None,
                        business: Some(b.clone()),
                    };
                    (self.url.replace("{businessId}", b), context)
                })
                .collect()
        } else {
            vec![(self.url.clone(), MapContext::default())]
        }
    }
}

/// Every configured source.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SourcesFile {
    /// The sources, in file order.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
}

impl SourcesFile {
    /// Reads and checks a sources file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?;
        Self::parse(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
    }

    /// Parses and checks the text of a sources file.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: SourcesFile = toml::from_str(text)?;
        let mut names = std::collections::HashSet::new();
        for source in &file.sources {
            if !names.insert(source.name.as_str()) {
                anyhow::bail!("source {:?} is defined twice", source.name);
            }
            if url::Url::parse(&source.url.replace(['{', '}'], "")).is_err() {
                anyhow::bail!("source {:?}: url is not a URL", source.name);
            }
            if source.url.contains("{accountId}") && source.accounts.is_empty() {
                anyhow::bail!(
                    "source {:?}: the url has {{accountId}}: list `accounts`",
                    source.name
                );
            }
            if source.url.contains("{businessId}") && source.businesses.is_empty() {
                anyhow::bail!(
                    "source {:?}: the url has {{businessId}}: list `businesses`",
                    source.name
                );
            }
            if source.format == Format::AccountContacts && !source.url.contains("{accountId}") {
                anyhow::bail!(
                    "source {:?}: account-contacts needs {{accountId}} in its url",
                    source.name
                );
            }
        }
        Ok(file)
    }

    /// The source named `name`.
    pub fn get(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
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
        let lists = file.sources[0].lists();
        assert_eq!(lists.len(), 2);
        assert_eq!(
            lists[1].0,
            "http://127.0.0.1:1/api/v1/businesses/b2/contacts"
        );
        assert_eq!(lists[1].1.business.as_deref(), Some("b2"));
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
