//! actix-ws glue: the `/app/{key}` handshake, then one session task per socket.
//! Must not hold protocol rules: those live in `connection/`; this only moves frames.

mod handshake;
mod session;

use std::sync::Arc;

use actix_web::web;
use tokio::time::Duration;

use crate::apps::AppStore;
use crate::connection::ConnDeps;
use crate::metrics::Health;

/// Socket-level settings taken from the configuration.
#[derive(Clone, Debug)]
pub struct WsSettings {
    /// `activity_timeout` advertised, and inbound silence before a server ping.
    pub activity_timeout: Duration,
    /// Wait for any frame after a ping before closing with 4201.
    pub pong_timeout: Duration,
    /// Largest message accepted (1009 above it).
    pub max_message_bytes: usize,
    /// Frames queued per socket before it is a slow consumer.
    pub outbound_queue_frames: usize,
    /// Refuse a missing `protocol` parameter (4008) instead of assuming 7.
    pub require_protocol_param: bool,
}

/// What the WebSocket route needs.
#[derive(Clone)]
pub struct WsDeps {
    /// App lookup by key.
    pub apps: Arc<dyn AppStore>,
    /// Shared connection dependencies.
    pub conn: ConnDeps,
    /// Draining flag: upgrades are refused with 503 while set.
    pub health: Health,
    /// Settings.
    pub settings: WsSettings,
}

/// Registers `GET /app/{key}`.
pub fn configure(cfg: &mut web::ServiceConfig, deps: WsDeps) {
    cfg.app_data(web::Data::new(deps)).route("/app/{key}", web::get().to(handshake::connect));
}
