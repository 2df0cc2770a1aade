//! `[app_store]`: where apps come from: the `[[apps]]` of this file (`static`), or a PostgreSQL
//! database that a hosted service's signup, billing and admin tools change while Herald runs.
//! Must not connect anywhere: `apps/` does; this is data and its rules.

use std::fmt;

use serde::{Deserialize, Serialize};

/// App store drivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppStoreDriver {
    /// `[[apps]]` in the configuration.
    Static,
    /// The `herald_apps` table of a PostgreSQL database, cached, invalidated by LISTEN/NOTIFY.
    Postgres,
}

/// The app store's settings.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppStoreConfig {
    /// `static` or `postgres`.
    pub driver: AppStoreDriver,
    /// `postgres://user:password@host:port/database` (the password is never logged).
    pub database_url: String,
    /// Connections in the pool (lookups of uncached apps and admin calls).
    pub pool_size: usize,
    /// Apply the schema's migrations at startup (else run `herald db migrate`).
    pub migrate: bool,
    /// Seconds a cached app is trusted without a change notification (a backstop: changes
    /// arrive by NOTIFY within milliseconds).
    pub cache_ttl_secs: u64,
    /// Milliseconds an unknown key or id is remembered as unknown (a NOTIFY for a new app
    /// forgets it at once).
    pub miss_ttl_ms: u64,
    /// Milliseconds to connect, and for one query.
    pub timeout_ms: u64,
    /// The admin API's bearer token (on the metrics listener); empty: no admin API. Never
    /// logged; prefer HERALD_APP_STORE__ADMIN_TOKEN from a secret.
    pub admin_token: String,
}

impl Default for AppStoreConfig {
    fn default() -> Self {
        Self {
            driver: AppStoreDriver::Static,
            database_url: String::new(),
            pool_size: 8,
            migrate: true,
            cache_ttl_secs: 60,
            miss_ttl_ms: 5_000,
            timeout_ms: 3_000,
            admin_token: String::new(),
        }
    }
}

impl fmt::Debug for AppStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppStoreConfig")
            .field("driver", &self.driver)
            .field("database_url", &super::redacted_url(&self.database_url))
            .field("pool_size", &self.pool_size)
            .field("migrate", &self.migrate)
            .field("cache_ttl_secs", &self.cache_ttl_secs)
            .field("miss_ttl_ms", &self.miss_ttl_ms)
            .field("timeout_ms", &self.timeout_ms)
            .field("admin_token", &if self.admin_token.is_empty() { "" } else { "***" })
            .finish()
    }
}

/// Broken rules, as (key, message).
pub(super) fn check(cfg: &AppStoreConfig) -> Vec<(&'static str, String)> {
    let AppStoreConfig {
        driver,
        database_url,
        pool_size,
        migrate: _,
        cache_ttl_secs,
        miss_ttl_ms,
        timeout_ms,
        admin_token,
    } = cfg;
    let mut issues = Vec::new();
    let mut within = |key: &'static str, v: u64, min: u64, max: u64| {
        if !(min..=max).contains(&v) {
            issues.push((key, format!("must be between {min} and {max} (is {v})")));
        }
    };
    within("app_store.pool_size", *pool_size as u64, 1, 1_000);
    within("app_store.cache_ttl_secs", *cache_ttl_secs, 1, 86_400);
    within("app_store.miss_ttl_ms", *miss_ttl_ms, 0, 3_600_000);
    within("app_store.timeout_ms", *timeout_ms, 100, 60_000);
    if *driver == AppStoreDriver::Postgres
        && !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://"))
    {
        issues.push(("app_store.database_url", "must be postgres://user:password@host:port/database".into()));
    }
    if !admin_token.is_empty() && admin_token.len() < 16 {
        issues.push(("app_store.admin_token", "must be at least 16 characters (or empty: no admin API)".into()));
    }
    issues
}
