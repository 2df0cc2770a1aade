//! The WebSocket transport: the `/app/{key}` handshake, then one session task per socket.
//! Must not hold protocol rules: those live in `connection/`; this only moves frames.

mod frame;
mod handshake;
mod session;
mod socket;
mod wait;

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use socket::read_all;

use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;

use actix_codec::Framed;
use actix_http::{Request, h1};
use actix_service::{ServiceFactory, fn_service};
use actix_web::{HttpRequest, HttpResponse, web};
use tokio::time::Duration;

use crate::admission::Admission;
use crate::apps::AppStore;
use crate::connection::ConnDeps;
use crate::metrics::Health;
use crate::net::Accepted;
use crate::rate_limit::InboundLimits;
use crate::registry::Registry;

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
    /// Prefix in front of `/app/{key}` (`server.path_prefix`), empty for none.
    pub path_prefix: String,
    /// Each connection's budget of inbound messages.
    pub inbound: InboundLimits,
}

/// What the WebSocket route needs.
#[derive(Clone)]
pub struct WsDeps {
    /// App lookup by key.
    pub apps: Arc<dyn AppStore>,
    /// Shared connection dependencies.
    pub conn: ConnDeps,
    /// This node's sockets, where a new one is registered.
    pub registry: Registry,
    /// Draining flag: upgrades are refused with 503 while set.
    pub health: Health,
    /// Node-wide limits on open and new sockets.
    pub admission: Admission,
    /// Settings.
    pub settings: WsSettings,
}

/// The upgrade service for actix-http: every `Upgrade: websocket` request of a worker comes here.
pub fn upgrade_service<T: Accepted>(
    deps: WsDeps,
) -> impl ServiceFactory<(Request, Framed<T, h1::Codec>), Config = (), Response = (), Error = Infallible, InitError = ()>
{
    let deps = Rc::new(deps);
    fn_service(move |(req, framed): (Request, Framed<T, h1::Codec>)| {
        let deps = deps.clone();
        async move {
            if let Err(e) = handshake::upgrade(deps, req, framed).await {
                tracing::debug!(error = %e, "upgrade request ended early");
            }
            Ok(())
        }
    })
}

/// Registers `GET /app/{key}` for requests that are not upgrades: they get the handshake error
/// (or 503 while draining), as a WebSocket server answers a plain GET.
pub fn configure(cfg: &mut web::ServiceConfig, deps: WsDeps) {
    cfg.app_data(web::Data::new(deps)).route("/app/{key}", web::get().to(not_upgraded));
}

async fn not_upgraded(req: HttpRequest, deps: web::Data<WsDeps>) -> HttpResponse {
    if deps.health.is_draining() {
        deps.conn.metrics.reject(crate::metrics::Rejection::Draining);
        return handshake::draining_response().into();
    }
    match actix_http::ws::handshake(req.head()) {
        Err(e) => HttpResponse::from(actix_http::Response::from(e)),
        Ok(_) => HttpResponse::BadRequest().body("WebSocket upgrade expected"),
    }
}
