//! One struct of typed Prometheus handles, and the `/metrics` `/health` `/ready` listener.
//! Must not hold per-socket or per-channel labels: label values stay bounded (app id at most).

mod cluster;
mod debug;
mod http;
mod sent;
mod tls;

use std::sync::Arc;

use dashmap::DashMap;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

pub use cluster::{ClusterMetrics, ClusterOp};
pub use debug::DebugMetrics;
pub use http::{Health, configure};
pub use sent::Sent;
pub use tls::TlsMetrics;

/// Why input was refused, as a bounded label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// WebSocket connection to an unknown app key.
    UnknownApp,
    /// Connection to a disabled app.
    AppDisabled,
    /// Connection over the app's quota.
    OverQuota,
    /// Bad or unsupported `protocol` parameter.
    BadProtocol,
    /// Upgrade refused while draining.
    Draining,
    /// A frame that is not a valid protocol message.
    MalformedMessage,
    /// A frame larger than `websocket.max_message_bytes`.
    MessageTooBig,
    /// Subscription refused (bad name, bad auth, not signed in…).
    SubscriptionRefused,
    /// Presence channel full.
    PresenceFull,
    /// Subscription over `max_subscriptions_per_connection`.
    SubscriptionLimit,
    /// A message over the connection's inbound budget (dropped).
    InboundRateLimited,
    /// A connection closed (4100) for sending over its inbound budget for too long.
    InboundFlood,
    /// Upgrade refused (503): the node is at `server.max_connections`.
    NodeFull,
    /// Upgrade refused (503): new connections arrive faster than `server.max_connections_per_second`.
    ConnectRate,
    /// Upgrade refused (429): the client address is at `server.max_connections_per_ip`.
    AddressLimit,
    /// Signin refused.
    SigninRefused,
    /// Client event refused (disabled, wrong channel, not subscribed, too large).
    ClientEventRefused,
    /// Client event over the rate limit.
    ClientEventRateLimited,
    /// REST request with a bad signature, key or timestamp.
    ApiUnauthorized,
    /// REST request that is malformed or over a limit.
    ApiBadRequest,
    /// A connection, subscription or signin refused because the cluster was unreachable.
    ClusterUnavailable,
    /// Connection refused (4009): the page's `Origin` is not one the app allows.
    OriginNotAllowed,
    /// A REST publish (429) or client event (4301) over the app's daily message quota.
    MessageQuota,
}

impl Rejection {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnknownApp => "unknown_app",
            Self::AppDisabled => "app_disabled",
            Self::OverQuota => "over_quota",
            Self::BadProtocol => "bad_protocol",
            Self::Draining => "draining",
            Self::MalformedMessage => "malformed_message",
            Self::MessageTooBig => "message_too_big",
            Self::SubscriptionRefused => "subscription_refused",
            Self::PresenceFull => "presence_full",
            Self::SubscriptionLimit => "subscription_limit",
            Self::InboundRateLimited => "inbound_rate_limited",
            Self::InboundFlood => "inbound_flood",
            Self::NodeFull => "node_full",
            Self::ConnectRate => "connect_rate",
            Self::AddressLimit => "address_limit",
            Self::SigninRefused => "signin_refused",
            Self::ClientEventRefused => "client_event_refused",
            Self::ClientEventRateLimited => "client_event_rate_limited",
            Self::ApiUnauthorized => "api_unauthorized",
            Self::ApiBadRequest => "api_bad_request",
            Self::ClusterUnavailable => "cluster_unavailable",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::MessageQuota => "message_quota",
        }
    }
}

/// Every metric Herald exports. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    connections: IntGaugeVec,
    connects: IntCounterVec,
    disconnects: IntCounterVec,
    ws_messages: IntCounterVec,
    ws_bytes: IntCounterVec,
    slow_consumers: IntCounterVec,
    app_messages: IntCounterVec,
    channels: IntGaugeVec,
    presence_members: IntGaugeVec,
    open_sockets: IntGauge,
    api: ApiMetrics,
    rejected: IntCounterVec,
    webhook_requests: IntCounterVec,
    webhook_events: IntCounterVec,
    ingest: IntCounterVec,
    socketio_auth: IntCounterVec,
    app_store: IntCounterVec,
    per_app: DashMap<String, AppMetrics>,
    cluster: ClusterMetrics,
    tls: TlsMetrics,
    debug: DebugMetrics,
}

struct ApiMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

/// Handles of one app's series, resolved once per connection instead of per message. Shared:
/// each connection keeps one pointer to them, not a copy of every handle.
#[derive(Clone, Debug)]
pub struct AppMetrics(Arc<AppSeries>);

impl std::ops::Deref for AppMetrics {
    type Target = AppSeries;

    fn deref(&self) -> &AppSeries {
        &self.0
    }
}

/// The handles behind [`AppMetrics`].
#[derive(Debug)]
pub struct AppSeries {
    /// Open connections.
    pub connections: IntGauge,
    /// Connections accepted.
    pub connects: IntCounter,
    /// Connections closed.
    pub disconnects: IntCounter,
    /// WebSocket messages received.
    pub messages_in: IntCounter,
    /// WebSocket messages and bytes sent.
    pub out: Sent,
    /// WebSocket bytes received.
    pub bytes_in: IntCounter,
    /// Sockets closed because their queue was full.
    pub slow_consumers: IntCounter,
    /// Messages counted towards the app's usage (REST events per channel, client events).
    pub messages: IntCounter,
    /// Channels with a subscriber on this node.
    pub channels: IntGauge,
    /// Presence users with a socket on this node, summed over channels.
    pub presence_members: IntGauge,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    // unwrap: names and labels are static and valid.
    IntCounterVec::new(Opts::new(name, help), labels).unwrap()
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    // unwrap: names and labels are static and valid.
    IntGaugeVec::new(Opts::new(name, help), labels).unwrap()
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let app = &["app_id"];
        let dir = &["app_id", "direction"];
        let buckets = vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];
        let duration_opts =
            HistogramOpts::new("herald_api_request_duration_seconds", "REST API request duration by endpoint")
                .buckets(buckets);
        let registry = Registry::new();
        let inner = Inner {
            cluster: ClusterMetrics::register(&registry),
            tls: TlsMetrics::register(&registry),
            debug: DebugMetrics::register(&registry),
            registry,
            connections: gauge("herald_connections", "Open WebSocket connections", app),
            connects: counter("herald_connects_total", "WebSocket connections accepted", app),
            disconnects: counter("herald_disconnects_total", "WebSocket connections closed", app),
            ws_messages: counter("herald_ws_messages_total", "WebSocket messages by direction (in/out)", dir),
            ws_bytes: counter("herald_ws_bytes_total", "WebSocket payload bytes by direction (in/out)", dir),
            slow_consumers: counter(
                "herald_slow_consumer_disconnects_total",
                "Sockets closed with 4100 because their outbound queue was full",
                app,
            ),
            app_messages: counter(
                "herald_app_messages_total",
                "Messages counted towards the app's usage and daily quota (REST events per channel, client events)",
                app,
            ),
            channels: gauge("herald_channels", "Channels with a subscriber on this node", app),
            presence_members: gauge(
                "herald_presence_members",
                "Presence users with a socket on this node, summed over channels",
                app,
            ),
            // unwrap: the name and help are static and valid.
            open_sockets: IntGauge::new(
                "herald_open_sockets",
                "Sockets admitted and open on this node, every state and app (server.max_connections)",
            )
            .unwrap(),
            api: ApiMetrics {
                requests: counter(
                    "herald_api_requests_total",
                    "REST API requests by endpoint and status",
                    &["endpoint", "status"],
                ),
                // unwrap: static, valid options.
                duration: HistogramVec::new(duration_opts, &["endpoint"]).unwrap(),
            },
            rejected: counter("herald_rejected_total", "Refused input by reason", &["reason"]),
            webhook_requests: counter(
                "herald_webhook_requests_total",
                "Webhook batches by outcome (sent, retried, failed, dropped)",
                &["app_id", "outcome"],
            ),
            webhook_events: counter(
                "herald_webhook_events_total",
                "Webhook events by outcome (queued, dropped, cancelled by a re-join within the vacate delay)",
                &["app_id", "outcome"],
            ),
            ingest: counter(
                "herald_ingest_messages_total",
                "Laravel redis-broadcaster messages by outcome (delivered, malformed, refused, foreign)",
                &["outcome"],
            ),
            socketio_auth: counter(
                "herald_socketio_auth_total",
                "socket.io subscriptions sent to an app's auth endpoint, by outcome",
                &["outcome"],
            ),
            app_store: counter(
                "herald_app_store_events_total",
                "App store events: lookups by result (hit, fetched, unknown, stale, unavailable, invalid) and changes (listening, notified, applied: made by this node's admin API, listener_lost)",
                &["event"],
            ),
            per_app: DashMap::new(),
        };
        let r = &inner.registry;
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(inner.connections.clone()),
            Box::new(inner.connects.clone()),
            Box::new(inner.disconnects.clone()),
            Box::new(inner.ws_messages.clone()),
            Box::new(inner.ws_bytes.clone()),
            Box::new(inner.slow_consumers.clone()),
            Box::new(inner.app_messages.clone()),
            Box::new(inner.channels.clone()),
            Box::new(inner.presence_members.clone()),
            Box::new(inner.open_sockets.clone()),
            Box::new(inner.api.requests.clone()),
            Box::new(inner.api.duration.clone()),
            Box::new(inner.rejected.clone()),
            Box::new(inner.webhook_requests.clone()),
            Box::new(inner.webhook_events.clone()),
            Box::new(inner.ingest.clone()),
            Box::new(inner.socketio_auth.clone()),
            Box::new(inner.app_store.clone()),
        ];
        for c in collectors {
            // unwrap: each collector is registered once, with distinct names.
            r.register(c).unwrap();
        }
        Self { inner: Arc::new(inner) }
    }

    /// The handles of one (known, configured) app.
    pub fn app(&self, app_id: &str) -> AppMetrics {
        if let Some(m) = self.inner.per_app.get(app_id) {
            return m.value().clone();
        }
        let i = &self.inner;
        let m = AppMetrics(Arc::new(AppSeries {
            connections: i.connections.with_label_values(&[app_id]),
            connects: i.connects.with_label_values(&[app_id]),
            disconnects: i.disconnects.with_label_values(&[app_id]),
            messages_in: i.ws_messages.with_label_values(&[app_id, "in"]),
            out: Sent::new(
                i.ws_messages.with_label_values(&[app_id, "out"]),
                i.ws_bytes.with_label_values(&[app_id, "out"]),
            ),
            bytes_in: i.ws_bytes.with_label_values(&[app_id, "in"]),
            slow_consumers: i.slow_consumers.with_label_values(&[app_id]),
            messages: i.app_messages.with_label_values(&[app_id]),
            channels: i.channels.with_label_values(&[app_id]),
            presence_members: i.presence_members.with_label_values(&[app_id]),
        }));
        i.per_app.entry(app_id.to_owned()).or_insert(m).value().clone()
    }

    /// The cluster drivers' handles.
    pub fn cluster(&self) -> ClusterMetrics {
        self.inner.cluster.clone()
    }

    /// The debug console's handle.
    pub fn debug(&self) -> DebugMetrics {
        self.inner.debug.clone()
    }

    /// The TLS listener's handles.
    pub fn tls(&self) -> TlsMetrics {
        self.inner.tls.clone()
    }

    /// The node-wide gauge of open sockets, for admission control to keep.
    pub fn open_sockets(&self) -> IntGauge {
        self.inner.open_sockets.clone()
    }

    /// Counts refused input.
    pub fn reject(&self, why: Rejection) {
        self.inner.rejected.with_label_values(&[why.as_str()]).inc();
    }

    /// Counts one webhook batch outcome: `sent`, `retried`, `failed` or `dropped`.
    pub fn webhook_request(&self, app_id: &str, outcome: &str) {
        self.inner.webhook_requests.with_label_values(&[app_id, outcome]).inc();
    }

    /// Counts webhook events: `queued` or `dropped`.
    pub fn webhook_events(&self, app_id: &str, outcome: &str, n: u64) {
        self.inner.webhook_events.with_label_values(&[app_id, outcome]).inc_by(n);
    }

    /// Counts one Laravel broadcast read from Redis: `delivered`, `malformed`, `refused` (over
    /// a limit, or a channel Herald does not serve) or `foreign` (not a broadcast: other
    /// traffic on a shared Redis).
    pub fn ingest(&self, outcome: &'static str) {
        self.inner.ingest.with_label_values(&[outcome]).inc();
    }

    /// Counts one app store event: a lookup's result, or a change's (`listening`, `notified`,
    /// `applied`, `listener_lost`).
    pub fn app_store(&self, result: &'static str) {
        self.inner.app_store.with_label_values(&[result]).inc();
    }

    /// Counts one socket.io auth endpoint call by its outcome (`allowed`, `denied`, …).
    pub fn socketio_auth(&self, outcome: &'static str) {
        self.inner.socketio_auth.with_label_values(&[outcome]).inc();
    }

    /// Counts one REST API request and its duration.
    pub fn api_request(&self, endpoint: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.inner.api.requests.with_label_values(&[endpoint, status.as_str()]).inc();
        self.inner.api.duration.with_label_values(&[endpoint]).observe(seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        for app in &self.inner.per_app {
            app.out.export();
        }
        let families = self.inner.registry.gather();
        // unwrap: the text encoder only fails on invalid metric families, which we never build.
        prometheus::TextEncoder::new().encode_to_string(&families).unwrap()
    }
}
