//! The typed configuration tree: plain data with the built-in defaults.
//! Must not read files or the environment itself; `load` does that, `validate` checks it.

mod app_store;
mod debug;
mod echo_server;
mod env;
mod error;
mod file;
mod ingest;
mod load;
mod path;
mod socketio;
mod tls;
mod validate;
mod webhooks;

pub use app_store::{AppStoreConfig, AppStoreDriver};
pub use debug::DebugConfig;
pub use echo_server::{Converted, convert as convert_echo_server};
pub use env::CONFIG_FILE_VAR;
pub use error::{ConfigError, Origin, Problem};
pub use ingest::IngestConfig;
pub use load::{load, load_str};
pub use socketio::SocketIoConfig;
pub use tls::TlsConfig;
pub use validate::{Issue, check_app_config, parse_proxy, validate};
pub use webhooks::{RESERVED_HEADERS, WebhookConfig, WebhooksConfig};

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::Limits;

/// Everything Herald can be told. `Config::default()` is what `herald` runs with when given
/// no file, and `config/herald.toml` mirrors it key for key (a test keeps them equal).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// WebSocket + REST API listener.
    pub server: ServerConfig,
    /// Metrics and health listener.
    pub metrics: MetricsConfig,
    /// WebSocket protocol behaviour.
    pub websocket: WebSocketConfig,
    /// REST API behaviour.
    pub http_api: HttpApiConfig,
    /// Graceful shutdown.
    pub shutdown: ShutdownConfig,
    /// Logging.
    pub log: LogConfig,
    /// Which fan-out adapter to use.
    pub adapter: AdapterConfig,
    /// Laravel's `redis` broadcaster as an event source.
    pub ingest: IngestConfig,
    /// Echo's socket.io connector (laravel-echo-server's protocol).
    pub socketio: SocketIoConfig,
    /// Where apps come from (this file, or PostgreSQL).
    pub app_store: AppStoreConfig,
    /// The live debug console.
    pub debug: DebugConfig,
    /// Webhook batching and delivery.
    pub webhooks: WebhooksConfig,
    /// The apps this server serves (the static app store).
    pub apps: Vec<AppConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            metrics: MetricsConfig::default(),
            websocket: WebSocketConfig::default(),
            http_api: HttpApiConfig::default(),
            shutdown: ShutdownConfig::default(),
            log: LogConfig::default(),
            adapter: AdapterConfig::default(),
            ingest: IngestConfig::default(),
            socketio: SocketIoConfig::default(),
            app_store: AppStoreConfig::default(),
            debug: DebugConfig::default(),
            webhooks: WebhooksConfig::default(),
            apps: vec![AppConfig::development()],
        }
    }
}

/// The WebSocket + REST API listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind.
    pub host: String,
    /// Port to bind (0 picks a free port).
    pub port: u16,
    /// Mount prefix for both `/app/{key}` and `/apps/{id}/…` (e.g. `/herald`); stripped before
    /// REST signatures are checked. Empty for none.
    pub path_prefix: String,
    /// Worker threads (each its own runtime and `SO_REUSEPORT` socket); 0 means one per CPU.
    pub workers: usize,
    /// Seconds a client has to send its request head (stalled upgrades are dropped).
    pub request_timeout_secs: u64,
    /// Sockets this node keeps open at once (every state, upgraded ones included); above it
    /// upgrades get HTTP 503. 0: the open-files limit less `FD_RESERVE`.
    pub max_connections: usize,
    /// New sockets per second this node admits on average (a token bucket); above it upgrades
    /// get HTTP 503. 0: no limit.
    pub max_connections_per_second: u32,
    /// New sockets admitted at once, above that rate.
    pub connections_burst: u32,
    /// Sockets one client address may hold; above it upgrades get HTTP 429. 0: no limit.
    pub max_connections_per_ip: usize,
    /// Proxies (IP addresses or CIDR blocks) whose `X-Forwarded-For` names the client address.
    pub trusted_proxies: Vec<String>,
    /// TLS on this listener.
    pub tls: TlsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "0.0.0.0".into(),
            port: 6001,
            path_prefix: String::new(),
            workers: 0,
            request_timeout_secs: 10,
            max_connections: 0,
            max_connections_per_second: 2000,
            connections_burst: 4000,
            max_connections_per_ip: 0,
            trusted_proxies: Vec::new(),
            tls: TlsConfig::default(),
        }
    }
}

/// File descriptors kept free of sockets when `server.max_connections` is automatic: listeners,
/// REST connections, webhook requests, logs.
pub const FD_RESERVE: u64 = 1024;

/// The metrics and health listener (`/metrics`, `/health`, `/ready`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address to bind.
    pub host: String,
    /// Port to bind (0 picks a free port).
    pub port: u16,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { host: "0.0.0.0".into(), port: 9601 }
    }
}

/// WebSocket protocol behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// `activity_timeout` advertised in `connection_established`, in seconds; also how long the
    /// server waits on a silent client before it probes with a WebSocket ping.
    pub activity_timeout_secs: u64,
    /// Seconds to wait for any frame after a server ping before closing with 4201.
    pub pong_timeout_secs: u64,
    /// Largest WebSocket message accepted, in bytes; larger ones close the socket with 1009.
    pub max_message_bytes: usize,
    /// Frames queued for one socket before it counts as a slow consumer and is closed (4100).
    pub outbound_queue_frames: usize,
    /// Also send `pusher:subscription_error` (with `channel`) when a subscription is refused.
    pub subscription_error_event: bool,
    /// Reject a missing `protocol` query parameter with 4008 instead of assuming 7.
    pub require_protocol_param: bool,
    /// Seconds a cache channel keeps its last event.
    pub cache_ttl_secs: u64,
    /// Messages per second one connection may send on average (every kind: events, pings).
    pub inbound_messages_per_second: u32,
    /// Messages one connection may send at once, above that rate (subscribing to every channel
    /// of a page at connect); keep it above `apps.limits.max_subscriptions_per_connection`.
    pub inbound_burst: u32,
    /// Messages over budget that are refused (4301) before the connection is closed with 4100;
    /// refusals are forgiven over 10 seconds.
    pub inbound_refused_before_close: u32,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            activity_timeout_secs: 120,
            pong_timeout_secs: 30,
            max_message_bytes: 64 * 1024,
            outbound_queue_frames: 1024,
            subscription_error_event: true,
            require_protocol_param: false,
            cache_ttl_secs: 1800,
            inbound_messages_per_second: 100,
            inbound_burst: 1200,
            inbound_refused_before_close: 100,
        }
    }
}

/// REST API behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpApiConfig {
    /// Accepted clock skew of `auth_timestamp`, in seconds.
    pub timestamp_window_secs: u64,
    /// Largest request body, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Seconds a client has to send the whole body.
    pub body_timeout_secs: u64,
    /// Origins allowed by CORS; `[]` (the default: the REST API is server-to-server) sends no
    /// CORS headers, `["*"]` allows any origin.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for HttpApiConfig {
    fn default() -> Self {
        Self {
            timestamp_window_secs: 600,
            max_body_bytes: 1024 * 1024,
            body_timeout_secs: 10,
            cors_allowed_origins: Vec::new(),
        }
    }
}

/// Graceful shutdown on SIGTERM/SIGINT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Seconds over which open sockets are closed with 4200 (spread, not all at once).
    pub drain_secs: u64,
    /// Seconds to wait after `/ready` fails before closing sockets, so load balancers notice.
    pub ready_grace_secs: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self { drain_secs: 10, ready_grace_secs: 0 }
    }
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter directive, e.g. `info` or `herald=debug`.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Which driver connects this node to the others. `Debug` never shows a password in the URL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdapterConfig {
    /// The driver.
    pub driver: AdapterDriver,
    /// Redis to use (`redis://[:password@]host:port/db`, `rediss://` for TLS); for
    /// `redis_cluster`, one or more seed nodes separated by commas.
    pub redis_url: String,
    /// Prefix of every Redis key and bus channel, so several clusters can share one Redis.
    pub key_prefix: String,
    /// How long a node's lease lasts without a renewal before the others reap its state.
    pub lease_ms: u64,
    /// How often a node renews its lease (and looks for dead nodes to reap).
    pub heartbeat_ms: u64,
    /// How long one Redis command may take before it counts as failed.
    pub command_timeout_ms: u64,
    /// Publishes queued for the bus before new ones are refused.
    pub bus_queue: usize,
}

impl Default for AdapterConfig {
    fn default() -> Self {
        Self {
            driver: AdapterDriver::Local,
            redis_url: "redis://127.0.0.1:6379/0".into(),
            key_prefix: "herald".into(),
            lease_ms: 10_000,
            heartbeat_ms: 2_000,
            command_timeout_ms: 2_000,
            bus_queue: 65_536,
        }
    }
}

impl fmt::Debug for AdapterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdapterConfig")
            .field("driver", &self.driver)
            .field("redis_url", &redacted_redis_url(&self.redis_url))
            .field("key_prefix", &self.key_prefix)
            .field("lease_ms", &self.lease_ms)
            .field("heartbeat_ms", &self.heartbeat_ms)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .field("bus_queue", &self.bus_queue)
            .finish()
    }
}

/// `url` with any password replaced by `***` (each comma-separated seed of a cluster URL).
pub fn redacted_redis_url(url: &str) -> String {
    url.split(',')
        .map(|seed| match (seed.find("://"), seed.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => format!("{}***{}", &seed[..scheme + 3], &seed[at..]),
            _ => seed.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Drivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdapterDriver {
    /// Single node: fan-out is a loopback into this process.
    Local,
    /// Several nodes over one Redis server (or a primary with replicas behind one address).
    Redis,
    /// Several nodes over a Redis Cluster: hash-tagged keys, sharded pub/sub.
    RedisCluster,
}

/// One app: its credentials, switches and limits. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    /// App id, used in REST paths (`/apps/{id}/…`).
    pub id: String,
    /// App key, used in WebSocket paths (`/app/{key}`) and signatures.
    pub key: String,
    /// App secret, the HMAC key. Never logged.
    pub secret: String,
    /// Disabled apps refuse connections (4003) and REST calls (403).
    pub enabled: bool,
    /// Allow `client-*` events on private and presence channels.
    pub client_events: bool,
    /// Close connections that neither sign in nor subscribe to a private or presence channel
    /// within `user_authentication_timeout_secs` (Pusher's "authorized connections").
    pub require_user_authentication: bool,
    /// Seconds allowed for that, when required.
    pub user_authentication_timeout_secs: u64,
    /// Most simultaneous connections; 0 for no limit (4004 above it).
    pub max_connections: usize,
    /// Messages (REST events per channel, client events) a day (UTC); 0 for no quota. Above
    /// it REST publishes get 429 and client events 4301.
    pub quota_messages_per_day: u64,
    /// Send `pusher_internal:subscription_count` on non-presence channels.
    pub subscription_count: bool,
    /// Where socket.io subscriptions to private and presence channels are authorized
    /// (laravel-echo-server's `authHost`, e.g. `http://127.0.0.1:8000`); empty: refused.
    pub auth_host: String,
    /// The path on `auth_host` (laravel-echo-server's `authEndpoint`).
    pub auth_endpoint: String,
    /// Origins whose pages may open connections (`*`, `scheme://host[:port]`,
    /// `scheme://*.domain`); empty: any. Checked against the handshake's `Origin` (4009).
    pub allowed_origins: Vec<String>,
    /// Also refuse connections that send no `Origin` (non-browser clients).
    pub require_origin: bool,
    /// Webhook targets (`[[apps.webhooks]]`).
    pub webhooks: Vec<WebhookConfig>,
    /// Size and count limits (`[apps.limits]`).
    pub limits: Limits,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            key: String::new(),
            secret: String::new(),
            enabled: true,
            client_events: false,
            require_user_authentication: false,
            user_authentication_timeout_secs: 30,
            max_connections: 0,
            quota_messages_per_day: 0,
            subscription_count: false,
            auth_host: String::new(),
            auth_endpoint: "/broadcasting/auth".into(),
            allowed_origins: Vec::new(),
            require_origin: false,
            webhooks: Vec::new(),
            limits: Limits::default(),
        }
    }
}

impl fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            id,
            key,
            secret: _,
            enabled,
            client_events,
            require_user_authentication,
            user_authentication_timeout_secs,
            max_connections,
            quota_messages_per_day,
            subscription_count,
            auth_host,
            auth_endpoint,
            allowed_origins,
            require_origin,
            webhooks,
            limits,
        } = self;
        f.debug_struct("AppConfig")
            .field("id", id)
            .field("key", key)
            .field("secret", &"***")
            .field("enabled", enabled)
            .field("client_events", client_events)
            .field("require_user_authentication", require_user_authentication)
            .field("user_authentication_timeout_secs", user_authentication_timeout_secs)
            .field("max_connections", max_connections)
            .field("quota_messages_per_day", quota_messages_per_day)
            .field("subscription_count", subscription_count)
            .field("auth_host", &redacted_url(auth_host))
            .field("auth_endpoint", auth_endpoint)
            .field("allowed_origins", allowed_origins)
            .field("require_origin", require_origin)
            .field("webhooks", webhooks)
            .field("limits", limits)
            .finish()
    }
}

/// A URL as it may be shown: credentials and query replaced by `***` (either may hold a
/// secret, such as a token in `?key=`).
pub fn redacted_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return "<not a URL>".to_owned();
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_username("***");
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        parsed.set_query(Some("***"));
    }
    parsed.to_string()
}

impl AppConfig {
    /// The development app Herald serves when configured with nothing else.
    pub fn development() -> Self {
        Self {
            id: "app-id".into(),
            key: "app-key".into(),
            secret: "app-secret".into(),
            client_events: true,
            ..Self::default()
        }
    }

    /// Whether these are the built-in development credentials.
    pub fn is_development(&self) -> bool {
        self.key == "app-key" && self.secret == "app-secret"
    }
}
