//! Webhook event names and the signed body format (pusher-protocol.md §8).
//! Must not send anything: `webhooks/` batches, signs and delivers.

use serde::{Deserialize, Serialize};

/// The kinds of webhook event Pusher defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    /// A channel got its first subscriber.
    ChannelOccupied,
    /// A channel lost its last subscriber.
    ChannelVacated,
    /// A user's first socket joined a presence channel.
    MemberAdded,
    /// A user's last socket left a presence channel.
    MemberRemoved,
    /// A client sent a `client-*` event.
    ClientEvent,
    /// A socket subscribed to an empty cache channel.
    CacheMiss,
    /// A non-presence channel's subscriber count changed.
    SubscriptionCount,
}

impl WebhookKind {
    /// The `name` field of the event.
    pub const fn name(self) -> &'static str {
        match self {
            Self::ChannelOccupied => "channel_occupied",
            Self::ChannelVacated => "channel_vacated",
            Self::MemberAdded => "member_added",
            Self::MemberRemoved => "member_removed",
            Self::ClientEvent => "client_event",
            Self::CacheMiss => "cache_miss",
            Self::SubscriptionCount => "subscription_count",
        }
    }
}

/// One webhook event as it appears in the `events` array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebhookEvent {
    /// Event kind, serialized as `name`.
    #[serde(rename = "name", serialize_with = "ser_kind")]
    pub kind: WebhookKind,
    /// The channel.
    pub channel: String,
    /// Presence user (member events; client events on presence channels).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Client event name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Client event data, as a string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Sender of a client event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_id: Option<String>,
    /// Subscriber count (`subscription_count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription_count: Option<usize>,
}

fn ser_kind<S: serde::Serializer>(kind: &WebhookKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

impl WebhookEvent {
    /// An event with only `name` and `channel`.
    pub fn channel(kind: WebhookKind, channel: &str) -> Self {
        Self {
            kind,
            channel: channel.to_owned(),
            user_id: None,
            event: None,
            data: None,
            socket_id: None,
            subscription_count: None,
        }
    }

    /// `member_added` / `member_removed`.
    pub fn member(kind: WebhookKind, channel: &str, user_id: &str) -> Self {
        Self { user_id: Some(user_id.to_owned()), ..Self::channel(kind, channel) }
    }
}

/// The body of one webhook request: `{"time_ms":…,"events":[…]}`, serialized once and signed
/// over exactly these bytes.
pub fn body(time_ms: u64, events: &[WebhookEvent]) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        time_ms: u64,
        events: &'a [WebhookEvent],
    }
    // unwrap: strings and integers always serialize.
    serde_json::to_string(&Body { time_ms, events }).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::signature::sign_bytes;

    #[test]
    fn body_matches_the_documented_vector() {
        let b = body(1327078148132, &[WebhookEvent::channel(WebhookKind::ChannelOccupied, "my-channel")]);
        assert_eq!(b, r#"{"time_ms":1327078148132,"events":[{"name":"channel_occupied","channel":"my-channel"}]}"#);
        assert_eq!(
            sign_bytes("7ad3773142a6692b25b8", b.as_bytes()),
            "c19001ae3963ccb13bf618e5b16ba9848e7e74df0993aa0689168e341c6833cf"
        );
    }

    #[test]
    fn event_shapes() {
        let m = WebhookEvent::member(WebhookKind::MemberAdded, "presence-a", "1");
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"name":"member_added","channel":"presence-a","user_id":"1"}"#
        );
        let c = WebhookEvent {
            event: Some("client-x".into()),
            data: Some("{\"a\":1}".into()),
            socket_id: Some("1.2".into()),
            ..WebhookEvent::channel(WebhookKind::ClientEvent, "private-a")
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"name":"client_event","channel":"private-a","event":"client-x","data":"{\"a\":1}","socket_id":"1.2"}"#
        );
        let n =
            WebhookEvent { subscription_count: Some(3), ..WebhookEvent::channel(WebhookKind::SubscriptionCount, "a") };
        assert_eq!(
            serde_json::to_string(&n).unwrap(),
            r#"{"name":"subscription_count","channel":"a","subscription_count":3}"#
        );
    }
}
