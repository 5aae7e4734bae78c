//! How a source is written to: `write = { method, url, precondition, conflict_policy,
//! delete }` in the sources file, `write: { method url precondition conflictPolicy delete }`
//! in GraphQL. A source without it is read-only. What is left out takes the format's
//! default ([`WriteBack::defaults`]).
use serde::{Deserialize, Serialize};

use crate::error::FieldFailure;
use crate::sources::Format;

/// The HTTP method of a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WriteMethod {
    Patch,
    Post,
}

/// The precondition a change carries, so that it never overwrites a change made at the
/// vendor since the last sync (a 412 or 409 answer is a conflict).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Precondition {
    /// None: the last write wins.
    None,
    /// `If-Match` with the record's ETag seen at the last sync.
    IfMatch,
    /// `If-Unmodified-Since` with the record's vendor `updated_at` seen at the last sync
    /// (seed 003 answers 412 when it fails).
    IfUnmodifiedSince,
}

/// What happens to a change the vendor refused as a conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    /// Kept as a conflict until someone resolves it (`resolveWriteConflict`).
    Manual,
    /// The vendor's value stays; the change is dropped.
    SourceWins,
    /// The change is sent again against the vendor's new version.
    GatewayWins,
}

/// A source's write settings, valid. Stored as JSON in `sources.write_back`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteBack {
    pub method: WriteMethod,
    /// The record's URL; `{id}` is the vendor id, `{accountId}` and `{businessId}` the
    /// record's account and business at the vendor.
    pub url: String,
    pub precondition: Precondition,
    pub conflict_policy: ConflictPolicy,
    /// Whether `deleteContact` sends the vendor a `DELETE` of the record's URL.
    pub delete: bool,
}

/// Write settings as given (any field may be left out for the format's default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteBackDraft {
    pub method: Option<String>,
    pub url: Option<String>,
    pub precondition: Option<String>,
    pub conflict_policy: Option<String>,
    pub delete: Option<bool>,
}

impl WriteBack {
    /// The format's default, given the source's list URL: seed 001's `PATCH
    /// /api/contacts/{id}` on the list's host for `account-contacts`, the list URL plus
    /// `/{id}` for the others; `if-unmodified-since` for seed 003 (`client-contacts`), no
    /// precondition for the others; conflicts kept for a person (`manual`); no deletes.
    pub fn defaults(format: Format, list_url: &str) -> Self {
        let url = match format {
            Format::AccountContacts => match url::Url::parse(&list_url.replace("{accountId}", "a"))
            {
                Ok(parsed) => format!(
                    "{}/api/contacts/{{id}}",
                    parsed.origin().ascii_serialization()
                ),
                Err(_) => String::new(),
            },
            _ => {
                let base = list_url.split('?').next().unwrap_or_default();
                format!("{}/{{id}}", base.trim_end_matches('/'))
            }
        };
        WriteBack {
            method: WriteMethod::Patch,
            url,
            precondition: if format == Format::ClientContacts {
                Precondition::IfUnmodifiedSince
            } else {
                Precondition::None
            },
            conflict_policy: ConflictPolicy::Manual,
            delete: false,
        }
    }

    /// The same settings as a draft, for a patch to change.
    pub fn to_draft(&self) -> WriteBackDraft {
        WriteBackDraft {
            method: Some(method_name(self.method).to_string()),
            url: Some(self.url.clone()),
            precondition: Some(precondition_name(self.precondition).to_string()),
            conflict_policy: Some(policy_name(self.conflict_policy).to_string()),
            delete: Some(self.delete),
        }
    }
}

/// `PATCH` or `POST`.
pub fn method_name(method: WriteMethod) -> &'static str {
    match method {
        WriteMethod::Patch => "PATCH",
        WriteMethod::Post => "POST",
    }
}

/// `none`, `if-match` or `if-unmodified-since`.
pub fn precondition_name(precondition: Precondition) -> &'static str {
    match precondition {
        Precondition::None => "none",
        Precondition::IfMatch => "if-match",
        Precondition::IfUnmodifiedSince => "if-unmodified-since",
    }
}

/// `manual`, `source-wins` or `gateway-wins`.
pub fn policy_name(policy: ConflictPolicy) -> &'static str {
    match policy {
        ConflictPolicy::Manual => "manual",
        ConflictPolicy::SourceWins => "source-wins",
        ConflictPolicy::GatewayWins => "gateway-wins",
    }
}

impl WriteBackDraft {
    /// The valid settings (defaults for what is left out), or every failure, named under
    /// `write.` (`write.url`, `write.conflictPolicy`).
    pub fn validate(
        &self,
        format: Format,
        list_url: &str,
        failures: &mut Vec<FieldFailure>,
    ) -> WriteBack {
        let mut write = WriteBack::defaults(format, list_url);
        if let Some(method) = &self.method {
            match method.trim().to_ascii_uppercase().as_str() {
                "PATCH" => write.method = WriteMethod::Patch,
                "POST" => write.method = WriteMethod::Post,
                // A change sends only the fields that changed: as a PUT it would clear the
                // rest of the record.
                "PUT" => failures.push(FieldFailure::new(
                    "write.method",
                    "PUT replaces the whole record, and a change sends only what changed: \
                     use PATCH or POST",
                )),
                _ => failures.push(FieldFailure::new("write.method", "one of PATCH, POST")),
            }
        }
        if let Some(url) = &self.url {
            write.url = url.trim().to_string();
        }
        let filled = write
            .url
            .replace("{id}", "1")
            .replace("{accountId}", "a")
            .replace("{businessId}", "b");
        match url::Url::parse(&filled) {
            Ok(parsed) if !parsed.username().is_empty() || parsed.password().is_some() => failures
                .push(FieldFailure::new(
                    "write.url",
                    "must not hold credentials: set the bearer token with `token`",
                )),
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
                if !write.url.contains("{id}") {
                    failures.push(FieldFailure::new(
                        "write.url",
                        "must hold {id}, the record's id at the vendor",
                    ));
                }
            }
            _ => failures.push(FieldFailure::new(
                "write.url",
                "must be an http or https URL",
            )),
        }
        if let Some(precondition) = &self.precondition {
            match precondition.trim().to_ascii_lowercase().as_str() {
                "none" => write.precondition = Precondition::None,
                "if-match" => write.precondition = Precondition::IfMatch,
                "if-unmodified-since" => write.precondition = Precondition::IfUnmodifiedSince,
                _ => failures.push(FieldFailure::new(
                    "write.precondition",
                    "one of none, if-match, if-unmodified-since",
                )),
            }
        }
        if let Some(policy) = &self.conflict_policy {
            match policy.trim().to_ascii_lowercase().as_str() {
                "manual" => write.conflict_policy = ConflictPolicy::Manual,
                "source-wins" => write.conflict_policy = ConflictPolicy::SourceWins,
                "gateway-wins" => write.conflict_policy = ConflictPolicy::GatewayWins,
                _ => failures.push(FieldFailure::new(
                    "write.conflictPolicy",
                    "one of manual, source-wins, gateway-wins",
                )),
            }
        }
        if let Some(delete) = self.delete {
            write.delete = delete;
        }
        write
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(draft: &WriteBackDraft, format: Format, list: &str) -> WriteBack {
        let mut failures = Vec::new();
        let write = draft.validate(format, list, &mut failures);
        assert!(failures.is_empty(), "{failures:?}");
        write
    }

    #[test]
    fn each_format_has_a_default_from_its_list_url() {
        let empty = WriteBackDraft::default();
        let account = valid(
            &empty,
            Format::AccountContacts,
            "https://crm.example/api/accounts/{accountId}/contacts",
        );
        assert_eq!(account.url, "https://crm.example/api/contacts/{id}");
        assert_eq!(account.method, WriteMethod::Patch);
        assert_eq!(account.precondition, Precondition::None);
        let client = valid(
            &empty,
            Format::ClientContacts,
            "https://desk.example/api/contacts?x=1",
        );
        assert_eq!(client.url, "https://desk.example/api/contacts/{id}");
        assert_eq!(client.precondition, Precondition::IfUnmodifiedSince);
        assert_eq!(client.conflict_policy, ConflictPolicy::Manual);
        assert!(!client.delete);
        let business = valid(
            &empty,
            Format::BusinessContacts,
            "https://b.example/api/v1/businesses/{businessId}/contacts",
        );
        assert_eq!(
            business.url,
            "https://b.example/api/v1/businesses/{businessId}/contacts/{id}"
        );
    }

    #[test]
    fn every_bad_field_is_named_and_a_draft_round_trips() {
        let draft = WriteBackDraft {
            method: Some("GET".into()),
            url: Some("ftp://x/{id}".into()),
            precondition: Some("maybe".into()),
            conflict_policy: Some("coin-toss".into()),
            delete: None,
        };
        let mut failures = Vec::new();
        draft.validate(
            Format::ClientContacts,
            "https://x/api/contacts",
            &mut failures,
        );
        let fields: Vec<&str> = failures.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "write.method",
                "write.url",
                "write.precondition",
                "write.conflictPolicy"
            ]
        );
        let mut failures = Vec::new();
        WriteBackDraft {
            url: Some("https://x/api/contacts".into()),
            ..Default::default()
        }
        .validate(
            Format::ClientContacts,
            "https://x/api/contacts",
            &mut failures,
        );
        assert_eq!(failures[0].field, "write.url", "no {{id}}");
        let write = valid(
            &WriteBackDraft {
                method: Some("post".into()),
                conflict_policy: Some("gateway-wins".into()),
                delete: Some(true),
                ..Default::default()
            },
            Format::PipelineContacts,
            "https://p.example/api/contacts",
        );
        assert_eq!(
            valid(
                &write.to_draft(),
                Format::PipelineContacts,
                "https://other/"
            ),
            write
        );
    }
}
