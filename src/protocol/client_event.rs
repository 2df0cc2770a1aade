//! Parsing of client → server frames into `ClientEvent`.
//! Must not check permissions or subscriptions: `connection/` does that.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::error::ProtocolError;

/// A frame a client sent, parsed.
#[derive(Debug, PartialEq)]
pub enum ClientEvent {
    /// `pusher:ping`.
    Ping,
    /// `pusher:pong`.
    Pong,
    /// `pusher:subscribe`.
    Subscribe(Subscribe),
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// The channel to leave (not validated).
        channel: String,
    },
    /// `pusher:signin`.
    Signin(Signin),
    /// A `client-*` event to relay.
    Client(ClientMessage),
    /// Any other event name (unknown `pusher:*` or not a `client-` event).
    Unknown(String),
}

/// The body of `pusher:subscribe`.
#[derive(Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// Channel name as sent (not yet validated).
    pub channel: String,
    /// `{key}:{signature}`; empty or absent for public channels.
    pub auth: Option<String>,
    /// Presence `channel_data`, the exact string that was signed.
    pub channel_data: Option<String>,
}

/// The body of `pusher:signin`.
#[derive(Debug, PartialEq, Eq)]
pub struct Signin {
    /// `{key}:{signature}`.
    pub auth: String,
    /// The exact `user_data` string that was signed.
    pub user_data: String,
}

/// A `client-*` event.
#[derive(Debug)]
pub struct ClientMessage {
    /// Event name, starts with `client-`.
    pub event: String,
    /// Target channel (not validated).
    pub channel: String,
    /// `data` exactly as sent, relayed verbatim.
    pub data: Option<Box<RawValue>>,
}

impl PartialEq for ClientMessage {
    fn eq(&self, other: &Self) -> bool {
        self.event == other.event
            && self.channel == other.channel
            && self.data.as_ref().map(|d| d.get()) == other.data.as_ref().map(|d| d.get())
    }
}

impl ClientMessage {
    /// Size of `data` in bytes, as sent.
    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, |d| d.get().len())
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(default, borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SubscribeData {
    channel: String,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    channel_data: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct SigninData {
    auth: String,
    user_data: Box<RawValue>,
}

#[derive(Deserialize)]
struct UnsubscribeData {
    channel: String,
}

/// Parses one text frame.
///
/// # Errors
/// [`ProtocolError::Malformed`] for anything that is not a JSON object with a string `event`,
/// [`ProtocolError::MissingField`] when a `pusher:*` event lacks a required field.
pub fn parse(text: &str) -> Result<ClientEvent, ProtocolError> {
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    Ok(match env.event.as_ref() {
        "pusher:ping" => ClientEvent::Ping,
        "pusher:pong" => ClientEvent::Pong,
        "pusher:subscribe" => {
            let d: SubscribeData = with_data(env.data, "channel")?;
            ClientEvent::Subscribe(Subscribe {
                channel: d.channel,
                auth: d.auth,
                channel_data: d.channel_data.as_deref().map(string_or_raw),
            })
        }
        "pusher:unsubscribe" => {
            let d: UnsubscribeData = with_data(env.data, "channel")?;
            ClientEvent::Unsubscribe { channel: d.channel }
        }
        "pusher:signin" => {
            let d: SigninData = with_data(env.data, "user_data")?;
            ClientEvent::Signin(Signin { auth: d.auth, user_data: string_or_raw(&d.user_data) })
        }
        e if e.starts_with("client-") => {
            let channel = env.channel.ok_or(ProtocolError::MissingField("channel"))?;
            ClientEvent::Client(ClientMessage {
                event: e.to_owned(),
                channel: channel.into_owned(),
                data: env.data.map(RawValue::to_owned),
            })
        }
        other => ClientEvent::Unknown(other.to_owned()),
    })
}

/// `pusher:*` data may be an object or a string holding JSON; both are accepted.
fn with_data<T: DeserializeOwned>(raw: Option<&RawValue>, field: &'static str) -> Result<T, ProtocolError> {
    let parsed = raw.and_then(|raw| match serde_json::from_str::<String>(raw.get()) {
        Ok(text) => from_json_text(&text),
        Err(_) => from_json_text(raw.get()),
    });
    parsed.ok_or(ProtocolError::MissingField(field))
}

/// A field that is normally a JSON string (`channel_data`, `user_data`): its string value, or
/// the raw JSON text when a client sent an object instead.
fn string_or_raw(raw: &RawValue) -> String {
    serde_json::from_str::<String>(raw.get()).unwrap_or_else(|_| raw.get().to_owned())
}

/// Parses a JSON document held in a string field into `T`.
pub(crate) fn from_json_text<T: DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(channel: &str, auth: Option<&str>, data: Option<&str>) -> ClientEvent {
        ClientEvent::Subscribe(Subscribe {
            channel: channel.into(),
            auth: auth.map(Into::into),
            channel_data: data.map(Into::into),
        })
    }

    #[test]
    fn parses_what_pusher_js_sends() {
        let table: Vec<(&str, ClientEvent)> = vec![
            (r#"{"event":"pusher:ping","data":{}}"#, ClientEvent::Ping),
            (r#"{"event":"pusher:pong","data":{}}"#, ClientEvent::Pong),
            (r#"{"event":"pusher:ping"}"#, ClientEvent::Ping),
            (r#"{"event":"pusher:subscribe","data":{"auth":"","channel":"orders"}}"#, sub("orders", Some(""), None)),
            (r#"{"event":"pusher:subscribe","data":{"channel":"orders"}}"#, sub("orders", None, None)),
            (
                r#"{"event":"pusher:subscribe","data":"{\"channel\":\"orders\",\"auth\":\"k:s\"}"}"#,
                sub("orders", Some("k:s"), None),
            ),
            (
                r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":"{\"user_id\":10}","channel":"presence-a"}}"#,
                sub("presence-a", Some("k:s"), Some(r#"{"user_id":10}"#)),
            ),
            (
                r#"{"event":"pusher:subscribe","data":{"auth":"k:s","channel_data":{"user_id":"1"},"channel":"presence-a"}}"#,
                sub("presence-a", Some("k:s"), Some(r#"{"user_id":"1"}"#)),
            ),
            (
                r#"{"event":"pusher:unsubscribe","data":{"channel":"orders"}}"#,
                ClientEvent::Unsubscribe { channel: "orders".into() },
            ),
            (
                r#"{"event":"pusher:signin","data":{"auth":"k:s","user_data":"{\"id\":\"1\"}"}}"#,
                ClientEvent::Signin(Signin { auth: "k:s".into(), user_data: r#"{"id":"1"}"#.into() }),
            ),
            (r#"{"event":"pusher:whatever","data":{}}"#, ClientEvent::Unknown("pusher:whatever".into())),
            (r#"{"event":"typing","channel":"x"}"#, ClientEvent::Unknown("typing".into())),
        ];
        for (text, want) in table {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn client_event_keeps_data_verbatim() {
        let ClientEvent::Client(m) =
            parse(r#"{"event":"client-typing","data":{"name":"Ann", "x":1.50},"channel":"private-chat.1"}"#).unwrap()
        else {
            panic!("not a client event")
        };
        assert_eq!(m.event, "client-typing");
        assert_eq!(m.channel, "private-chat.1");
        assert_eq!(m.data.as_ref().unwrap().get(), r#"{"name":"Ann", "x":1.50}"#);
        assert_eq!(m.data_len(), 24);
    }

    #[test]
    fn rejects_malformed_frames() {
        for bad in ["", "null", "[]", "{}", r#"{"event":1}"#, "{\"event\":\"pusher:ping\"", "nope"] {
            assert!(matches!(parse(bad), Err(ProtocolError::Malformed(_))), "{bad}");
        }
        assert_eq!(parse(r#"{"event":"pusher:subscribe","data":{}}"#), Err(ProtocolError::MissingField("channel")));
        assert_eq!(parse(r#"{"event":"pusher:subscribe"}"#), Err(ProtocolError::MissingField("channel")));
        assert_eq!(
            parse(r#"{"event":"pusher:signin","data":{"auth":"x"}}"#),
            Err(ProtocolError::MissingField("user_data"))
        );
        assert_eq!(parse(r#"{"event":"client-x","data":{}}"#), Err(ProtocolError::MissingField("channel")));
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let deep = format!(
            r#"{{"event":"client-x","channel":"private-a","data":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let _ = parse(&deep);
        let deep_pusher =
            format!(r#"{{"event":"pusher:subscribe","data":{}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep_pusher).is_err());
    }
}
