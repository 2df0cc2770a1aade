//! `[socketio]`: Echo's socket.io connector, served the way laravel-echo-server serves it.
//! Must not serve anything: `socketio/` does; this is data and its rules.

use serde::{Deserialize, Serialize};

/// The socket.io endpoint on the main port (`{server.path_prefix}{path}/`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketIoConfig {
    /// Serve Echo's `socket.io` connector.
    pub enabled: bool,
    /// The app its sockets belong to; empty: the only app.
    pub app_id: String,
    /// socket.io's request path (Echo's and socket.io-client's default is `/socket.io`).
    pub path: String,
    /// Milliseconds between Engine.IO pings.
    pub ping_interval_ms: u64,
    /// Milliseconds to wait for the pong before the socket is closed.
    pub ping_timeout_ms: u64,
    /// Largest Engine.IO payload accepted (one polling POST or one WebSocket message).
    pub max_payload_bytes: usize,
    /// Origins whose pages may use the polling transport (CORS, with credentials); `"*"` for
    /// any, as laravel-echo-server (socket.io 2) allows. WebSocket upgrades ignore CORS.
    pub cors_allowed_origins: Vec<String>,
    /// Milliseconds one call to an app's auth endpoint may take before the subscription is
    /// refused (504).
    pub auth_timeout_ms: u64,
    /// Auth endpoint calls this node makes at once; a subscription that finds none free within
    /// the auth timeout is refused (503).
    pub auth_concurrency: usize,
    /// Largest answer read from an auth endpoint.
    pub auth_max_response_bytes: usize,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            app_id: String::new(),
            path: "/socket.io".into(),
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            max_payload_bytes: 100_000,
            cors_allowed_origins: vec!["*".into()],
            auth_timeout_ms: 5_000,
            auth_concurrency: 256,
            auth_max_response_bytes: 65_536,
        }
    }
}

/// Broken rules, as (key, message).
pub(super) fn check(cfg: &SocketIoConfig, apps: &[super::AppConfig], db: bool) -> Vec<(&'static str, String)> {
    let SocketIoConfig {
        enabled,
        app_id,
        path,
        ping_interval_ms,
        ping_timeout_ms,
        max_payload_bytes,
        cors_allowed_origins: _,
        auth_timeout_ms,
        auth_concurrency,
        auth_max_response_bytes,
    } = cfg;
    let mut issues = Vec::new();
    let mut within = |key: &'static str, v: u64, min: u64, max: u64| {
        if !(min..=max).contains(&v) {
            issues.push((key, format!("must be between {min} and {max} (is {v})")));
        }
    };
    within("socketio.ping_interval_ms", *ping_interval_ms, 1_000, 600_000);
    within("socketio.ping_timeout_ms", *ping_timeout_ms, 1_000, 600_000);
    within("socketio.max_payload_bytes", *max_payload_bytes as u64, 1_024, 16 * 1024 * 1024);
    within("socketio.auth_timeout_ms", *auth_timeout_ms, 100, 60_000);
    within("socketio.auth_concurrency", *auth_concurrency as u64, 1, 100_000);
    within("socketio.auth_max_response_bytes", *auth_max_response_bytes as u64, 1_024, 16 * 1024 * 1024);
    if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') || path.contains(['?', '#', ' ']) {
        issues.push(("socketio.path", "must start with / and not end with / (e.g. /socket.io)".into()));
    }
    if *enabled {
        issues.extend(super::ingest::check_app_id("socketio.app_id", "Echo's socket.io clients use", app_id, apps, db));
    }
    issues
}

/// An app's auth endpoint settings, checked: `auth_host` is empty or an http(s) origin.
pub(super) fn check_auth_host(host: &str) -> Option<&'static str> {
    if host.is_empty() {
        return None;
    }
    let Ok(url) = reqwest::Url::parse(host) else { return Some("must be an http:// or https:// URL") };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Some("must be an http:// or https:// URL");
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Some("must be scheme://host[:port][/path], without credentials or query");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_enabled_needs_one_app() {
        let cfg = SocketIoConfig::default();
        assert!(check(&cfg, &[], false).is_empty());
        let on = SocketIoConfig { enabled: true, ..SocketIoConfig::default() };
        let two = [super::super::AppConfig::development(), super::super::AppConfig::default()];
        assert_eq!(check(&on, &two, false).len(), 1);
        assert!(check(&on, &two[..1], false).is_empty());
    }

    #[test]
    fn auth_hosts() {
        assert_eq!(check_auth_host(""), None);
        assert_eq!(check_auth_host("http://127.0.0.1:8000"), None);
        assert_eq!(check_auth_host("https://app.example.com/sub"), None);
        assert!(check_auth_host("ftp://x").is_some());
        assert!(check_auth_host("localhost").is_some());
        assert!(check_auth_host("http://u:p@x").is_some());
    }
}
