//! What a connection tells the debug console (`debug/`): opened, closed, signed in,
//! (un)subscribed, refused, client events. Must not decide anything: each hook only reports,
//! and costs one atomic load while no console watches the app.

use serde_json::json;

use super::Connection;
use crate::metrics::Rejection;
use crate::protocol::ClientMessage;

impl Connection {
    /// The transport accepted the socket (`transport`: `pusher` or `socket.io`).
    pub fn opened(&self, transport: &'static str, origin: Option<&str>) {
        let tap = &self.deps.debug;
        tap.emit(&self.me.app.id, || {
            json!({"type": "connection", "socket_id": self.me.socket_id.to_string(), "transport": transport, "origin": origin})
        });
    }

    pub(super) fn debug_closed(&self) {
        let user = self.user.as_ref().map(|u| u.id.as_str());
        self.deps.debug.emit(
            &self.me.app.id,
            || json!({"type": "disconnection", "socket_id": self.me.socket_id.to_string(), "user_id": user}),
        );
    }

    pub(super) fn debug_signin(&self, user_id: &str) {
        self.deps.debug.emit(
            &self.me.app.id,
            || json!({"type": "signin", "socket_id": self.me.socket_id.to_string(), "user_id": user_id}),
        );
    }

    pub(super) fn debug_subscribed(&self, channel: &str) {
        let user = self.channels.get(channel).and_then(|u| u.as_deref());
        self.deps.debug.emit(&self.me.app.id, || {
            json!({"type": "subscribed", "socket_id": self.me.socket_id.to_string(), "channel": channel, "user_id": user})
        });
    }

    pub(super) fn debug_unsubscribed(&self, channel: &str) {
        self.deps.debug.emit(
            &self.me.app.id,
            || json!({"type": "unsubscribed", "socket_id": self.me.socket_id.to_string(), "channel": channel}),
        );
    }

    /// A refused request: `code` is the Pusher error code (or the socket.io status).
    pub(super) fn debug_refused(&self, channel: Option<&str>, code: u16, why: Rejection, message: &str) {
        let what = match why {
            Rejection::SigninRefused => "signin",
            Rejection::ClientEventRefused | Rejection::ClientEventRateLimited | Rejection::MessageQuota => {
                "client event"
            }
            _ if channel.is_some() => "subscription",
            _ => "request",
        };
        self.deps.debug.emit(&self.me.app.id, || {
            json!({
                "type": "refused",
                "socket_id": self.me.socket_id.to_string(),
                "what": what,
                "channel": channel,
                "code": code,
                "reason": why.as_str(),
                "message": message,
            })
        });
    }

    pub(super) fn debug_client_event(&self, msg: &ClientMessage) {
        let tap = &self.deps.debug;
        tap.emit(&self.me.app.id, || {
            let data = msg.data.as_deref().map_or("", |d| d.get());
            json!({
                "type": "client_event",
                "socket_id": self.me.socket_id.to_string(),
                "channel": msg.channel,
                "event": msg.event,
                "bytes": data.len(),
                "preview": tap.preview(data),
            })
        });
    }
}
