//! Echo's `socket.io` connector, served with laravel-echo-server's protocol, on Herald's port
//! under `socketio.path` (`/socket.io`): socket.io protocol v5 (socket.io-client 3/4, Echo 2)
//! and v4 (socket.io-client 2, what laravel-echo-server users have), polling and WebSocket.
//! Must not hold channel rules: every socket.io socket is a `Connection` like a Pusher one
//! (the same channels, presence rosters, limits, webhooks and metrics, on one node or many);
//! this transport maps laravel-echo-server's events onto it and its frames back.
//!
//! socketioxide runs the Engine.IO and socket.io protocols (sessions, heartbeats, upgrades);
//! Herald uses it with its local adapter only, as a codec: rooms stay empty, delivery goes
//! through Herald's registry and bus.

mod auth;
mod http;
mod session;
mod stream;
mod translate;

use std::rc::Rc;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::{HttpRequest, web};
use dashmap::DashMap;
use engineioxide::service::NotFoundService;
use socketioxide::SocketIo;
use socketioxide::service::SocketIoService;
use tokio::time::{Duration, Instant};

use crate::admission::Admission;
use crate::apps::AppStore;
use crate::connection::ConnDeps;
use crate::metrics::Health;
use crate::rate_limit::InboundLimits;
use crate::registry::Registry;
use stream::KillSwitch;

type Service = SocketIoService<NotFoundService>;

/// The socket.io endpoint's settings, taken from `[socketio]` and `[websocket]`.
#[derive(Clone, Debug)]
pub struct SocketIoSettings {
    /// The app whose channels socket.io sockets use.
    pub app_id: String,
    /// The request path, with `server.path_prefix` (e.g. `/socket.io`).
    pub path: String,
    /// Engine.IO ping interval.
    pub ping_interval: Duration,
    /// Engine.IO ping timeout.
    pub ping_timeout: Duration,
    /// Largest polling body or WebSocket message.
    pub max_payload_bytes: usize,
    /// Frames queued per socket before it is a slow consumer.
    pub outbound_queue_frames: usize,
    /// Each socket's budget of inbound events.
    pub inbound: InboundLimits,
    /// One auth endpoint call's time limit.
    pub auth_timeout: Duration,
    /// Auth endpoint calls in flight at once.
    pub auth_concurrency: usize,
    /// Largest auth endpoint answer.
    pub auth_max_response_bytes: usize,
    /// Origins allowed to poll (CORS with credentials); `*` for any.
    pub cors_allowed_origins: Vec<String>,
}

/// What the socket.io endpoint needs.
pub struct SocketIoDeps {
    /// App lookup.
    pub apps: Arc<dyn AppStore>,
    /// Shared connection dependencies.
    pub conn: ConnDeps,
    /// This node's sockets.
    pub registry: Registry,
    /// Draining flag.
    pub health: Health,
    /// Node-wide limits on open and new sockets (shared with the Pusher endpoint).
    pub admission: Admission,
    /// Settings.
    pub settings: SocketIoSettings,
}

/// The running endpoint. Cheap to clone (one per worker).
#[derive(Clone)]
pub struct SocketIoServer {
    svc: Service,
    io: SocketIo,
    deps: Arc<SocketIoDeps>,
    shared: Arc<Shared>,
}

struct Shared {
    auth: auth::Authorizer,
    /// Live sessions' kill switches, by socket.io id (a WebSocket upgrade uses its session's).
    switches: DashMap<String, KillSwitch>,
    /// Polling sessions the server closed, answered "unknown session" so the client
    /// reconnects; forgotten after a ping period.
    closed_polls: DashMap<String, Instant>,
}

/// Sessions remembered as closed before old entries are swept.
const CLOSED_POLLS_SWEEP: usize = 1024;

impl SocketIoServer {
    /// Builds the endpoint and registers laravel-echo-server's protocol on the root namespace.
    pub fn new(deps: SocketIoDeps) -> Self {
        let s = &deps.settings;
        let (svc, io) = SocketIo::builder()
            .req_path(s.path.clone())
            .ping_interval(s.ping_interval)
            .ping_timeout(s.ping_timeout)
            .max_payload(s.max_payload_bytes as u64)
            .ws_max_message_size(s.max_payload_bytes)
            .ws_max_frame_size(s.max_payload_bytes)
            .ws_read_buffer_size(1024)
            .max_buffer_size(s.outbound_queue_frames.max(16))
            .build_svc();
        let shared = Arc::new(Shared {
            auth: auth::Authorizer::new(s.auth_timeout, s.auth_concurrency, s.auth_max_response_bytes),
            switches: DashMap::new(),
            closed_polls: DashMap::new(),
        });
        let server = Self { svc, io, deps: Arc::new(deps), shared };
        let on_connect = server.clone();
        server.io.ns("/", move |s: socketioxide::extract::SocketRef| {
            let server = on_connect.clone();
            async move { session::run(server, s).await }
        });
        server
    }

    /// Whether an upgrade request's path is this endpoint's.
    pub fn owns(&self, path: &str) -> bool {
        path.strip_prefix(self.deps.settings.path.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// Registers the polling routes (with CORS) under the endpoint's path.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let server = Rc::new(self.clone());
        let origins = &self.deps.settings.cors_allowed_origins;
        let cors = Cors::default().allow_any_method().allow_any_header().supports_credentials().max_age(3600);
        let cors = if origins.iter().any(|o| o == "*") {
            cors.allow_any_origin()
        } else {
            origins.iter().fold(cors, |c, o| c.allowed_origin(o))
        };
        cfg.service(web::scope(&self.deps.settings.path).wrap(cors).default_service(web::to(
            move |req: HttpRequest, body: web::Bytes| {
                let server = server.clone();
                async move { server.polling(req, body).await }
            },
        )));
    }

    /// Closes every socket.io socket (the last step of a shutdown).
    pub async fn close(&self) {
        self.io.close().await;
    }

    fn switch_of(&self, sid: &str) -> Option<KillSwitch> {
        self.shared.switches.get(sid).map(|s| s.clone())
    }

    fn closed_poll(&self, sid: &str) -> bool {
        self.shared.closed_polls.contains_key(sid)
    }

    fn mark_closed_poll(&self, sid: String) {
        let polls = &self.shared.closed_polls;
        if polls.len() >= CLOSED_POLLS_SWEEP {
            let s = &self.deps.settings;
            let keep = s.ping_interval + s.ping_timeout;
            let now = Instant::now();
            polls.retain(|_, at| now.saturating_duration_since(*at) < keep);
        }
        polls.insert(sid, Instant::now());
    }
}
