//! The `/app/{key}` upgrade: path, draining, handshake headers, app key, enabled, protocol
//! version, quota. Must not run the socket: an accepted socket is handed to `session::run`.
//!
//! actix-http hands every `Upgrade: websocket` request here with its connection (`Framed`), so
//! the socket is served without the HTTP dispatcher and its fixed read and write buffers.

use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

use actix_codec::Framed;
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::h1::{Codec, Message};
use actix_http::{ConnectionType, Method, Request, Response, StatusCode, ws};
use bytes::Bytes;
use futures_util::SinkExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::Instrument;

use super::socket::{self, Reader};
use super::{WsDeps, session};
use crate::admission::{Permit, Refused, client_ip};
use crate::apps::App;
use crate::connection::Connection;
use crate::metrics::Rejection;
use crate::net::{Accepted, Socket};
use crate::protocol::{ErrorCode, SocketId};
use crate::registry::outbound;

/// Why a connection was refused at open time.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("App key {0} does not exist")]
    UnknownApp(String),
    #[error("App is disabled")]
    Disabled,
    #[error("Application is over connection quota")]
    OverQuota,
    #[error("Invalid protocol version format")]
    BadVersion,
    #[error("Unsupported protocol version")]
    Unsupported,
    #[error("No protocol version supplied")]
    NoProtocol,
    #[error("Temporarily unable to look up the app")]
    StoreDown,
    #[error("Temporarily unable to take a connection slot")]
    Unavailable,
    #[error("Origin not allowed")]
    OriginNotAllowed,
}

impl Refusal {
    fn code(&self) -> (ErrorCode, Rejection) {
        match self {
            Self::UnknownApp(_) => (ErrorCode::AppNotFound, Rejection::UnknownApp),
            Self::Disabled => (ErrorCode::AppDisabled, Rejection::AppDisabled),
            Self::OverQuota => (ErrorCode::OverConnectionQuota, Rejection::OverQuota),
            Self::BadVersion => (ErrorCode::InvalidVersionFormat, Rejection::BadProtocol),
            Self::Unsupported => (ErrorCode::UnsupportedProtocol, Rejection::BadProtocol),
            Self::NoProtocol => (ErrorCode::NoProtocol, Rejection::BadProtocol),
            Self::StoreDown => (ErrorCode::OverCapacity, Rejection::UnknownApp),
            Self::Unavailable => (ErrorCode::OverCapacity, Rejection::ClusterUnavailable),
            Self::OriginNotAllowed => (ErrorCode::Unauthorized, Rejection::OriginNotAllowed),
        }
    }
}

/// Protocol versions 5–7 are identical on the wire for what Herald does.
fn check_protocol(query: &str, required: bool) -> Result<(), Refusal> {
    let value = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "protocol").map(|(_, v)| v);
    match value {
        None if required => Err(Refusal::NoProtocol),
        None => Ok(()),
        Some(v) => match v.parse::<u32>() {
            Err(_) => Err(Refusal::BadVersion),
            Ok(5..=7) => Ok(()),
            Ok(_) => Err(Refusal::Unsupported),
        },
    }
}

async fn find_app(deps: &WsDeps, key: &str, query: &str, origin: Option<&str>) -> Result<std::sync::Arc<App>, Refusal> {
    let app = match deps.apps.find_by_key(key).await {
        Ok(Some(app)) => app,
        Ok(None) => return Err(Refusal::UnknownApp(key.chars().take(64).collect())),
        Err(e) => {
            tracing::warn!(error = %e, "app store unavailable");
            return Err(Refusal::StoreDown);
        }
    };
    if !app.enabled {
        return Err(Refusal::Disabled);
    }
    if !app.origins.allows(origin) {
        return Err(Refusal::OriginNotAllowed);
    }
    check_protocol(query, deps.settings.require_protocol_param)?;
    Ok(app)
}

/// The key in `{prefix}/app/{key}`, if `path` is the socket endpoint.
fn app_key<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let key = path.strip_prefix(prefix)?.strip_prefix("/app/")?;
    (!key.is_empty() && !key.contains('/')).then_some(key)
}

/// Serves one upgrade request: answers it over HTTP, or upgrades and spawns the session.
///
/// # Errors
/// Writing the HTTP response failed (the client went away).
pub(super) async fn upgrade<T: Accepted>(
    deps: Rc<WsDeps>,
    req: Request,
    mut framed: Framed<T, Codec>,
) -> std::io::Result<()> {
    let head = req.head();
    let Some(key) = app_key(head.uri.path(), &deps.settings.path_prefix) else {
        return respond(framed, Response::with_body(StatusCode::NOT_FOUND, Bytes::from_static(b"Not Found"))).await;
    };
    if head.method != Method::GET {
        let res = Response::with_body(StatusCode::METHOD_NOT_ALLOWED, Bytes::from_static(b"Method Not Allowed"));
        return respond(framed, res).await;
    }
    if deps.health.is_draining() {
        deps.conn.metrics.reject(Rejection::Draining);
        return respond(framed, draining_response()).await;
    }
    let permit = match admit(&deps, &req, framed.io_ref().tcp()) {
        Ok(permit) => permit,
        Err(refused) => return respond(framed, refused_response(refused)).await,
    };
    let accept = match ws::handshake(head) {
        Ok(mut accept) => accept.finish().drop_body(),
        Err(e) => return respond(framed, Response::from(e)).await,
    };
    let origin = head.headers.get(actix_http::header::ORIGIN).map(|o| o.to_str().unwrap_or("\u{0}"));
    let found = find_app(&deps, key, head.uri.query().unwrap_or(""), origin).await;
    // Encoded, not sent: the 101 leaves in one write with the first frame (one TCP segment
    // and one syscall fewer per connect).
    std::pin::Pin::new(&mut framed).write(Message::Item((accept, BodySize::None)))?;
    let parts = framed.into_parts();
    let head = socket::Writer::with_pending(parts.write_buf);
    let io = parts.io.into_socket();
    forget_dispatcher_wakers(io.tcp());
    // TCP_NODELAY is already on: accepted sockets inherit it from the listener (server.rs).
    let reader = Reader::new(parts.read_buf, deps.settings.max_message_bytes);
    let app = match found {
        Ok(app) => app,
        Err(refusal) => {
            actix_web::rt::spawn(refuse(io, head, permit, &refusal, &deps));
            return Ok(());
        }
    };
    let sid = SocketId::from_parts(rand::random::<u32>().into(), rand::random::<u32>().into());
    let (tx, rx) = outbound(sid, deps.settings.outbound_queue_frames);
    let ns = deps.registry.namespace(&app.id);
    let refusal = match deps.conn.cluster.state.connect(&ns, &tx, app.max_connections).await {
        Ok(true) => None,
        Ok(false) => Some(Refusal::OverQuota),
        Err(e) => {
            tracing::warn!(error = %e, "connection slot unavailable");
            Some(Refusal::Unavailable)
        }
    };
    if let Some(refusal) = refusal {
        actix_web::rt::spawn(refuse(io, head, permit, &refusal, &deps));
        return Ok(());
    }
    let conn = Connection::new(app, ns, tx, deps.conn.clone(), Instant::now());
    conn.opened("pusher", req.head().headers.get(actix_http::header::ORIGIN).and_then(|o| o.to_str().ok()));

    // The socket's span only when debug logging is on: entering and leaving it on every poll
    // of every socket is measurable on the fan-out path, and it makes each idle task larger.
    if tracing::enabled!(tracing::Level::DEBUG) {
        let span = tracing::debug_span!("socket", socket_id = %conn.socket_id());
        actix_web::rt::spawn(session::run(conn, io, head, reader, rx, permit, &deps.settings).instrument(span));
    } else {
        actix_web::rt::spawn(session::run(conn, io, head, reader, rx, permit, &deps.settings));
    }
    Ok(())
}

/// Asks node-wide admission for a place, counting a refusal.
fn admit(deps: &WsDeps, req: &Request, io: &TcpStream) -> Result<Permit, Refused> {
    // The dispatcher knows the peer already; asking the socket again is a syscall.
    let peer = req.peer_addr().or_else(|| io.peer_addr().ok()).map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let forwarded = req.head().headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let ip = client_ip(peer, forwarded, &deps.admission.settings().trusted_proxies);
    deps.admission.admit(ip, Instant::now()).inspect_err(|refused| {
        let why = match refused {
            Refused::NodeFull => Rejection::NodeFull,
            Refused::TooFast => Rejection::ConnectRate,
            Refused::AddressFull => Rejection::AddressLimit,
        };
        deps.conn.metrics.reject(why);
        tracing::debug!(reason = why.as_str(), "upgrade refused");
    })
}

/// A refused upgrade: 503 (node full, too fast) or 429 (address full), answered before the
/// handshake so it costs next to nothing. pusher-js retries a failed handshake after its
/// transport timeout (15 s, then longer), which spreads a reconnect storm out.
fn refused_response(refused: Refused) -> Response<BoxBody> {
    let status = match refused {
        Refused::NodeFull | Refused::TooFast => StatusCode::SERVICE_UNAVAILABLE,
        Refused::AddressFull => StatusCode::TOO_MANY_REQUESTS,
    };
    let body = serde_json::json!({ "error": refused.to_string() }).to_string();
    let mut res = Response::with_body(status, Bytes::from(body));
    let headers = res.headers_mut();
    headers.insert(actix_http::header::CONTENT_TYPE, actix_http::header::HeaderValue::from_static("application/json"));
    headers.insert(actix_http::header::RETRY_AFTER, actix_http::header::HeaderValue::from_static("1"));
    res.map_into_boxed_body()
}

/// Replaces the HTTP dispatcher's wakers that the stream still holds with no-op ones.
///
/// The dispatcher polled the stream through `AsyncRead`, which parks its task's waker in the
/// stream until the next readiness event; the session waits through `readable()` instead. An idle
/// socket may see no event for hours, and a parked waker keeps the finished dispatcher task
/// (about 3.5 KB) allocated all that time.
fn forget_dispatcher_wakers(io: &TcpStream) {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = io.poll_read_ready(&mut cx);
    let _ = io.poll_write_ready(&mut cx);
}

/// The answer to an upgrade while the node drains: 503, so a load balancer tries another node.
pub(super) fn draining_response() -> Response<BoxBody> {
    let mut res = Response::with_body(StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(br#"{"error":"draining"}"#));
    res.headers_mut().insert(actix_http::header::CONTENT_TYPE, "application/json".parse().expect("valid header value"));
    res.map_into_boxed_body()
}

/// Writes a whole HTTP response that ends the connection.
async fn respond<T: Accepted, B: MessageBody + 'static>(
    mut framed: Framed<T, Codec>,
    res: Response<B>,
) -> std::io::Result<()> {
    let (mut res, body) = res.into_parts();
    let body = actix_http::body::to_bytes(body).await.unwrap_or_default();
    res.head_mut().set_connection_type(ConnectionType::Close);
    framed.send(Message::Item((res, BodySize::Sized(body.len() as u64)))).await?;
    framed.send(Message::Chunk(Some(body))).await?;
    framed.send(Message::Chunk(None)).await?;
    framed.close().await
}

/// Sends the refusal as `pusher:error`, closes with the same code, and lets the client close;
/// the socket's admission `permit` is held until then.
fn refuse(
    io: impl Socket,
    mut head: socket::Writer,
    permit: Permit,
    refusal: &Refusal,
    deps: &WsDeps,
) -> impl Future<Output = ()> + 'static {
    let (code, why) = refusal.code();
    deps.conn.metrics.reject(why);
    tracing::debug!(code = code.code(), reason = why.as_str(), "connection refused");
    let message = refusal.to_string();
    let deadline = Instant::now() + deps.settings.pong_timeout;
    async move {
        session::close_with_error(&io, &mut head, code, &message, deadline).await;
        drop(permit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_key_matches_only_the_socket_endpoint() {
        assert_eq!(app_key("/app/abc", ""), Some("abc"));
        assert_eq!(app_key("/ws/app/abc", "/ws"), Some("abc"));
        assert_eq!(app_key("/app/abc", "/ws"), None);
        assert_eq!(app_key("/app/", ""), None);
        assert_eq!(app_key("/app/abc/x", ""), None);
        assert_eq!(app_key("/apps/abc", ""), None);
    }

    #[test]
    fn protocol_param() {
        assert!(check_protocol("protocol=7&client=js&version=8.4.0&flash=false", false).is_ok());
        assert!(check_protocol("protocol=5", false).is_ok());
        assert!(check_protocol("", false).is_ok());
        assert!(matches!(check_protocol("", true), Err(Refusal::NoProtocol)));
        assert!(matches!(check_protocol("protocol=abc", false), Err(Refusal::BadVersion)));
        assert!(matches!(check_protocol("protocol=4", false), Err(Refusal::Unsupported)));
        assert!(matches!(check_protocol("protocol=8", false), Err(Refusal::Unsupported)));
    }
}
