//! `[ingest]`: Laravel's `redis` broadcaster as an event source, and its rules; also the rule
//! shared with `[socketio]` for naming the app an endpoint serves.
//! Must not read Redis: `ingest/` does; this is data and its rules.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{AdapterConfig, AppConfig, redacted_redis_url};

/// Laravel's `redis` broadcaster read as an event source: what it PUBLISHes is delivered to
/// the channel's subscribers. `Debug` never shows a password in the URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Read Laravel's broadcasts.
    pub enabled: bool,
    /// The Redis Laravel publishes to; empty: `adapter.redis_url`.
    pub redis_url: String,
    /// Laravel's Redis key prefix (`database.redis.options.prefix`), stripped from channel
    /// names when present; names without it are taken as they are.
    pub key_prefix: String,
    /// The app the broadcasts belong to; empty: the only app.
    pub app_id: String,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self { enabled: false, redis_url: String::new(), key_prefix: "laravel_database_".into(), app_id: String::new() }
    }
}

impl fmt::Debug for IngestConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestConfig")
            .field("enabled", &self.enabled)
            .field("redis_url", &redacted_redis_url(&self.redis_url))
            .field("key_prefix", &self.key_prefix)
            .field("app_id", &self.app_id)
            .finish()
    }
}

impl IngestConfig {
    /// The Redis to read from: `redis_url`, or the adapter's.
    pub fn url<'a>(&'a self, adapter: &'a AdapterConfig) -> &'a str {
        if self.redis_url.is_empty() {
            adapter.redis_url.split(',').next().unwrap_or("").trim()
        } else {
            &self.redis_url
        }
    }
}

/// The rule for an `app_id` naming the app an endpoint serves: empty means the only app of
/// the file (so several apps, or apps in a database, need a name); a name must be an app's.
pub(super) fn check_app_id(
    key: &'static str,
    what: &str,
    app_id: &str,
    apps: &[AppConfig],
    db: bool,
) -> Option<(&'static str, String)> {
    if app_id.is_empty() {
        (db || apps.len() != 1).then(|| (key, format!("must name the app {what} when there are several apps")))
    } else {
        (!db && !apps.iter().any(|a| a.id == app_id)).then(|| (key, format!("names no app ({app_id:?})")))
    }
}

/// Broken rules, as (key, message): a Redis URL to read, and an app to deliver to.
pub(super) fn check(
    ingest: &IngestConfig,
    adapter: &AdapterConfig,
    apps: &[AppConfig],
    db: bool,
) -> Vec<(&'static str, String)> {
    let IngestConfig { enabled, redis_url: _, key_prefix: _, app_id } = ingest;
    if !*enabled {
        return Vec::new();
    }
    let mut issues = Vec::new();
    let url = ingest.url(adapter);
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        issues.push(("ingest.redis_url", "must be redis://… or rediss://… (or empty to use adapter.redis_url)".into()));
    }
    issues.extend(check_app_id("ingest.app_id", "Laravel broadcasts for", app_id, apps, db));
    issues
}
