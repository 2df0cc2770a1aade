//! One socket.io socket: laravel-echo-server's events in (`subscribe`, `unsubscribe`,
//! `client event`), Herald's frames out as `(event, channel, data)`.
//! Must not decide channel outcomes: `Connection` does, exactly as for a Pusher socket.
//!
//! socketioxide calls a handler per event, each in a task of its own; handlers only queue the
//! event (bounded: a client that outruns it is a flood), and this one task handles them in
//! order, so a `subscribe` is done before the `client event` sent after it. An auth endpoint
//! call runs beside the socket's deliveries, never in front of them.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytestring::ByteString;
use serde_json::Value;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::{SendError, SocketError, TransportType};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SocketIoServer;
use super::auth::{self, Denied};
use super::http::ClientIp;
use super::stream::KillSwitch;
use super::translate::Rosters;
use crate::admission::{Permit, Refused};
use crate::apps::App;
use crate::connection::Connection;
use crate::metrics::Rejection;
use crate::protocol::{ChannelKind, ChannelName, ClientMessage, ErrorCode, PresenceMember, SocketId};
use crate::rate_limit::{InboundBudget, Verdict};
use crate::registry::{Next, OutboundRx, outbound};

/// Events queued between socketioxide's handlers and the session; a client that fills it is
/// flooding (the inbound budget refuses well before a well-behaved client gets here).
const INBOUND_QUEUE: usize = 64;

/// The events socketioxide's handlers queue for the session. Hand-written rather than a tokio
/// channel for the same reason as `registry::Outbound`: a channel allocates its first block
/// up front (1.5 KB here), this queue only while events wait.
#[derive(Default)]
struct InboundQueue {
    events: Mutex<VecDeque<Inbound>>,
    ready: Notify,
}

impl InboundQueue {
    /// Queues an event; false when the queue is full (the client is flooding).
    fn push(&self, event: Inbound) -> bool {
        {
            let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if events.len() >= INBOUND_QUEUE {
                return false;
            }
            events.push_back(event);
        }
        self.ready.notify_one();
        true
    }

    /// The next event, waiting for one. `notify_one` keeps a permit when nobody waits, so an
    /// event queued between the check and the wait is not missed.
    async fn next(&self) -> Inbound {
        loop {
            let next = {
                let mut events = self.events.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let next = events.pop_front();
                if events.is_empty() && events.capacity() > 8 {
                    *events = VecDeque::new();
                }
                next
            };
            if let Some(event) = next {
                return event;
            }
            self.ready.notified().await;
        }
    }
}

/// One event a client sent, not yet handled.
enum Inbound {
    Subscribe(Value),
    Unsubscribe(Value),
    ClientEvent(Value),
    /// A payload that is not JSON of any shape.
    Malformed,
}

/// A subscription waiting for the app's auth endpoint.
type Pending = Pin<Box<dyn Future<Output = (String, Result<Option<PresenceMember>, Denied>)> + Send>>;

/// How the session ended.
enum End {
    /// The client left (or socketioxide closed the socket).
    Gone,
    /// The server closes it with this Pusher code's meaning (reconnect or not).
    Close(ErrorCode),
}

/// Runs one socket from its socket.io connect to its end.
pub(super) async fn run(server: SocketIoServer, s: SocketRef) {
    let inbound = Arc::new(InboundQueue::default());
    let gone = CancellationToken::new();
    let flooded = CancellationToken::new();
    forward(&s, "subscribe", Inbound::Subscribe, &inbound, &flooded);
    forward(&s, "unsubscribe", Inbound::Unsubscribe, &inbound, &flooded);
    forward(&s, "client event", Inbound::ClientEvent, &inbound, &flooded);
    let on_gone = gone.clone();
    s.on_disconnect(move || {
        on_gone.cancel();
        async {}
    });
    let sid = s.id.to_string();
    let switch = s.req_parts().extensions.get::<KillSwitch>().cloned().unwrap_or_default();
    server.shared.switches.insert(sid.clone(), switch.clone());
    match Box::pin(open(&server, &s, &sid)).await {
        Ok((conn, rx, app, permit)) => {
            let cookie = s.req_parts().headers.get(http::header::COOKIE).map(|c| c.as_bytes().to_vec());
            let budget = InboundBudget::new(server.deps.settings.inbound, Instant::now());
            let session = Session {
                server: server.clone(),
                s: s.clone(),
                conn,
                app,
                cookie,
                budget,
                rosters: Rosters::default(),
            };
            let end = Box::pin(session.run(rx, inbound, &gone, &flooded)).await;
            if let End::Close(code) = end {
                close(&server, &s, &sid, &switch, code);
            }
            drop(permit);
        }
        Err(code) => close(&server, &s, &sid, &switch, code),
    }
    server.shared.switches.remove(&sid);
}

/// Queues one kind of client event for the session.
fn forward(
    s: &SocketRef,
    event: &'static str,
    kind: fn(Value) -> Inbound,
    queue: &Arc<InboundQueue>,
    flooded: &CancellationToken,
) {
    let (queue, flooded) = (queue.clone(), flooded.clone());
    s.on(event, move |TryData(data): TryData<Value>| {
        if !queue.push(data.map_or(Inbound::Malformed, kind)) {
            flooded.cancel();
        }
        async {}
    });
}

/// Admits the socket: node admission, the app, its connection slot. A refusal is counted and
/// returned as the code whose meaning the close takes (reconnect later, or not at all).
async fn open(
    server: &SocketIoServer,
    s: &SocketRef,
    sid: &str,
) -> Result<(Connection, OutboundRx, Arc<App>, Permit), ErrorCode> {
    let deps = &server.deps;
    let metrics = &deps.conn.metrics;
    let refuse = |why: Rejection, code: ErrorCode| {
        metrics.reject(why);
        tracing::debug!(reason = why.as_str(), "socket.io connection refused");
        code
    };
    if deps.health.is_draining() {
        return Err(refuse(Rejection::Draining, ErrorCode::ReconnectImmediately));
    }
    let ip = s.req_parts().extensions.get::<ClientIp>().map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |c| c.0);
    let permit = deps.admission.admit(ip, Instant::now()).map_err(|refused| match refused {
        Refused::NodeFull => refuse(Rejection::NodeFull, ErrorCode::OverCapacity),
        Refused::TooFast => refuse(Rejection::ConnectRate, ErrorCode::OverCapacity),
        Refused::AddressFull => refuse(Rejection::AddressLimit, ErrorCode::OverCapacity),
    })?;
    let app = match deps.apps.find_by_id(&deps.settings.app_id).await {
        Ok(Some(app)) if !app.enabled => return Err(refuse(Rejection::AppDisabled, ErrorCode::AppDisabled)),
        Ok(Some(app)) if !app.origins.allows(origin_of(s).as_deref()) => {
            return Err(refuse(Rejection::OriginNotAllowed, ErrorCode::Unauthorized));
        }
        Ok(Some(app)) => app,
        Ok(None) => return Err(refuse(Rejection::UnknownApp, ErrorCode::AppNotFound)),
        Err(e) => {
            tracing::warn!(error = %e, "app store unavailable");
            return Err(refuse(Rejection::UnknownApp, ErrorCode::OverCapacity));
        }
    };
    let socket_id =
        SocketId::for_foreign(sid).ok_or_else(|| refuse(Rejection::BadProtocol, ErrorCode::Unauthorized))?;
    let (tx, rx) = outbound(socket_id, deps.settings.outbound_queue_frames);
    let ns = deps.registry.namespace(&app.id);
    match deps.conn.cluster.state.connect(&ns, &tx, app.max_connections).await {
        Ok(true) => {}
        Ok(false) => return Err(refuse(Rejection::OverQuota, ErrorCode::OverConnectionQuota)),
        Err(e) => {
            tracing::warn!(error = %e, "connection slot unavailable");
            return Err(refuse(Rejection::ClusterUnavailable, ErrorCode::OverCapacity));
        }
    }
    let conn = Connection::new(app.clone(), ns, tx, deps.conn.clone(), Instant::now());
    conn.opened("socket.io", origin_of(s).as_deref());
    tracing::debug!(socket_id = %conn.socket_id(), sio = sid, "socket.io socket connected");
    Ok((conn, rx, app, permit))
}

/// The handshake's `Origin` (a non-UTF-8 one never matches an allowed origin).
fn origin_of(s: &SocketRef) -> Option<String> {
    s.req_parts().headers.get(http::header::ORIGIN).map(|o| o.to_str().unwrap_or("\u{0}").to_owned())
}

/// Ends a socket the server closes: codes 4000–4099 mean "do not reconnect" (a socket.io
/// DISCONNECT), the others "reconnect" (the transport is cut, which clients reconnect after).
fn close(server: &SocketIoServer, s: &SocketRef, sid: &str, switch: &KillSwitch, code: ErrorCode) {
    if code.code() < 4100 {
        let _ = s.clone().disconnect();
        return;
    }
    match s.transport_type() {
        TransportType::Websocket => switch.kill(),
        TransportType::Polling => {
            server.mark_closed_poll(sid.to_owned());
            // Answers the long poll the client has waiting, so its next one learns the news.
            let _ = s.emit("herald:reconnect", &code.code());
        }
    }
}

struct Session {
    server: SocketIoServer,
    s: SocketRef,
    conn: Connection,
    app: Arc<App>,
    cookie: Option<Vec<u8>>,
    budget: InboundBudget,
    rosters: Rosters,
}

impl Session {
    async fn run(
        mut self,
        mut rx: OutboundRx,
        inbound: Arc<InboundQueue>,
        gone: &CancellationToken,
        flooded: &CancellationToken,
    ) -> End {
        let mut pending: Option<Pending> = None;
        let end = loop {
            tokio::select! {
                biased;
                () = gone.cancelled() => break End::Gone,
                () = flooded.cancelled() => {
                    self.server.deps.conn.metrics.reject(Rejection::InboundFlood);
                    break End::Close(ErrorCode::OverCapacity);
                }
                next = rx.next() => match next {
                    Next::Frame(frame) => {
                        if !self.emit_frame(&frame) {
                            break End::Close(ErrorCode::OverCapacity);
                        }
                    }
                    Next::Close(code) => break End::Close(code),
                    Next::Ended => break End::Gone,
                },
                (channel, answer) = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                    pending = None;
                    Box::pin(self.subscribed(&channel, answer)).await;
                }
                // Boxed, like every wait but the loop's own: the task's size is what each idle
                // socket costs, and handling is rare next to waiting.
                msg = inbound.next(), if pending.is_none() => match Box::pin(self.handle(msg)).await {
                    Ok(Some(call)) => pending = Some(call),
                    Ok(None) => {}
                    Err(end) => break end,
                },
            }
        };
        Box::pin(self.conn.close()).await;
        end
    }

    /// Emits one Herald frame in laravel-echo-server's shape; false when the socket's own
    /// queue is full (a slow consumer).
    fn emit_frame(&mut self, frame: &str) -> bool {
        let Some(e) = self.rosters.translate(frame) else { return true };
        self.emit(&e.event, &(e.channel.as_str(), &*e.data))
    }

    fn emit<T: serde::Serialize + ?Sized>(&self, event: &str, data: &T) -> bool {
        match self.s.emit(event, data) {
            Ok(()) => {
                self.conn.metrics().out.add(1, 0);
                true
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                self.conn.metrics().slow_consumers.inc();
                false
            }
            // Closed, or a value that does not encode: nothing to send it to or nothing to send.
            Err(_) => true,
        }
    }

    /// Handles one client event; a subscription that needs the auth endpoint comes back as
    /// the call to wait for.
    async fn handle(&mut self, msg: Inbound) -> Result<Option<Pending>, End> {
        self.conn.metrics().messages_in.inc();
        match self.budget.check(Instant::now()) {
            Verdict::Admit => {}
            Verdict::Refuse => {
                self.server.deps.conn.metrics.reject(Rejection::InboundRateLimited);
                return Ok(None);
            }
            Verdict::Close => {
                self.server.deps.conn.metrics.reject(Rejection::InboundFlood);
                return Err(End::Close(ErrorCode::OverCapacity));
            }
        }
        let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        match msg {
            Inbound::Subscribe(v) => match field(&v, "channel") {
                Some(channel) => return Ok(self.subscribe(channel, &v).await),
                None => self.malformed(),
            },
            Inbound::Unsubscribe(v) => match field(&v, "channel") {
                Some(channel) => {
                    self.conn.leave_channel(&channel).await;
                    self.rosters.forget(&channel);
                }
                None => self.malformed(),
            },
            Inbound::ClientEvent(mut v) => match (field(&v, "channel"), field(&v, "event")) {
                (Some(channel), Some(event)) => {
                    self.client_event(channel, event, v.get_mut("data").map(Value::take)).await
                }
                _ => self.malformed(),
            },
            Inbound::Malformed => self.malformed(),
        }
        Ok(None)
    }

    fn malformed(&self) {
        tracing::debug!("malformed socket.io event");
        self.server.deps.conn.metrics.reject(Rejection::MalformedMessage);
    }

    /// Public channels (and ones already held) subscribe at once; private and presence ones
    /// ask the app first.
    async fn subscribe(&mut self, channel: String, v: &Value) -> Option<Pending> {
        let limits = &self.app.limits;
        let kind = ChannelName::parse(&channel, limits.max_channel_name_len).ok().map(|n| n.kind());
        let needs_auth =
            matches!(kind, Some(ChannelKind::Private | ChannelKind::PrivateEncrypted | ChannelKind::Presence));
        if self.conn.is_subscribed(&channel) {
            // Already held (socket.io's join is idempotent): nothing to ask, nothing to send.
            return None;
        }
        if !needs_auth {
            self.subscribed(&channel, Ok(None)).await;
            return None;
        }
        let headers = v.get("auth").and_then(|a| a.get("headers"));
        let req = auth::Request {
            url: self.app.auth_url.clone(),
            channel: channel.clone(),
            socket_id: self.conn.socket_id().to_string(),
            headers: auth::forwarded_headers(headers, self.cookie.as_deref()),
            presence: kind == Some(ChannelKind::Presence),
            limits: limits.clone(),
        };
        let authorizer = self.server.shared.auth.clone();
        Some(Box::pin(async move { (channel, authorizer.authorize(req).await) }))
    }

    /// Subscribes once authorized, or says why not: `subscription_error(channel, status)`.
    async fn subscribed(&mut self, channel: &str, answer: Result<Option<PresenceMember>, Denied>) {
        let metrics = &self.server.deps.conn.metrics;
        let member = match answer {
            Ok(member) => member,
            Err(denied) => {
                tracing::debug!(%channel, error = %denied, "socket.io subscription not authorized");
                metrics.socketio_auth(denied.outcome());
                metrics.reject(Rejection::SubscriptionRefused);
                self.emit("subscription_error", &(channel, denied.status()));
                return;
            }
        };
        if member.is_some() || channel.starts_with("private-") {
            metrics.socketio_auth("allowed");
        }
        let mut replies: Vec<ByteString> = Vec::new();
        let res = self.conn.subscribe_authorized(channel, member, &mut replies).await;
        for frame in &replies {
            self.emit_frame(frame);
        }
        if let Err(status) = res {
            self.emit("subscription_error", &(channel, status));
        }
    }

    async fn client_event(&mut self, channel: String, event: String, data: Option<Value>) {
        if !event.starts_with("client-") {
            tracing::debug!(%event, "socket.io client event without the client- prefix");
            self.server.deps.conn.metrics.reject(Rejection::ClientEventRefused);
            return;
        }
        let data = data.and_then(|d| serde_json::value::to_raw_value(&d).ok());
        let msg = ClientMessage { event, channel, data };
        // A refusal is counted by `Connection`; laravel-echo-server's protocol has no answer.
        let mut replies = Vec::new();
        self.conn.client_event(msg, Instant::now(), &mut replies).await;
    }
}
