//! Rules a well-typed `Config` must also satisfy, each broken one reported with its key path.
//! Must not read files or the environment, nor change the configuration.
//!
//! Each section is destructured field by field, so a new field does not compile until someone
//! has decided whether it needs a rule.

use std::collections::HashMap;
use std::fmt;

use tracing_subscriber::EnvFilter;

use super::path;
use super::{
    AdapterConfig, AppConfig, Config, HttpApiConfig, LogConfig, MetricsConfig, ServerConfig, ShutdownConfig,
    WebSocketConfig,
};
use crate::protocol::Limits;

/// One broken rule: which key, and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Key path such as `apps[1].key` or `websocket.pong_timeout_secs`.
    pub key: String,
    /// What is wrong, never quoting a secret.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Checks the rules a `Config` must satisfy beyond its types.
///
/// # Errors
///
/// Every broken rule, in the order of the configuration's sections.
pub fn validate(cfg: &Config) -> Result<(), Vec<Issue>> {
    let Config {
        server,
        metrics,
        websocket,
        http_api,
        shutdown,
        log,
        adapter,
        ingest,
        socketio,
        app_store,
        debug,
        webhooks,
        apps,
    } = cfg;
    let mut issues = Issues::default();
    check_server(server, metrics, &mut issues);
    check_websocket(websocket, &mut issues);
    check_http_api(http_api, &mut issues);
    let ShutdownConfig { drain_secs, ready_grace_secs } = shutdown;
    issues.within("shutdown.drain_secs", *drain_secs, 0, HOUR);
    issues.within("shutdown.ready_grace_secs", *ready_grace_secs, 0, HOUR);
    check_log(log, &mut issues);
    check_adapter(adapter, &mut issues);
    // With apps in a database, the file's [[apps]] are not served: name the app explicitly.
    let db = app_store.driver == super::AppStoreDriver::Postgres;
    let file_apps: &[AppConfig] = if db { &[] } else { apps };
    for (key, message) in super::ingest::check(ingest, adapter, file_apps, db) {
        issues.push(key, message);
    }
    for (key, message) in super::debug::check(debug) {
        issues.push(key, message);
    }
    for (key, message) in super::socketio::check(socketio, file_apps, db) {
        issues.push(key, message);
    }
    for (key, message) in super::app_store::check(app_store) {
        issues.push(key, message);
    }
    for (key, message) in super::webhooks::check_settings(webhooks) {
        issues.push(key, message);
    }
    check_apps(apps, &mut issues);
    if issues.0.is_empty() { Ok(()) } else { Err(issues.0) }
}

/// The cluster settings; the Redis ones are checked whichever driver is chosen, so that a
/// switch to `redis` later does not surprise anyone.
fn check_adapter(adapter: &AdapterConfig, issues: &mut Issues) {
    let AdapterConfig { driver, redis_url, key_prefix, lease_ms, heartbeat_ms, command_timeout_ms, bus_queue } =
        adapter;
    if *driver != super::AdapterDriver::Local {
        for seed in redis_url.split(',') {
            let seed = seed.trim();
            if !(seed.starts_with("redis://") || seed.starts_with("rediss://")) {
                issues
                    .push("adapter.redis_url", "must be redis://… or rediss://… (comma-separated seeds for a cluster)");
                break;
            }
        }
    }
    issues.not_empty("adapter.key_prefix", key_prefix);
    if key_prefix.contains(['{', '}']) {
        issues.push("adapter.key_prefix", "must not contain { or } (Herald places its own hash tags)");
    }
    issues.within("adapter.lease_ms", *lease_ms, 1_000, 300_000);
    issues.within("adapter.heartbeat_ms", *heartbeat_ms, 100, 60_000);
    if *heartbeat_ms * 3 > *lease_ms {
        issues.push(
            "adapter.heartbeat_ms",
            "must be at most a third of adapter.lease_ms (a lease survives two lost renewals)",
        );
    }
    issues.within("adapter.command_timeout_ms", *command_timeout_ms, 50, 60_000);
    issues.within("adapter.bus_queue", *bus_queue as u64, 16, 10_000_000);
}

const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;
const MIB: u64 = 1024 * 1024;

#[derive(Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue { key: key.into(), message: message.into() });
    }

    /// `min..=max`: every number has a ceiling as well as a floor, so no value can overflow a
    /// deadline (`Instant + Duration`) or ask for absurd memory. `usize` values arrive cast
    /// with `as u64`: lossless on every target Rust supports.
    fn within(&mut self, key: impl Into<String>, value: u64, min: u64, max: u64) {
        if value < min {
            self.push(key, format!("must be at least {min} (found {value})"));
        } else if value > max {
            self.push(key, format!("must be at most {max} (found {value})"));
        }
    }

    fn not_empty(&mut self, key: impl Into<String>, value: &str) {
        if value.is_empty() {
            self.push(key, "must not be empty");
        }
    }
}

fn check_server(server: &ServerConfig, metrics: &MetricsConfig, issues: &mut Issues) {
    let ServerConfig {
        host,
        port,
        path_prefix,
        workers: _,
        request_timeout_secs,
        max_connections,
        max_connections_per_second,
        connections_burst,
        max_connections_per_ip,
        trusted_proxies,
        tls,
    } = server;
    for (key, message) in super::tls::check(tls) {
        issues.push(key, message);
    }
    issues.within("server.max_connections", *max_connections as u64, 0, 100_000_000);
    issues.within("server.max_connections_per_second", u64::from(*max_connections_per_second), 0, 10_000_000);
    if *max_connections_per_second > 0 {
        issues.within("server.connections_burst", u64::from(*connections_burst), 1, 10_000_000);
    }
    issues.within("server.max_connections_per_ip", *max_connections_per_ip as u64, 0, 100_000_000);
    for (index, proxy) in trusted_proxies.iter().enumerate() {
        if parse_proxy(proxy).is_none() {
            issues.push(
                path::child_index("server.trusted_proxies", index),
                format!("`{proxy}` is not an IP address or a CIDR block such as `10.0.0.0/8`"),
            );
        }
    }
    issues.not_empty("server.host", host);
    let bad_prefix = !path_prefix.is_empty()
        && (!path_prefix.starts_with('/')
            || path_prefix.ends_with('/')
            || path_prefix.contains(['?', '#'])
            || path_prefix.contains(char::is_whitespace));
    if bad_prefix {
        let message = "must be empty or start with `/` and not end with `/` (e.g. `/herald`), \
                       without `?`, `#` or whitespace";
        issues.push("server.path_prefix", message);
    }
    issues.within("server.request_timeout_secs", *request_timeout_secs, 1, HOUR);

    let MetricsConfig { host: metrics_host, port: metrics_port } = metrics;
    issues.not_empty("metrics.host", metrics_host);
    if *metrics_port != 0 && metrics_port == port {
        issues.push("metrics.port", format!("must differ from server.port (both are {port})"));
    }
}

fn check_websocket(ws: &WebSocketConfig, issues: &mut Issues) {
    let WebSocketConfig {
        activity_timeout_secs,
        pong_timeout_secs,
        max_message_bytes,
        outbound_queue_frames,
        subscription_error_event: _,
        require_protocol_param: _,
        cache_ttl_secs,
        inbound_messages_per_second,
        inbound_burst,
        inbound_refused_before_close,
    } = ws;
    issues.within("websocket.activity_timeout_secs", *activity_timeout_secs, 1, HOUR);
    issues.within("websocket.pong_timeout_secs", *pong_timeout_secs, 1, HOUR);
    issues.within("websocket.max_message_bytes", *max_message_bytes as u64, 1024, 64 * MIB);
    issues.within("websocket.outbound_queue_frames", *outbound_queue_frames as u64, 1, 1_000_000);
    issues.within("websocket.cache_ttl_secs", *cache_ttl_secs, 1, DAY);
    issues.within("websocket.inbound_messages_per_second", u64::from(*inbound_messages_per_second), 1, 1_000_000);
    issues.within("websocket.inbound_burst", u64::from(*inbound_burst), 1, 10_000_000);
    issues.within("websocket.inbound_refused_before_close", u64::from(*inbound_refused_before_close), 1, 1_000_000);
}

fn check_http_api(api: &HttpApiConfig, issues: &mut Issues) {
    let HttpApiConfig { timestamp_window_secs, max_body_bytes, body_timeout_secs, cors_allowed_origins } = api;
    issues.within("http_api.timestamp_window_secs", *timestamp_window_secs, 1, DAY);
    issues.within("http_api.max_body_bytes", *max_body_bytes as u64, 1, 64 * MIB);
    issues.within("http_api.body_timeout_secs", *body_timeout_secs, 1, HOUR);
    for (index, origin) in cors_allowed_origins.iter().enumerate() {
        if origin != "*" && !is_origin(origin) {
            issues.push(
                path::child_index("http_api.cors_allowed_origins", index),
                format!("`{origin}` must be `*` or an origin like `https://example.com` (no path)"),
            );
        }
    }
}

/// A trusted proxy entry: an address (one host) or a CIDR block.
pub fn parse_proxy(entry: &str) -> Option<ipnet::IpNet> {
    entry.parse::<ipnet::IpNet>().ok().or_else(|| entry.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// `http://host[:port]` or `https://host[:port]`: what browsers send in `Origin`.
fn is_origin(origin: &str) -> bool {
    let Some(host) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")) else {
        return false;
    };
    !host.is_empty() && !host.contains(['/', '?', '#']) && !host.contains(char::is_whitespace)
}

fn check_log(log: &LogConfig, issues: &mut Issues) {
    let LogConfig { level, format: _ } = log;
    if level.trim().is_empty() {
        issues.push("log.level", "must not be empty (e.g. `info` or `herald=debug,info`)");
    } else if let Err(error) = EnvFilter::try_new(level) {
        issues.push("log.level", format!("`{level}` is not a tracing filter directive: {error}"));
    }
}

fn check_apps(apps: &[AppConfig], issues: &mut Issues) {
    if apps.is_empty() {
        issues.push("apps", "at least one app is required");
    }
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut keys: HashMap<&str, usize> = HashMap::new();
    for (index, app) in apps.iter().enumerate() {
        let at = path::child_index("apps", index);
        check_app(app, &at, issues);
        for (field, value, seen) in [("id", &app.id, &mut ids), ("key", &app.key, &mut keys)] {
            if value.is_empty() {
                continue;
            }
            if let Some(first) = seen.get(value.as_str()) {
                issues.push(
                    path::child_key(&at, field),
                    format!("duplicate app {field} `{value}` (also used by apps[{first}])"),
                );
            } else {
                seen.insert(value, index);
            }
        }
    }
}

/// The rules one app must satisfy, checked on its own (an app read from a database, or given
/// to the admin API); keys are reported under `at` (e.g. `app`).
pub fn check_app_config(app: &AppConfig, at: &str) -> Vec<Issue> {
    let mut issues = Issues::default();
    check_app(app, at, &mut issues);
    issues.0
}

fn check_app(app: &AppConfig, at: &str, issues: &mut Issues) {
    let AppConfig {
        id,
        key,
        secret,
        enabled: _,
        client_events: _,
        require_user_authentication,
        user_authentication_timeout_secs,
        max_connections,
        quota_messages_per_day,
        subscription_count: _,
        auth_host,
        auth_endpoint,
        allowed_origins,
        require_origin: _,
        webhooks,
        limits,
    } = app;
    for (index, origin) in allowed_origins.iter().enumerate() {
        if !crate::protocol::is_valid_origin_pattern(origin) {
            issues.push(
                path::child_index(&path::child_key(at, "allowed_origins"), index),
                format!("`{origin}` is not an origin: \"*\", scheme://host[:port] or scheme://*.domain[:port]"),
            );
        }
    }
    if let Some(message) = super::socketio::check_auth_host(auth_host) {
        issues.push(path::child_key(at, "auth_host"), message);
    }
    if !auth_endpoint.starts_with('/') || auth_endpoint.contains(['?', '#']) {
        issues.push(path::child_key(at, "auth_endpoint"), "must be a path starting with / (no query)");
    }
    for (index, target) in webhooks.iter().enumerate() {
        let here = path::child_index(&path::child_key(at, "webhooks"), index);
        for (field, message) in super::webhooks::check_target(target) {
            issues.push(path::child_key(&here, field), message);
        }
    }
    for (field, value) in [("id", id), ("key", key)] {
        let here = path::child_key(at, field);
        issues.not_empty(here.clone(), value);
        if value.contains(['/', '?', '#']) || value.contains(char::is_whitespace) {
            issues.push(here, format!("`{value}` must not contain `/`, `?`, `#` or whitespace"));
        }
    }
    issues.not_empty(path::child_key(at, "secret"), secret);
    let min_auth_timeout = u64::from(*require_user_authentication);
    let here = path::child_key(at, "user_authentication_timeout_secs");
    issues.within(here, *user_authentication_timeout_secs, min_auth_timeout, DAY);
    issues.within(path::child_key(at, "max_connections"), *max_connections as u64, 0, 100_000_000);
    issues.within(path::child_key(at, "quota_messages_per_day"), *quota_messages_per_day, 0, 1_000_000_000_000);
    check_limits(limits, &path::child_key(at, "limits"), issues);
}

fn check_limits(limits: &Limits, at: &str, issues: &mut Issues) {
    let Limits {
        max_event_data_bytes,
        max_event_name_len,
        max_channel_name_len,
        max_channels_per_trigger,
        max_batch_events,
        max_presence_members,
        max_presence_user_info_bytes,
        max_presence_user_id_len,
        client_events_per_second,
        max_watchlist_size,
        max_subscriptions_per_connection,
    } = limits;
    let mut check = |field: &str, value: u64, max: u64| {
        issues.within(path::child_key(at, field), value, 1, max);
    };
    check("max_event_data_bytes", *max_event_data_bytes as u64, 16 * MIB);
    check("max_event_name_len", *max_event_name_len as u64, 10_000);
    check("max_channel_name_len", *max_channel_name_len as u64, 10_000);
    check("max_channels_per_trigger", *max_channels_per_trigger as u64, 10_000);
    check("max_batch_events", *max_batch_events as u64, 10_000);
    check("max_presence_members", *max_presence_members as u64, 1_000_000);
    check("max_presence_user_info_bytes", *max_presence_user_info_bytes as u64, MIB);
    check("max_presence_user_id_len", *max_presence_user_id_len as u64, 10_000);
    check("client_events_per_second", u64::from(*client_events_per_second), 1_000_000);
    check("max_watchlist_size", *max_watchlist_size as u64, 100_000);
    check("max_subscriptions_per_connection", *max_subscriptions_per_connection as u64, 1_000_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(cfg: &Config) -> Vec<String> {
        validate(cfg).err().unwrap_or_default().into_iter().map(|issue| issue.key).collect()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(validate(&Config::default()), Ok(()));
    }

    #[test]
    fn ingest_needs_a_redis_url_and_one_app() {
        let mut cfg = Config::default();
        cfg.ingest.enabled = true;
        assert_eq!(keys(&cfg), Vec::<String>::new(), "the adapter's URL and the only app");
        let mut second = AppConfig::development();
        (second.id, second.key) = ("2".into(), "key-2".into());
        cfg.apps.push(second);
        assert_eq!(keys(&cfg), ["ingest.app_id"], "which of two apps?");
        cfg.ingest.app_id = "2".into();
        cfg.ingest.redis_url = "http://nope".into();
        assert_eq!(keys(&cfg), ["ingest.redis_url"]);
        cfg.ingest.redis_url = String::new();
        cfg.ingest.app_id = "3".into();
        assert_eq!(keys(&cfg), ["ingest.app_id"]);
    }

    #[test]
    fn needs_an_app() {
        let cfg = Config { apps: Vec::new(), ..Config::default() };
        assert_eq!(keys(&cfg), ["apps"]);
    }

    #[test]
    fn app_credentials_are_checked() {
        let mut second = AppConfig::development();
        second.id = "2".into();
        second.key = "has space".into();
        second.secret = String::new();
        let mut third = AppConfig::development();
        third.id = "a/b".into();
        let cfg = Config { apps: vec![AppConfig::development(), second, third], ..Config::default() };
        // apps[2].key repeats apps[0].key.
        assert_eq!(keys(&cfg), ["apps[1].key", "apps[1].secret", "apps[2].id", "apps[2].key"]);
    }

    #[test]
    fn numbers_have_minimums() {
        let mut cfg = Config::default();
        cfg.websocket.activity_timeout_secs = 0;
        cfg.websocket.pong_timeout_secs = 0;
        cfg.websocket.max_message_bytes = 1023;
        cfg.websocket.outbound_queue_frames = 0;
        cfg.http_api.timestamp_window_secs = 0;
        cfg.apps[0].limits.client_events_per_second = 0;
        cfg.apps[0].require_user_authentication = true;
        cfg.apps[0].user_authentication_timeout_secs = 0;
        cfg.shutdown.drain_secs = 0;
        assert_eq!(
            keys(&cfg),
            [
                "websocket.activity_timeout_secs",
                "websocket.pong_timeout_secs",
                "websocket.max_message_bytes",
                "websocket.outbound_queue_frames",
                "http_api.timestamp_window_secs",
                "apps[0].user_authentication_timeout_secs",
                "apps[0].limits.client_events_per_second",
            ]
        );
    }

    #[test]
    fn path_prefix_shape() {
        for (prefix, ok) in [
            ("", true),
            ("/herald", true),
            ("/a/b", true),
            ("herald", false),
            ("/", false),
            ("/x/", false),
            ("/a b", false),
        ] {
            let mut cfg = Config::default();
            cfg.server.path_prefix = prefix.into();
            assert_eq!(validate(&cfg).is_ok(), ok, "{prefix:?}");
        }
    }

    #[test]
    fn cors_origins_and_log_level() {
        let mut cfg = Config::default();
        cfg.http_api.cors_allowed_origins =
            vec!["*".into(), "https://a.example:8443".into(), "a.example".into(), "https://a.example/".into()];
        cfg.log.level = "info,herald=debug".into();
        assert_eq!(keys(&cfg), ["http_api.cors_allowed_origins[2]", "http_api.cors_allowed_origins[3]"]);
        cfg.http_api.cors_allowed_origins.clear();
        cfg.log.level = "herald=loud".into();
        assert_eq!(keys(&cfg), ["log.level"]);
    }

    #[test]
    fn listeners_must_not_share_a_port() {
        let mut cfg = Config::default();
        cfg.metrics.port = cfg.server.port;
        assert_eq!(keys(&cfg), ["metrics.port"]);
        cfg.metrics.port = 0;
        cfg.server.port = 0;
        assert_eq!(keys(&cfg), Vec::<String>::new());
    }
}
