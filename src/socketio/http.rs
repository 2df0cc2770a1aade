//! socket.io's HTTP side on Herald's port: Engine.IO polling through an actix handler, and
//! WebSocket upgrades taken from Herald's upgrade service, both handed to socketioxide.
//! Must not hold protocol rules: it converts requests, applies draining, sizes and CORS.
//!
//! actix owns every connection (DESIGN.md, `docs/socketio-research.md`): keep-alive
//! connections that mix REST and socket.io requests (a proxy's upstream pool) work, and
//! Herald's request timeout, admission and draining apply to socket.io as to the rest.

use std::net::{IpAddr, Ipv4Addr};

use actix_codec::Framed;
use actix_http::body::BodySize;
use actix_http::h1::{Codec, Message};
use actix_http::{ConnectionType, Request, Response, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::BytesMut;
use futures_util::SinkExt;
use http_body_util::{BodyExt, Full};
use tower_service::Service as _;

use super::SocketIoServer;
use super::stream::Killable;
use crate::admission::client_ip;
use crate::metrics::Rejection;
use crate::net::Accepted;

/// The client's address, as admission counts it, carried into the socket's request parts.
#[derive(Clone, Copy, Debug)]
pub(super) struct ClientIp(pub(super) IpAddr);

/// An actix request head as the `http` 1 request socketioxide takes.
fn to_http1<B>(
    method: &str,
    uri: &str,
    headers: &actix_http::header::HeaderMap,
    ip: IpAddr,
    body: B,
) -> Option<http::Request<B>> {
    let mut b = http::Request::builder().method(method).uri(uri).extension(ClientIp(ip));
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_bytes());
    }
    b.body(body).ok()
}

fn sid_of(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "sid").map(|(_, v)| v.into_owned())
}

impl SocketIoServer {
    fn ip(&self, peer: Option<IpAddr>, forwarded: Option<&str>) -> IpAddr {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        client_ip(peer, forwarded, &self.deps.admission.settings().trusted_proxies)
    }

    /// One Engine.IO polling request (`GET` to receive, `POST` to send, `OPTIONS` is CORS's).
    pub(super) async fn polling(&self, req: HttpRequest, body: web::Bytes) -> HttpResponse {
        let sid = sid_of(req.query_string());
        match &sid {
            None if self.deps.health.is_draining() => {
                self.deps.conn.metrics.reject(Rejection::Draining);
                return HttpResponse::ServiceUnavailable().json(serde_json::json!({"code": 3, "message": "draining"}));
            }
            // A socket the server closed: the client must reconnect (a new session).
            Some(sid) if self.closed_poll(sid) => {
                return HttpResponse::BadRequest()
                    .json(serde_json::json!({"code": 1, "message": "Session ID unknown"}));
            }
            _ => {}
        }
        if body.len() > self.deps.settings.max_payload_bytes {
            self.deps.conn.metrics.reject(Rejection::MessageTooBig);
            return HttpResponse::PayloadTooLarge().finish();
        }
        let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let ip = self.ip(req.peer_addr().map(|a| a.ip()), forwarded);
        let uri = req.uri().to_string();
        let Some(hreq) = to_http1(req.method().as_str(), &uri, req.headers(), ip, Full::new(body)) else {
            return HttpResponse::BadRequest().finish();
        };
        let Ok(res) = self.svc.clone().call(hreq).await;
        let (parts, body) = res.into_parts();
        // Polling answers are whole (`Full`) once the call returns: collecting is immediate.
        let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        let status = StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut out = HttpResponse::build(status);
        for (k, v) in &parts.headers {
            if k != http::header::CONTENT_LENGTH {
                out.insert_header((k.as_str(), v.as_bytes()));
            }
        }
        out.body(bytes)
    }

    /// A WebSocket upgrade under the socket.io path: the 101 is Herald's, the socket
    /// socketioxide's (through its already-upgraded-stream entry, behind a kill switch).
    ///
    /// # Errors
    /// Writing the HTTP answer failed (the client went away).
    pub async fn upgrade<T: Accepted>(&self, req: Request, mut framed: Framed<T, Codec>) -> std::io::Result<()> {
        let head = req.head();
        if self.deps.health.is_draining() {
            self.deps.conn.metrics.reject(Rejection::Draining);
            return respond(framed, StatusCode::SERVICE_UNAVAILABLE).await;
        }
        let query = head.uri.query().unwrap_or("");
        let eio_ok = form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "EIO" && (v == "3" || v == "4"));
        if !eio_ok {
            self.deps.conn.metrics.reject(Rejection::BadProtocol);
            return respond(framed, StatusCode::BAD_REQUEST).await;
        }
        let accept = match actix_http::ws::handshake(head) {
            Ok(mut accept) => accept.finish().drop_body(),
            Err(e) => return respond(framed, Response::from(e).status()).await,
        };
        let forwarded = head.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let ip = self.ip(framed.io_ref().tcp().peer_addr().ok().map(|a| a.ip()), forwarded);
        // An upgrade of a polling session uses that session's switch; a WebSocket-only
        // session's switch travels in its request, where the connect handler finds it.
        let switch = sid_of(query).and_then(|sid| self.switch_of(&sid)).unwrap_or_default();
        let Some(mut hreq) = to_http1(head.method.as_str(), &head.uri.to_string(), &head.headers, ip, ()) else {
            return respond(framed, StatusCode::BAD_REQUEST).await;
        };
        hreq.extensions_mut().insert(switch.clone());
        framed.send(Message::Item((accept, BodySize::None))).await?;
        let parts = framed.into_parts();
        // actix's read buffer has kilobytes of capacity and is nearly always empty by now: keep
        // only what it holds, so an idle socket does not carry it.
        let pre = if parts.read_buf.is_empty() { BytesMut::new() } else { BytesMut::from(&parts.read_buf[..]) };
        let stream = Killable { pre, io: parts.io, switch };
        if let Err(e) = self.svc.clone().call((stream, hreq)).await {
            tracing::debug!(error = %e, "socket.io upgrade refused after the 101");
        }
        Ok(())
    }
}

/// A bodiless answer that ends the connection.
async fn respond<T: Accepted>(mut framed: Framed<T, Codec>, status: StatusCode) -> std::io::Result<()> {
    let mut res = Response::with_body(status, ());
    res.head_mut().set_connection_type(ConnectionType::Close);
    framed.send(Message::Item((res.drop_body(), BodySize::Sized(0)))).await?;
    framed.send(Message::Chunk(None)).await?;
    framed.close().await
}
