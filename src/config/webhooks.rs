//! Webhook configuration: the global delivery settings and each app's targets, with their rules.
//! Must not deliver anything: `webhooks/` does.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::WebhookKind;

/// How webhooks are batched, delayed and delivered (all apps).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Milliseconds an app's events are collected before one request is sent.
    pub batch_ms: u64,
    /// Most events in one request.
    pub batch_max_events: usize,
    /// Milliseconds `channel_vacated` and `member_removed` are held; cancelled if the channel or
    /// member comes back within it (page reloads, quick reconnects).
    pub vacate_delay_ms: u64,
    /// Seconds one delivery attempt may take.
    pub request_timeout_secs: u64,
    /// Milliseconds before the first retry; doubles each time (with jitter), at most a minute.
    pub retry_initial_ms: u64,
    /// Seconds after which a failing batch is given up (counted as failed).
    pub retry_max_secs: u64,
    /// Events waiting to be batched; beyond it new events are dropped (counted and logged).
    pub queue_events: usize,
    /// Batches waiting for delivery or a retry; beyond it new batches are dropped (counted).
    pub max_pending_batches: usize,
    /// Requests in flight at once.
    pub max_concurrent_requests: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            batch_ms: 50,
            batch_max_events: 100,
            vacate_delay_ms: 3000,
            request_timeout_secs: 10,
            retry_initial_ms: 1000,
            retry_max_secs: 300,
            queue_events: 10_000,
            max_pending_batches: 1000,
            max_concurrent_requests: 16,
        }
    }
}

/// One webhook target of an app (`[[apps.webhooks]]`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL that receives `POST`s.
    pub url: String,
    /// Event kinds wanted; empty for all.
    pub events: Vec<WebhookKind>,
    /// Only channels starting with this (empty: any).
    pub channel_prefix: String,
    /// Only channels ending with this (empty: any).
    pub channel_suffix: String,
    /// Extra request headers (cannot replace `Content-Type`, `X-Pusher-Key`, `X-Pusher-Signature`).
    pub headers: BTreeMap<String, String>,
}

/// Headers Herald sets itself on every webhook request.
pub const RESERVED_HEADERS: [&str; 3] = ["content-type", "x-pusher-key", "x-pusher-signature"];

/// Problems with the global webhook settings, as (key, message): each number within its
/// bounds, so no delay can overflow a deadline.
pub(super) fn check_settings(w: &WebhooksConfig) -> Vec<(String, String)> {
    let WebhooksConfig {
        batch_ms,
        batch_max_events,
        vacate_delay_ms,
        request_timeout_secs,
        retry_initial_ms,
        retry_max_secs,
        queue_events,
        max_pending_batches,
        max_concurrent_requests,
    } = w;
    let mut out = Vec::new();
    for (key, value, min, max) in [
        ("webhooks.batch_ms", *batch_ms, 0, 60_000),
        ("webhooks.batch_max_events", *batch_max_events as u64, 1, 10_000),
        ("webhooks.vacate_delay_ms", *vacate_delay_ms, 0, 600_000),
        ("webhooks.request_timeout_secs", *request_timeout_secs, 1, 300),
        ("webhooks.retry_initial_ms", *retry_initial_ms, 1, 600_000),
        ("webhooks.retry_max_secs", *retry_max_secs, 0, 7 * 24 * 3600),
        ("webhooks.queue_events", *queue_events as u64, 1, 10_000_000),
        ("webhooks.max_pending_batches", *max_pending_batches as u64, 1, 1_000_000),
        ("webhooks.max_concurrent_requests", *max_concurrent_requests as u64, 1, 10_000),
    ] {
        if value < min {
            out.push((key.to_owned(), format!("must be at least {min} (found {value})")));
        } else if value > max {
            out.push((key.to_owned(), format!("must be at most {max} (found {value})")));
        }
    }
    out
}

/// Problems with one target, as (field, message). Never quotes the URL (it may carry
/// credentials) nor a header value (it may be a token).
pub(super) fn check_target(t: &WebhookConfig) -> Vec<(&'static str, String)> {
    let WebhookConfig { url, events: _, channel_prefix: _, channel_suffix: _, headers } = t;
    let mut out = Vec::new();
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || reqwest::Url::parse(url).is_err() {
        out.push(("url", "must be an http:// or https:// URL".to_owned()));
    }
    for (name, value) in headers {
        let shown: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            out.push(("headers", format!("`{shown}` is not a valid HTTP header name")));
        } else if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            out.push(("headers", format!("`{shown}` is set by Herald and cannot be overridden")));
        }
        if http::HeaderValue::from_str(value).is_err() {
            out.push(("headers", format!("the value of `{shown}` is not a valid HTTP header value")));
        }
    }
    out
}

/// Lists header names only: their values may be secrets.
impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { url, events, channel_prefix, channel_suffix, headers } = self;
        f.debug_struct("WebhookConfig")
            .field("url", &crate::config::redacted_url(url))
            .field("events", events)
            .field("channel_prefix", channel_prefix)
            .field("channel_suffix", channel_suffix)
            .field("headers", &headers.keys().map(|k| (k, "***")).collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    #[test]
    fn targets_parse_and_are_checked() {
        let ok = "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n[[apps.webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\nevents = [\"channel_occupied\", \"client_event\"]\nheaders = { \"X-Token\" = \"t\" }\n";
        let cfg = load_str(ok, []).unwrap();
        assert_eq!(cfg.apps[0].webhooks[0].events.len(), 2);

        let bad = "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n[[apps.webhooks]]\nurl = \"ftp://x\"\nheaders = { \"X-Pusher-Signature\" = \"t\" }\n";
        let text = load_str(bad, []).unwrap_err().to_string();
        assert!(text.contains("apps[0].webhooks[0].url"), "{text}");
        assert!(text.contains("apps[0].webhooks[0].headers"), "{text}");

        let unknown = "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n[[apps.webhooks]]\nurl = \"http://x\"\nevents = [\"nope\"]\n";
        let text = load_str(unknown, []).unwrap_err().to_string();
        assert!(text.contains("line 7"), "{text}");
    }
}
