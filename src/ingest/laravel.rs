//! What Laravel's `RedisBroadcaster` publishes, checked the way a REST trigger is: one
//! `PUBLISH` per channel, on `<key prefix><channel>`, of `{"event", "data", "socket"}`.
//! Must not do IO: pure parsing, so it can be tested byte for byte.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::protocol::{ChannelKind, ChannelName, Limits, SocketId, server_event};

/// A broadcast ready to deliver.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Broadcast {
    /// The channel, without Laravel's key prefix.
    pub(super) channel: ChannelName,
    /// The Pusher frame, encoded once.
    pub(super) frame: String,
    /// `event` and `data` (verbatim) for the cache channel store.
    pub(super) event: String,
    pub(super) data: String,
    /// The socket to leave out (`toOthers()`): a Pusher socket id, or a socket.io one's mapping.
    pub(super) except: Option<SocketId>,
}

/// Why a message was not delivered.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Skip {
    /// Not a broadcast (other traffic on the same Redis, or Herald's own bus).
    #[error("not a Laravel broadcast")]
    Foreign,
    /// A broadcast that is not valid JSON of Laravel's shape.
    #[error("malformed broadcast: {0}")]
    Malformed(&'static str),
    /// Over a limit, or on a channel Herald serves no other way (user channels).
    #[error("refused broadcast: {0}")]
    Refused(&'static str),
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    event: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    socket: Option<&'a RawValue>,
}

/// Turns one published message into a broadcast. `own_prefix` is Herald's bus prefix
/// (`adapter.key_prefix`), whose messages are never Laravel's.
///
/// # Errors
/// [`Skip`] says why the message is not delivered.
pub(super) fn parse(
    redis_channel: &[u8],
    payload: &[u8],
    key_prefix: &str,
    own_prefix: &str,
    limits: &Limits,
) -> Result<Broadcast, Skip> {
    let name = std::str::from_utf8(redis_channel).map_err(|_| Skip::Foreign)?;
    if name.starts_with(own_prefix) && name[own_prefix.len()..].starts_with(":{") {
        return Err(Skip::Foreign);
    }
    let name = name.strip_prefix(key_prefix).unwrap_or(name);
    let channel = ChannelName::parse(name, limits.max_channel_name_len).map_err(|_| Skip::Foreign)?;
    let payload: Payload<'_> = serde_json::from_slice(payload).map_err(|_| Skip::Malformed("not a JSON object"))?;
    let event: String = payload
        .event
        .and_then(|e| serde_json::from_str(e.get()).ok())
        .ok_or(Skip::Malformed("`event` must be a string"))?;
    let data = payload.data.ok_or(Skip::Malformed("`data` is missing"))?;
    // As a REST trigger's `data`: a string as it is, anything else as its JSON text (Laravel
    // sends the event's payload object, byte for byte as json_encode wrote it).
    let data = serde_json::from_str::<String>(data.get()).unwrap_or_else(|_| data.get().to_owned());
    if event.is_empty() || event.len() > limits.max_event_name_len {
        return Err(Skip::Refused("event name length"));
    }
    if data.len() > limits.max_event_data_bytes {
        return Err(Skip::Refused("data too large"));
    }
    if channel.kind() == ChannelKind::User {
        return Err(Skip::Refused("user channels take sendToUser"));
    }
    // A Pusher socket id, or a socket.io one (Echo's socket.io connector), or null.
    let except = payload
        .socket
        .and_then(|s| serde_json::from_str::<String>(s.get()).ok())
        .and_then(|s| SocketId::parse(&s).ok().or_else(|| SocketId::for_foreign(&s)));
    let frame = server_event::channel_event(&event, channel.as_str(), &data);
    Ok(Broadcast { channel, frame, event, data, except })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    #[test]
    fn laravels_payload_becomes_the_pusher_frame() {
        let payload =
            br#"{"event":"App\\Events\\OrderShipped","data":{"order":{"id":1},"socket":"123.456"},"socket":"123.456"}"#;
        let b = parse(b"laravel_database_private-orders.1", payload, "laravel_database_", "herald", &limits()).unwrap();
        assert_eq!(b.channel.as_str(), "private-orders.1");
        assert_eq!(b.except, Some(SocketId::from_parts(123, 456)));
        assert_eq!(b.data, r#"{"order":{"id":1},"socket":"123.456"}"#);
        assert_eq!(
            b.frame,
            r#"{"event":"App\\Events\\OrderShipped","channel":"private-orders.1","data":"{\"order\":{\"id\":1},\"socket\":\"123.456\"}"}"#
        );
    }

    #[test]
    fn unprefixed_names_and_null_or_foreign_sockets() {
        let b = parse(b"orders", br#"{"event":"e","data":{},"socket":null}"#, "laravel_database_", "herald", &limits())
            .unwrap();
        assert_eq!((b.channel.as_str(), b.except), ("orders", None));
        let sio = br#"{"event":"e","data":{},"socket":"kH3_2zKcZk0AAAAB"}"#;
        let except = parse(b"orders", sio, "", "herald", &limits()).unwrap().except;
        assert_eq!(except, SocketId::for_foreign("kH3_2zKcZk0AAAAB"), "the socket.io socket's Herald id");
        let empty = br#"{"event":"e","data":{},"socket":""}"#;
        assert_eq!(parse(b"orders", empty, "", "herald", &limits()).unwrap().except, None);
    }

    #[test]
    fn skips_what_is_not_a_broadcast() {
        let l = limits();
        let ok = br#"{"event":"e","data":{}}"#;
        assert_eq!(parse(b"herald:{app:c:x}:bus", ok, "", "herald", &l), Err(Skip::Foreign));
        assert_eq!(parse(b"not a channel!", ok, "", "herald", &l), Err(Skip::Foreign));
        assert_eq!(parse(b"x", b"nope", "", "herald", &l), Err(Skip::Malformed("not a JSON object")));
        assert_eq!(parse(b"x", br#"{"data":{}}"#, "", "herald", &l), Err(Skip::Malformed("`event` must be a string")));
        assert_eq!(parse(b"x", br#"{"event":"e"}"#, "", "herald", &l), Err(Skip::Malformed("`data` is missing")));
        let big = format!(r#"{{"event":"e","data":"{}"}}"#, "a".repeat(l.max_event_data_bytes + 1));
        assert_eq!(parse(b"x", big.as_bytes(), "", "herald", &l), Err(Skip::Refused("data too large")));
        let user = parse(b"#server-to-user-1", ok, "", "herald", &l);
        assert_eq!(user, Err(Skip::Refused("user channels take sendToUser")));
    }
}
