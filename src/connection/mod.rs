//! Per-socket protocol rules: what to answer and what to publish for each client event.
//! Must not touch the WebSocket: replies are returned as encoded frames for `ws/` to write.
//!
//! A `Connection` is also the socket's drop guard (as mini-redis's `DbDropGuard` is the
//! database's): whatever it still holds in the cluster when it is dropped without `close`
//! (subscriptions, presence membership, the app's connection slot, the signed-in user) is
//! released then, from a task of its own, so a session task that panics or is cancelled leaks
//! nothing.

mod announce;
mod client_events;
mod debug;
mod heartbeat;
mod release;
mod signin;
mod subscribe;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use bytestring::ByteString;
use tokio::time::{Duration, Instant};

use crate::apps::App;
use crate::cluster::Cluster;
use crate::metrics::{AppMetrics, Metrics, Rejection};
use crate::protocol::{
    ChannelName, ClientEvent, ErrorCode, ProtocolError, SocketId, UserData, WebhookEvent, server_event,
};
use crate::rate_limit::TokenBucket;
use crate::registry::{Namespace, Outbound};
use crate::webhooks::Webhooks;

pub use announce::Announcer;
pub use heartbeat::{Beat, Heartbeat};

/// Connection-wide settings taken from the configuration.
#[derive(Clone, Debug)]
pub struct ConnSettings {
    /// Also send `pusher:subscription_error` on refused subscriptions.
    pub subscription_error_event: bool,
    /// How long cache channels keep their last event.
    pub cache_ttl: Duration,
    /// How long `channel_vacated` / `member_removed` webhooks wait for a re-join.
    pub vacate_delay: Duration,
}

/// What every connection shares: the cluster seams, metrics, webhooks. Cheap to clone.
#[derive(Clone)]
pub struct ConnDeps {
    /// Delivery, cluster-wide state and queries.
    pub cluster: Cluster,
    /// Metrics handles.
    pub metrics: Metrics,
    /// Webhook queue.
    pub webhooks: Webhooks,
    /// Usage counters and the daily message quota (client events count).
    pub usage: crate::usage::UsageMeter,
    /// The debug console's event hub.
    pub debug: crate::debug::DebugTap,
    /// Settings.
    pub settings: ConnSettings,
}

/// Who this socket is: fixed for its lifetime.
struct Identity {
    socket_id: SocketId,
    app: Arc<App>,
    ns: Arc<Namespace>,
    outbound: Outbound,
    metrics: AppMetrics,
}

/// One socket's protocol state, and the guard of what it holds in the cluster.
pub struct Connection {
    me: Arc<Identity>,
    deps: ConnDeps,
    /// Subscribed channels → the presence user id the socket joined as.
    channels: HashMap<ChannelName, Option<Arc<str>>>,
    user: Option<UserData>,
    client_events: TokenBucket,
    /// Signed in, or subscribed to a private/presence channel.
    authorized: bool,
    /// `close` gave everything back (the connection slot included): nothing left to drop.
    released: bool,
}

/// What the session must do after handling a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Keep going.
    Continue,
    /// The connection became authorized (stop any signin deadline).
    Authorized,
}

impl Connection {
    /// State for a socket that already holds a connection slot (`ClusterState::connect`); from
    /// now on it owns that slot (released when it is dropped) and counts as an open connection.
    pub fn new(app: Arc<App>, ns: Arc<Namespace>, outbound: Outbound, deps: ConnDeps, now: Instant) -> Self {
        let metrics = deps.metrics.app(&app.id);
        metrics.connects.inc();
        metrics.connections.inc();
        let client_events = TokenBucket::new(app.limits.client_events_per_second, now);
        let me = Arc::new(Identity { socket_id: outbound.socket_id().clone(), app, ns, outbound, metrics });
        Self { me, deps, channels: HashMap::new(), user: None, client_events, authorized: false, released: false }
    }

    /// The socket's id.
    pub fn socket_id(&self) -> &SocketId {
        &self.me.socket_id
    }

    /// The app's metric handles.
    pub fn metrics(&self) -> &AppMetrics {
        &self.me.metrics
    }

    /// Counts refused input seen by the transport (binary or oversized frames).
    pub fn metrics_reject(&self, why: Rejection) {
        self.deps.metrics.reject(why);
    }

    /// How long the socket may stay without signing in, when the app requires it.
    pub fn auth_timeout(&self) -> Option<Duration> {
        self.me.app.features.user_authentication_timeout
    }

    /// Handles one text frame, appending reply frames to `replies`.
    pub async fn handle_text(&mut self, text: &str, now: Instant, replies: &mut Vec<ByteString>) -> After {
        let was_authorized = self.authorized;
        match crate::protocol::parse(text) {
            Ok(event) => self.handle(event, now, replies).await,
            Err(e) => self.malformed(&e, replies),
        }
        if self.authorized && !was_authorized { After::Authorized } else { After::Continue }
    }

    async fn handle(&mut self, event: ClientEvent, now: Instant, replies: &mut Vec<ByteString>) {
        match event {
            ClientEvent::Ping => replies.push(server_event::pong().into()),
            ClientEvent::Pong => {}
            ClientEvent::Subscribe(req) => self.subscribe(req, replies).await,
            ClientEvent::Unsubscribe { channel } => self.unsubscribe(&channel).await,
            ClientEvent::Signin(req) => self.signin(req, replies).await,
            ClientEvent::Client(msg) => self.client_event(msg, now, replies).await,
            ClientEvent::Unknown(name) => {
                tracing::debug!(event = %name, "unknown event ignored");
                self.deps.metrics.reject(Rejection::MalformedMessage);
                replies.push(server_event::error(None, "Unsupported event").into());
            }
        }
    }

    fn malformed(&self, e: &ProtocolError, replies: &mut Vec<ByteString>) {
        tracing::debug!(error = %e, "malformed frame");
        self.deps.metrics.reject(Rejection::MalformedMessage);
        replies.push(server_event::error(None, &e.to_string()).into());
    }

    /// Queues a webhook event for this app (a no-op when no target wants it).
    fn webhook(&self, event: WebhookEvent) {
        release::webhook(&self.me, &self.deps, event);
    }

    /// A non-closing `pusher:error` for a refused request.
    fn refuse(&self, code: ErrorCode, why: Rejection, message: &str, replies: &mut Vec<ByteString>) {
        self.refuse_on(None, code, why, message, replies);
    }

    /// As `refuse`, for a request about `channel`.
    fn refuse_on(
        &self,
        channel: Option<&str>,
        code: ErrorCode,
        why: Rejection,
        message: &str,
        replies: &mut Vec<ByteString>,
    ) {
        tracing::debug!(reason = why.as_str(), "request refused");
        self.deps.metrics.reject(why);
        self.debug_refused(channel, code.code(), why, message);
        replies.push(server_event::error(Some(code), message).into());
    }

    /// Leaves every channel, signs out and gives the connection slot back, announcing each
    /// change; call once when the socket ends. Dropping the connection without it releases the
    /// same from a task of its own.
    pub async fn close(mut self) {
        self.debug_closed();
        let held = self.take_held();
        release::release_all(&self.me, &self.deps, held).await;
    }

    /// What the connection still holds, taken out: from now on the drop guard has nothing to do.
    fn take_held(&mut self) -> release::Holdings {
        self.released = true;
        release::Holdings { channels: self.channels.drain().map(|(name, _)| name).collect(), user: self.user.take() }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.debug_closed();
        let held = self.take_held();
        let (me, deps) = (self.me.clone(), self.deps.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { release::release_all(&me, &deps, held).await });
        }
    }
}
