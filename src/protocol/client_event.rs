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

/// The fields of a `pusher:*` event's `data`, each kept as raw JSON so that its type is
/// checked by hand and a refusal names the field actually at fault.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(default, borrow)]
    channel: Option<&'a RawValue>,
    #[serde(default, borrow)]
    auth: Option<&'a RawValue>,
    #[serde(default, borrow)]
    channel_data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    user_data: Option<&'a RawValue>,
}

/// Parses one text frame.
///
/// # Errors
/// [`ProtocolError::Malformed`] for anything that is not a JSON object with a string `event`;
/// for a `pusher:*` event, [`ProtocolError::MissingField`] when a required field (or `data`
/// itself) is absent and [`ProtocolError::WrongType`] when one has the wrong type.
pub fn parse(text: &str) -> Result<ClientEvent, ProtocolError> {
    let env: Envelope<'_> = serde_json::from_str(text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
    Ok(match env.event.as_ref() {
        "pusher:ping" => ClientEvent::Ping,
        "pusher:pong" => ClientEvent::Pong,
        "pusher:subscribe" => with_fields(env.data, |f| {
            Ok(ClientEvent::Subscribe(Subscribe {
                channel: required_string(f.channel, "channel")?,
                auth: optional_string(f.auth, "auth")?,
                channel_data: optional_json_text(f.channel_data, "channel_data")?,
            }))
        })?,
        "pusher:unsubscribe" => {
            with_fields(env.data, |f| Ok(ClientEvent::Unsubscribe { channel: required_string(f.channel, "channel")? }))?
        }
        "pusher:signin" => with_fields(env.data, |f| {
            let auth = required_string(f.auth, "auth")?;
            let user_data =
                optional_json_text(f.user_data, "user_data")?.ok_or(ProtocolError::MissingField("user_data"))?;
            Ok(ClientEvent::Signin(Signin { auth, user_data }))
        })?,
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

/// `pusher:*` data may be an object or a string holding one; both are accepted.
fn with_fields<T>(
    raw: Option<&RawValue>,
    read: impl FnOnce(&Fields<'_>) -> Result<T, ProtocolError>,
) -> Result<T, ProtocolError> {
    let raw = raw.filter(|r| r.get() != "null").ok_or(ProtocolError::MissingField("data"))?;
    let not_an_object = ProtocolError::WrongType { field: "data", expected: "an object" };
    match serde_json::from_str::<String>(raw.get()) {
        Ok(text) => read(&serde_json::from_str(&text).map_err(|_| not_an_object)?),
        Err(_) => read(&serde_json::from_str(raw.get()).map_err(|_| not_an_object)?),
    }
}

fn is_absent(raw: Option<&RawValue>) -> bool {
    raw.is_none_or(|r| r.get() == "null")
}

fn optional_string(raw: Option<&RawValue>, field: &'static str) -> Result<Option<String>, ProtocolError> {
    if is_absent(raw) {
        return Ok(None);
    }
    raw.and_then(|r| serde_json::from_str::<String>(r.get()).ok())
        .map(Some)
        .ok_or(ProtocolError::WrongType { field, expected: "a string" })
}

fn required_string(raw: Option<&RawValue>, field: &'static str) -> Result<String, ProtocolError> {
    optional_string(raw, field)?.ok_or(ProtocolError::MissingField(field))
}

/// A field that is normally a JSON string (`channel_data`, `user_data`): its string value, or
/// the raw JSON text when a client sent an object instead (the exact text that was signed).
fn optional_json_text(raw: Option<&RawValue>, field: &'static str) -> Result<Option<String>, ProtocolError> {
    let Some(raw) = raw.filter(|_| !is_absent(raw)) else {
        return Ok(None);
    };
    let text = raw.get();
    if text.starts_with('{') {
        return Ok(Some(text.to_owned()));
    }
    serde_json::from_str::<String>(text)
        .map(Some)
        .map_err(|_| ProtocolError::WrongType { field, expected: "a string (or an object)" })
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
        assert_eq!(parse(r#"{"event":"pusher:subscribe"}"#), Err(ProtocolError::MissingField("data")));
        assert_eq!(parse(r#"{"event":"pusher:subscribe","data":null}"#), Err(ProtocolError::MissingField("data")));
        assert_eq!(
            parse(r#"{"event":"pusher:subscribe","data":7}"#),
            Err(ProtocolError::WrongType { field: "data", expected: "an object" })
        );
        assert_eq!(
            parse(r#"{"event":"pusher:signin","data":{"auth":"x"}}"#),
            Err(ProtocolError::MissingField("user_data"))
        );
        assert_eq!(parse(r#"{"event":"client-x","data":{}}"#), Err(ProtocolError::MissingField("channel")));
    }

    #[test]
    fn refusals_name_the_field_at_fault() {
        let wrong = |field, expected| Err(ProtocolError::WrongType { field, expected });
        assert_eq!(
            parse(r#"{"event":"pusher:subscribe","data":{"channel":"private-a","auth":5}}"#),
            wrong("auth", "a string")
        );
        assert_eq!(parse(r#"{"event":"pusher:subscribe","data":{"channel":["a"]}}"#), wrong("channel", "a string"));
        assert_eq!(
            parse(r#"{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"k:s","channel_data":1}}"#),
            wrong("channel_data", "a string (or an object)")
        );
        assert_eq!(parse(r#"{"event":"pusher:unsubscribe","data":{}}"#), Err(ProtocolError::MissingField("channel")));
        assert_eq!(
            parse(r#"{"event":"pusher:signin","data":{"user_data":"{}"}}"#),
            Err(ProtocolError::MissingField("auth"))
        );
        assert_eq!(parse(r#"{"event":"pusher:signin","data":{"auth":1,"user_data":"{}"}}"#), wrong("auth", "a string"));
        let malformed = parse("nope").unwrap_err().to_string();
        assert_eq!(malformed.matches("Invalid message format").count(), 1, "{malformed}");
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
