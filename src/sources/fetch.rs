//! Fetching one page of a vendor API: pacing to the source's `maxRequestsPerMinute`,
//! waiting out rate limits (429, 503 with `Retry-After`, in seconds or as an HTTP date) up
//! to the run's budget, retrying failures with exponential backoff, and counting requests.
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::SourceConfig;
use crate::error::{Error, Result};
use crate::metrics::Metrics;

/// The largest page body read (a page holds 100 records).
pub const MAX_PAGE_BYTES: usize = 32 << 20;

/// How failed requests are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts per page for 5xx answers and failed connections, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubles with each further one.
    pub backoff: Duration,
    /// Longest wait between two attempts after a failure (not a rate limit).
    pub max_wait: Duration,
    /// The most a run waits, in all, on a vendor's rate limit (429, or 503 with
    /// `Retry-After`); a wait past it stops the run with `RATE_LIMITED`.
    pub rate_limit_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(30),
            rate_limit_budget: Duration::from_secs(5 * 60),
        }
    }
}

/// A `Retry-After` value: delay-seconds or an HTTP date (RFC 9110 §10.2.3), as a wait from
/// `now`; a date in the past is no wait.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (date.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// Fetches the pages of one run of one source, and counts what it sent.
pub struct Fetcher<'a> {
    client: &'a reqwest::Client,
    source: &'a SourceConfig,
    retry: RetryPolicy,
    metrics: Option<&'a Metrics>,
    /// Cancelled when the server shuts down: waits and requests stop at once.
    stopping: &'a CancellationToken,
    /// Whether URLs naming private or loopback addresses may be fetched.
    allow_private_networks: bool,
    /// The shortest time between two requests (`maxRequestsPerMinute`).
    min_gap: Option<Duration>,
    last_sent: Option<Instant>,
    /// Time waited on rate limits so far in this run.
    waited: Duration,
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests that repeated a failed or rate-limited one.
    pub retries: u64,
}

impl<'a> Fetcher<'a> {
    /// A fetcher for one run of `source`.
    pub fn new(
        client: &'a reqwest::Client,
        source: &'a SourceConfig,
        retry: RetryPolicy,
        metrics: Option<&'a Metrics>,
        stopping: &'a CancellationToken,
        allow_private_networks: bool,
    ) -> Self {
        let min_gap = source
            .settings
            .max_requests_per_minute
            .map(|n| Duration::from_secs(60) / n.max(1));
        Self {
            client,
            source,
            retry,
            metrics,
            stopping,
            allow_private_networks,
            min_gap,
            last_sent: None,
            waited: Duration::ZERO,
            requests: 0,
            retries: 0,
        }
    }

    /// Sleeps `wait`, or fails with `Interrupted` when the server begins to shut down.
    async fn sleep(&self, wait: Duration, url: &str) -> Result<()> {
        tokio::select! {
            () = tokio::time::sleep(wait) => Ok(()),
            () = self.stopping.cancelled() => Err(self.interrupted(url)),
        }
    }

    fn interrupted(&self, url: &str) -> Error {
        Error::Interrupted(format!(
            "source {}: the server is shutting down; the next run resumes at {url}",
            self.source.settings.name
        ))
    }

    /// Waits until the next request keeps to `maxRequestsPerMinute`.
    async fn pace(&mut self, url: &str) -> Result<()> {
        if let (Some(gap), Some(last)) = (self.min_gap, self.last_sent) {
            let wait = (last + gap).saturating_duration_since(Instant::now());
            self.sleep(wait, url).await?;
        }
        self.last_sent = Some(Instant::now());
        Ok(())
    }

    fn count(&self, status: &str) {
        if let Some(metrics) = self.metrics {
            metrics.vendor_request(self.source.tenant, &self.source.settings.name, status);
        }
    }

    /// GETs one page as JSON. 401 and 403 fail with `UpstreamRefused`, other client errors
    /// with `Upstream`; a body that is not JSON with `BadPayload`; a rate limit past the
    /// run's budget with `RateLimited`; 5xx and failed connections after
    /// [`RetryPolicy::attempts`] with `Upstream`.
    pub async fn get(&mut self, url: &str, query: &[(String, String)]) -> Result<Value> {
        let name = &self.source.settings.name;
        if !self.allow_private_networks {
            super::network::check_url(url)
                .map_err(|why| Error::Upstream(format!("source {name}: {why}")))?;
        }
        let mut failures = 0u32;
        let mut last_problem;
        loop {
            self.pace(url).await?;
            let mut request = self
                .client
                .get(url)
                .query(query)
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(token) = &self.source.token {
                request = request.bearer_auth(&token.0);
            }
            for (header, value) in &self.source.settings.headers {
                request = request.header(header, value);
            }
            self.requests += 1;
            let sent = tokio::select! {
                sent = request.send() => sent,
                () = self.stopping.cancelled() => return Err(self.interrupted(url)),
            };
            let response = match sent {
                Err(err) => {
                    self.count("error");
                    last_problem = format!("request failed: {err}");
                    failures += 1;
                    self.after_failure(failures, None, &last_problem, url)
                        .await?;
                    continue;
                }
                Ok(response) => response,
            };
            let status = response.status();
            self.count(status.as_str());
            if status.is_success() {
                let body = self.body(response, url).await?;
                return serde_json::from_slice(&super::payload::normalise(&body)).map_err(|err| {
                    Error::BadPayload(format!(
                        "source {name}: malformed page from {url}: not valid JSON: {err}"
                    ))
                });
            }
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, Utc::now()));
            let detail = vendor_message(&response.text().await.unwrap_or_default());
            let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some());
            if rate_limited {
                let wait = retry_after.unwrap_or(self.retry.backoff);
                // Charged at least the backoff, so that a vendor answering `Retry-After: 0`
                // over and over still runs the budget out.
                let charged = wait.max(self.retry.backoff);
                if self.waited + charged > self.retry.rate_limit_budget {
                    return Err(Error::RateLimited(format!(
                        "source {name}: the API kept answering {status}{detail}; waited {} of \
                         the run's {} budget, {} more asked; the next run resumes here",
                        humantime::format_duration(self.waited),
                        humantime::format_duration(self.retry.rate_limit_budget),
                        humantime::format_duration(wait)
                    )));
                }
                self.waited += charged;
                self.retries += 1;
                self.sleep(wait, url).await?;
                continue;
            }
            if status.is_server_error() {
                last_problem = format!("{status}{detail}");
                failures += 1;
                self.after_failure(failures, retry_after, &last_problem, url)
                    .await?;
                continue;
            }
            let what = match status.as_u16() {
                401 => "the API refused the token (401)",
                403 => "the token lacks a permission (403)",
                412 => "the API reported a failed precondition (412)",
                _ => "the API refused the request",
            };
            let message = format!("source {name}: {what}: {status}{detail}");
            return Err(match status.as_u16() {
                401 | 403 => Error::UpstreamRefused(message),
                _ => Error::Upstream(message),
            });
        }
    }

    /// The body of a page, at most [`MAX_PAGE_BYTES`] (`BAD_PAYLOAD` past it).
    async fn body(&self, mut response: reqwest::Response, url: &str) -> Result<Vec<u8>> {
        let name = &self.source.settings.name;
        let too_large = || {
            Error::BadPayload(format!(
                "source {name}: the page from {url} is larger than {} MiB",
                MAX_PAGE_BYTES >> 20
            ))
        };
        if response
            .content_length()
            .is_some_and(|n| n > MAX_PAGE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| Error::Upstream(format!("source {name}: reading {url}: {err}")))?
        {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// After the `failures`-th failed attempt: waits before the next, or gives up.
    async fn after_failure(
        &mut self,
        failures: u32,
        retry_after: Option<Duration>,
        problem: &str,
        url: &str,
    ) -> Result<()> {
        if failures >= self.retry.attempts.max(1) {
            return Err(Error::Upstream(format!(
                "source {}: gave up on {url} after {failures} attempts: {problem}",
                self.source.settings.name
            )));
        }
        let backoff = self
            .retry
            .backoff
            .saturating_mul(1 << (failures - 1).min(16));
        self.retries += 1;
        self.sleep(retry_after.unwrap_or(backoff).min(self.retry.max_wait), url)
            .await
    }
}

/// `: message` from a vendor error body (`{ key, message }` or `{ error }`), if any.
fn vendor_message(body: &str) -> String {
    let value: Value = serde_json::from_str(body).unwrap_or_default();
    let text = value
        .get("message")
        .or_else(|| value.get("error"))
        .and_then(Value::as_str);
    match text {
        Some(text) => format!(": {text}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T08:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Mon, 30 Nov 2026 08:00:12 GMT", now),
            Some(Duration::from_secs(12))
        );
        assert_eq!(
            parse_retry_after("Mon, 30 Nov 2026 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn vendor_messages_are_read_from_either_shape() {
        assert_eq!(
            vendor_message(r#"{"error":"Contact not found"}"#),
            ": Contact not found"
        );
        assert_eq!(vendor_message(r#"{"key":"k","message":"Nope"}"#), ": Nope");
        assert_eq!(vendor_message("<html>"), "");
    }
}
