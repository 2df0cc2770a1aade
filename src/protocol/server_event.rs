//! Encoding of server → client frames. Hides Pusher's "data is a JSON string" rule.
//! Must not decide when a frame is sent; it only produces the bytes.

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::value::RawValue;

use super::codes::{ErrorCode, SubscriptionErrorKind};
use super::ids::SocketId;

#[derive(Serialize)]
struct Frame<'a, D: Serialize> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<D>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
}

fn encode<D: Serialize>(event: &str, channel: Option<&str>, data: Option<D>) -> String {
    frame(event, channel, data, None)
}

fn frame<D: Serialize>(event: &str, channel: Option<&str>, data: Option<D>, user_id: Option<&str>) -> String {
    // unwrap: strings, numbers and RawValues always serialize.
    serde_json::to_string(&Frame { event, channel, data, user_id }).unwrap()
}

/// JSON text of `value`, to be sent as a string-typed `data`.
fn json<T: Serialize>(value: &T) -> String {
    // unwrap: strings, numbers and RawValues always serialize.
    serde_json::to_string(value).unwrap()
}

/// `pusher:connection_established` with `data` as a JSON string.
pub fn connection_established(socket_id: &SocketId, activity_timeout_secs: u64) -> String {
    #[derive(Serialize)]
    struct D<'a> {
        socket_id: &'a str,
        activity_timeout: u64,
    }
    let data = json(&D { socket_id: socket_id.as_str(), activity_timeout: activity_timeout_secs });
    encode("pusher:connection_established", None, Some(data))
}

/// `pusher:error` with an object `data` (`code` is `null` when `None`).
pub fn error(code: Option<ErrorCode>, message: &str) -> String {
    #[derive(Serialize)]
    struct D<'a> {
        code: Option<u16>,
        message: &'a str,
    }
    encode("pusher:error", None, Some(D { code: code.map(ErrorCode::code), message }))
}

/// `pusher:pong`.
pub fn pong() -> String {
    encode("pusher:pong", None, Some("{}"))
}

/// `pusher:ping`.
pub fn ping() -> String {
    encode("pusher:ping", None, Some("{}"))
}

/// `pusher_internal:subscription_succeeded` for non-presence channels (`data` is `"{}"`).
pub fn subscription_succeeded(channel: &str) -> String {
    encode("pusher_internal:subscription_succeeded", Some(channel), Some("{}"))
}

/// One presence roster entry: (user id, user info).
pub type RosterEntry<'a> = (&'a str, Option<&'a RawValue>);

struct Hash<'a>(&'a [RosterEntry<'a>]);

impl Serialize for Hash<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (id, info) in self.0 {
            map.serialize_entry(id, info)?;
        }
        map.end()
    }
}

/// `pusher_internal:subscription_succeeded` for a presence channel: `ids`, `hash` (always an
/// object) and `count`, inside a JSON string.
pub fn presence_subscription_succeeded(channel: &str, roster: &[RosterEntry<'_>]) -> String {
    #[derive(Serialize)]
    struct Presence<'a> {
        ids: Vec<&'a str>,
        hash: Hash<'a>,
        count: usize,
    }
    #[derive(Serialize)]
    struct D<'a> {
        presence: Presence<'a>,
    }
    let ids = roster.iter().map(|(id, _)| *id).collect();
    let data = json(&D { presence: Presence { ids, hash: Hash(roster), count: roster.len() } });
    encode("pusher_internal:subscription_succeeded", Some(channel), Some(data))
}

/// `pusher:subscription_error` with `{type, error, status}`.
pub fn subscription_error(channel: &str, kind: SubscriptionErrorKind, message: &str) -> String {
    #[derive(Serialize)]
    struct D<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        error: &'a str,
        status: u16,
    }
    let data = D { kind: kind.type_name(), error: message, status: kind.status() };
    encode("pusher:subscription_error", Some(channel), Some(data))
}

/// `pusher_internal:member_added` (`data` is a JSON string).
pub fn member_added(channel: &str, user_id: &str, user_info: Option<&RawValue>) -> String {
    #[derive(Serialize)]
    struct D<'a> {
        user_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_info: Option<&'a RawValue>,
    }
    encode("pusher_internal:member_added", Some(channel), Some(json(&D { user_id, user_info })))
}

/// `pusher_internal:member_removed` (`data` is a JSON string).
pub fn member_removed(channel: &str, user_id: &str) -> String {
    #[derive(Serialize)]
    struct D<'a> {
        user_id: &'a str,
    }
    encode("pusher_internal:member_removed", Some(channel), Some(json(&D { user_id })))
}

/// A channel event from the REST API: `data` is the string the API received, verbatim.
pub fn channel_event(event: &str, channel: &str, data: &str) -> String {
    encode(event, Some(channel), Some(data))
}

/// A relayed client event: `data` exactly as the sender sent it, `user_id` on presence channels.
pub fn client_event(event: &str, channel: &str, data: Option<&RawValue>, user_id: Option<&str>) -> String {
    frame(event, Some(channel), data, user_id)
}

/// `pusher:signin_success` echoing the signed `user_data` string.
pub fn signin_success(user_data: &str) -> String {
    #[derive(Serialize)]
    struct D<'a> {
        user_data: &'a str,
    }
    encode("pusher:signin_success", None, Some(D { user_data }))
}

/// `pusher:cache_miss` for an empty cache channel.
pub fn cache_miss(channel: &str) -> String {
    encode("pusher:cache_miss", Some(channel), Some("{}"))
}

/// `pusher_internal:subscription_count` (`data` is a JSON string).
pub fn subscription_count(channel: &str, count: usize) -> String {
    #[derive(Serialize)]
    struct D {
        subscription_count: usize,
    }
    encode("pusher_internal:subscription_count", Some(channel), Some(json(&D { subscription_count: count })))
}

/// Whether a watchlist entry went online or offline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchlistStatus {
    /// The user's first connection signed in.
    Online,
    /// The user's last connection went away.
    Offline,
}

/// `pusher_internal:watchlist_events` with `{"events":[{"name", "user_ids"}]}` in a JSON string.
pub fn watchlist_events(events: &[(WatchlistStatus, Vec<&str>)]) -> String {
    #[derive(Serialize)]
    struct E<'a> {
        name: WatchlistStatus,
        user_ids: &'a [&'a str],
    }
    #[derive(Serialize)]
    struct D<'a> {
        events: Vec<E<'a>>,
    }
    let events = events.iter().map(|(name, ids)| E { name: *name, user_ids: ids }).collect();
    encode("pusher_internal:watchlist_events", None, Some(json(&D { events })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn golden_frames() {
        let sid = SocketId::from_parts(123456, 7890123);
        let info1 = raw(r#"{"id":1,"name":"Ann"}"#);
        let table = [
            (
                connection_established(&sid, 120),
                r#"{"event":"pusher:connection_established","data":"{\"socket_id\":\"123456.7890123\",\"activity_timeout\":120}"}"#,
            ),
            (
                error(Some(ErrorCode::ClientEventRejected), "Client event rate limit exceeded"),
                r#"{"event":"pusher:error","data":{"code":4301,"message":"Client event rate limit exceeded"}}"#,
            ),
            (error(None, "x"), r#"{"event":"pusher:error","data":{"code":null,"message":"x"}}"#),
            (pong(), r#"{"event":"pusher:pong","data":"{}"}"#),
            (ping(), r#"{"event":"pusher:ping","data":"{}"}"#),
            (
                subscription_succeeded("orders"),
                r#"{"event":"pusher_internal:subscription_succeeded","channel":"orders","data":"{}"}"#,
            ),
            (
                presence_subscription_succeeded("presence-r", &[("1", Some(&info1)), ("2", None)]),
                r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-r","data":"{\"presence\":{\"ids\":[\"1\",\"2\"],\"hash\":{\"1\":{\"id\":1,\"name\":\"Ann\"},\"2\":null},\"count\":2}}"}"#,
            ),
            (
                presence_subscription_succeeded("presence-r", &[]),
                r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-r","data":"{\"presence\":{\"ids\":[],\"hash\":{},\"count\":0}}"}"#,
            ),
            (
                subscription_error("private-x", SubscriptionErrorKind::AuthError, "bad"),
                r#"{"event":"pusher:subscription_error","channel":"private-x","data":{"type":"AuthError","error":"bad","status":401}}"#,
            ),
            (
                member_added("presence-r", "3", Some(&info1)),
                r#"{"event":"pusher_internal:member_added","channel":"presence-r","data":"{\"user_id\":\"3\",\"user_info\":{\"id\":1,\"name\":\"Ann\"}}"}"#,
            ),
            (
                member_removed("presence-r", "3"),
                r#"{"event":"pusher_internal:member_removed","channel":"presence-r","data":"{\"user_id\":\"3\"}"}"#,
            ),
            (
                channel_event("App\\Events\\OrderShipped", "private-orders.1", r#"{"url":"a\/b"}"#),
                r#"{"event":"App\\Events\\OrderShipped","channel":"private-orders.1","data":"{\"url\":\"a\\/b\"}"}"#,
            ),
            (
                client_event("client-typing", "presence-r", Some(&raw(r#"{"name":"Ann"}"#)), Some("1")),
                r#"{"event":"client-typing","channel":"presence-r","data":{"name":"Ann"},"user_id":"1"}"#,
            ),
            (
                client_event("client-typing", "private-r", None, None),
                r#"{"event":"client-typing","channel":"private-r"}"#,
            ),
            (
                signin_success(r#"{"id":"12345"}"#),
                r#"{"event":"pusher:signin_success","data":{"user_data":"{\"id\":\"12345\"}"}}"#,
            ),
            (cache_miss("cache-a"), r#"{"event":"pusher:cache_miss","channel":"cache-a","data":"{}"}"#),
            (
                subscription_count("orders", 101),
                r#"{"event":"pusher_internal:subscription_count","channel":"orders","data":"{\"subscription_count\":101}"}"#,
            ),
            (
                watchlist_events(&[(WatchlistStatus::Online, vec!["1"]), (WatchlistStatus::Offline, vec!["2", "3"])]),
                r#"{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":\"online\",\"user_ids\":[\"1\"]},{\"name\":\"offline\",\"user_ids\":[\"2\",\"3\"]}]}"}"#,
            ),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
    }
}
