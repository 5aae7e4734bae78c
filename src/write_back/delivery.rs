//! One delivery: the request a queued change becomes, and what the vendor's answer means.
//!
//! Every request carries `Idempotency-Key` (the same on each retry of the same body), the
//! source's bearer token and headers, and the source's precondition: `If-Unmodified-Since`
//! (the record's vendor update time seen at the last sync, as an HTTP date, whole seconds)
//! or `If-Match` (its ETag). Answers: 2xx delivered; 412 and 409 a conflict; 429, 5xx and
//! no answer retried (after `Retry-After` if given); any other 4xx fails at once with the
//! vendor's message (seed 001's `{ "error" }`, seed 003's `{ "key", "message" }`).
use std::time::Duration;

use entity::write_back;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::config::{Precondition, WriteBack, WriteMethod};
use super::outbox::operation;
use super::outcomes::Outcome;
use crate::sources::config::SourceConfig;
use crate::sources::fetch::parse_retry_after;
use crate::time::parse_rfc3339_millis;

/// The longest vendor message kept.
const MAX_MESSAGE_CHARS: usize = 500;

/// The HTTP date of a vendor update time (RFC 3339), in whole seconds.
fn http_date(updated_at: &str) -> Option<String> {
    let millis = parse_rfc3339_millis(updated_at)?;
    let time = chrono::DateTime::from_timestamp_millis(millis)?;
    Some(time.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
}

/// The headers of `change` for a source written with `write`: idempotency key, token,
/// the source's own headers, precondition.
pub fn headers(source: &SourceConfig, write: &WriteBack, change: &write_back::Model) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in &source.settings.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    if let Ok(key) = HeaderValue::from_str(&change.idempotency_key) {
        headers.insert("idempotency-key", key);
    }
    if let Some(token) = &source.token
        && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.0))
    {
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    let precondition = match (write.precondition, change.base_version.as_deref()) {
        (Precondition::IfUnmodifiedSince, Some(version)) => {
            http_date(version).map(|date| (reqwest::header::IF_UNMODIFIED_SINCE, date))
        }
        (Precondition::IfMatch, Some(etag)) => {
            let quoted = if etag.starts_with('"') || etag.starts_with("W/") {
                etag.to_string()
            } else {
                format!("\"{etag}\"")
            };
            Some((reqwest::header::IF_MATCH, quoted))
        }
        _ => None,
    };
    if let Some((name, value)) = precondition
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        headers.insert(name, value);
    }
    headers
}

/// Sends `change` and says what became of it.
pub async fn deliver(
    client: &reqwest::Client,
    source: &SourceConfig,
    write: &WriteBack,
    change: &write_back::Model,
) -> Outcome {
    let method = if change.operation == operation::DELETE {
        reqwest::Method::DELETE
    } else {
        match write.method {
            WriteMethod::Patch => reqwest::Method::PATCH,
            WriteMethod::Post => reqwest::Method::POST,
        }
    };
    let mut request = client
        .request(method, &change.url)
        .headers(headers(source, write, change));
    if change.operation != operation::DELETE {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(change.body.clone());
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = response.text().await.unwrap_or_default();
            classify(status, retry_after.as_deref(), &body, chrono::Utc::now())
        }
        // No answer (refused, reset, timed out): the vendor may not have seen it.
        Err(err) => Outcome::Retry {
            error: format!("no answer from the vendor: {}", without_url(&err)),
            retry_after_ms: None,
        },
    }
}

/// A request error's text without its URL (which may carry ids).
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(url.as_str(), "the write URL");
    }
    text
}

/// What an answer means (see the module's description).
pub fn classify(
    status: u16,
    retry_after: Option<&str>,
    body: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Outcome {
    let message = || format!("HTTP {status}: {}", vendor_message(body));
    match status {
        200..=299 => Outcome::Delivered {
            answer: serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .filter(serde_json::Value::is_object),
        },
        409 | 412 => Outcome::Conflict { error: message() },
        429 | 500..=599 => Outcome::Retry {
            error: message(),
            retry_after_ms: retry_after
                .and_then(|v| parse_retry_after(v, now))
                .map(|d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        },
        _ => Outcome::Failed { error: message() },
    }
}

/// The vendor's own message: `error` (seed 001), `message` (seed 003, with its `key` and
/// the `failures` of a 400), or the body's text; at most [`MAX_MESSAGE_CHARS`].
pub fn vendor_message(body: &str) -> String {
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(json) => {
            let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_string);
            let mut text = field("error")
                .or_else(|| field("message"))
                .unwrap_or_else(|| body.trim().to_string());
            if let Some(key) = field("key") {
                text = format!("{key}: {text}");
            }
            if let Some(failures) = json.get("failures").and_then(|f| f.as_array()) {
                let listed: Vec<String> = failures
                    .iter()
                    .map(|f| {
                        format!(
                            "{} {}",
                            f.get("field").and_then(|v| v.as_str()).unwrap_or("?"),
                            f.get("message").and_then(|v| v.as_str()).unwrap_or("")
                        )
                    })
                    .collect();
                text = format!("{text} ({})", listed.join("; "));
            }
            text
        }
        Err(_) => body.trim().to_string(),
    };
    let text = if text.is_empty() {
        "no message".to_string()
    } else {
        text
    };
    text.chars().take(MAX_MESSAGE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn answers_are_delivered_conflicts_retries_or_failures() {
        assert_eq!(
            classify(200, None, r#"{"id":1,"updated_at":"x"}"#, now()),
            Outcome::Delivered {
                answer: Some(serde_json::json!({ "id": 1, "updated_at": "x" }))
            }
        );
        assert_eq!(
            classify(204, None, "", now()),
            Outcome::Delivered { answer: None }
        );
        assert!(matches!(
            classify(412, None, r#"{"key":"precondition_failure","message":"stale"}"#, now()),
            Outcome::Conflict { error } if error == "HTTP 412: precondition_failure: stale"
        ));
        assert!(matches!(
            classify(409, None, "", now()),
            Outcome::Conflict { .. }
        ));
        assert_eq!(
            classify(429, Some("7"), "slow down", now()),
            Outcome::Retry {
                error: "HTTP 429: slow down".into(),
                retry_after_ms: Some(7_000)
            }
        );
        assert!(matches!(
            classify(503, None, "", now()),
            Outcome::Retry {
                retry_after_ms: None,
                ..
            }
        ));
        assert_eq!(
            classify(404, None, r#"{"error":"Contact not found"}"#, now()),
            Outcome::Failed {
                error: "HTTP 404: Contact not found".into()
            }
        );
    }

    #[test]
    fn vendor_messages_name_failing_fields_and_are_cut_short() {
        let body = r#"{"key":"invalid_data","message":"You provided invalid data.","failures":[{"field":"email","message":"is invalid"}]}"#;
        assert_eq!(
            vendor_message(body),
            "invalid_data: You provided invalid data. (email is invalid)"
        );
        assert_eq!(vendor_message(&"x".repeat(2_000)).len(), MAX_MESSAGE_CHARS);
        assert_eq!(vendor_message(""), "no message");
    }

    #[test]
    fn if_unmodified_since_is_the_http_date_of_the_vendor_update_time() {
        assert_eq!(
            http_date("2025-10-28T10:23:49.429Z").as_deref(),
            Some("Tue, 28 Oct 2025 10:23:49 GMT")
        );
        assert_eq!(http_date("yesterday"), None);
    }
}
