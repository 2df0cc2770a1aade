//! Parses and validates one event of `POST /events` or of a `batch_events` item against the
//! app's limits (pusher-protocol.md §6.1, §6.2).
//! Must not publish or query anything: it turns JSON into a [`ValidEvent`] or an error.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::{ApiError, BadRequest};
use super::info::Info;
use crate::protocol::{ChannelName, Limits, SocketId};

/// An event that passed every check: ready to be encoded and published.
#[derive(Debug)]
pub(super) struct ValidEvent {
    /// Event name (no charset rule: Laravel sends `App\Events\X`).
    pub(super) name: String,
    /// `data` verbatim: the string received, or the JSON text of a non-string value.
    pub(super) data: String,
    /// Distinct channels, in request order.
    pub(super) channels: Vec<ChannelName>,
    /// The connection not to deliver to.
    pub(super) socket_id: Option<SocketId>,
    /// Attributes to report, when `info` was given.
    pub(super) info: Option<Info>,
}

/// The fields of an event as sent; types are checked by hand to name the field at fault.
#[derive(Debug, Deserialize)]
pub(super) struct EventIn {
    #[serde(default)]
    name: Option<Value>,
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    channel: Option<Value>,
    #[serde(default)]
    channels: Option<Value>,
    #[serde(default)]
    socket_id: Option<Value>,
    #[serde(default)]
    info: Option<Value>,
}

/// Deserializes a JSON object (an array or scalar is refused even if it would fit `T`).
///
/// # Errors
/// [`BadRequest::MalformedJson`].
pub(super) fn object<T: DeserializeOwned>(text: &[u8]) -> Result<T, BadRequest> {
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(BadRequest::MalformedJson);
    }
    serde_json::from_slice(text).map_err(|_| BadRequest::MalformedJson)
}

impl EventIn {
    /// Checks every field against `limits`.
    ///
    /// # Errors
    /// [`ApiError::BadRequest`] for a missing or malformed field, too many channels or an invalid
    /// channel name or socket id; [`ApiError::DataTooLarge`] when `data` is over the limit.
    pub(super) fn validate(self, limits: &Limits) -> Result<ValidEvent, ApiError> {
        let channels = channels(self.channel, self.channels, limits)?;
        let name = match self.name {
            Some(Value::String(name)) => name,
            Some(_) => return Err(wrong_type("name", "a string")),
            None => return Err(BadRequest::MissingField("name").into()),
        };
        if name.is_empty() {
            return Err(BadRequest::EmptyEventName.into());
        }
        if name.chars().count() > limits.max_event_name_len {
            return Err(BadRequest::EventNameTooLong { limit: limits.max_event_name_len }.into());
        }
        let data = data_text(&self.data.ok_or(BadRequest::MissingField("data"))?);
        if data.len() > limits.max_event_data_bytes {
            return Err(ApiError::DataTooLarge { size: data.len(), limit: limits.max_event_data_bytes });
        }
        let socket_id = match self.socket_id {
            Some(Value::String(s)) => Some(SocketId::parse(&s).map_err(|_| BadRequest::BadSocketId)?),
            Some(_) => return Err(BadRequest::BadSocketId.into()),
            None => None,
        };
        let info = match self.info {
            Some(Value::String(list)) => Some(Info::parse(&list)),
            Some(_) => return Err(wrong_type("info", "a comma-separated string")),
            None => None,
        };
        Ok(ValidEvent { name, data, channels, socket_id, info })
    }
}

/// `channel` (PHP SDK, one channel) or `channels` (array): checked, then de-duplicated.
fn channels(channel: Option<Value>, channels: Option<Value>, limits: &Limits) -> Result<Vec<ChannelName>, ApiError> {
    let names: Vec<Value> = match (channel, channels) {
        (Some(_), Some(_)) => return Err(BadRequest::ChannelAndChannels.into()),
        (Some(one), None) => vec![one],
        (None, Some(Value::Array(many))) => many,
        (None, Some(_)) => return Err(wrong_type("channels", "an array of strings")),
        (None, None) => return Err(BadRequest::NoChannels.into()),
    };
    if names.is_empty() {
        return Err(BadRequest::NoChannels.into());
    }
    if names.len() > limits.max_channels_per_trigger {
        let (count, limit) = (names.len(), limits.max_channels_per_trigger);
        return Err(BadRequest::TooManyChannels { count, limit }.into());
    }
    let mut out: Vec<ChannelName> = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let parsed = name
            .as_str()
            .and_then(|n| ChannelName::parse(n, limits.max_channel_name_len).ok())
            .ok_or(BadRequest::BadChannelName { index })?;
        if !out.contains(&parsed) {
            out.push(parsed);
        }
    }
    Ok(out)
}

/// A string `data` is relayed as its value; anything else as its JSON text, byte for byte.
fn data_text(raw: &RawValue) -> String {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_owned())
    } else {
        text.to_owned()
    }
}

fn wrong_type(field: &'static str, expected: &'static str) -> ApiError {
    BadRequest::WrongType { field, expected }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ValidEvent, ApiError> {
        object::<EventIn>(json.as_bytes())?.validate(&Limits::default())
    }

    fn bad(json: &str) -> BadRequest {
        match parse(json) {
            Err(ApiError::BadRequest(e)) => e,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn accepts_both_channel_forms_and_keeps_data() {
        let e =
            parse(r#"{"name":"App\\E","data":"{\"u\":\"a\\/b\"}","channel":"private-o.1","socket_id":"1.2"}"#).unwrap();
        assert_eq!((e.name.as_str(), e.data.as_str()), ("App\\E", r#"{"u":"a\/b"}"#));
        assert_eq!(e.channels[0].as_str(), "private-o.1");
        assert_eq!(e.socket_id.unwrap().as_str(), "1.2");
        let e = parse(r#"{"name":"n","data":{"b": [1, 2]},"channels":["a","b","a"],"info":"user_count"}"#).unwrap();
        assert_eq!(e.data, r#"{"b": [1, 2]}"#);
        assert_eq!(e.channels.iter().map(ChannelName::as_str).collect::<Vec<_>>(), ["a", "b"]);
        assert!(e.info.unwrap().user_count);
    }

    #[test]
    fn refusals() {
        assert_eq!(bad("[1]"), BadRequest::MalformedJson);
        assert_eq!(bad("{"), BadRequest::MalformedJson);
        assert_eq!(bad(r#"{"data":"d","channel":"a"}"#), BadRequest::MissingField("name"));
        assert_eq!(bad(r#"{"name":"n","data":null,"channel":"a"}"#), BadRequest::MissingField("data"));
        assert_eq!(bad(r#"{"name":"n","data":"d"}"#), BadRequest::NoChannels);
        assert_eq!(bad(r#"{"name":"n","data":"d","channels":[]}"#), BadRequest::NoChannels);
        assert_eq!(bad(r#"{"name":"n","data":"d","channel":"a","channels":["b"]}"#), BadRequest::ChannelAndChannels);
        assert_eq!(bad(r#"{"name":"n","data":"d","channels":["a","b c"]}"#), BadRequest::BadChannelName { index: 1 });
        assert_eq!(bad(r#"{"name":"n","data":"d","channel":7}"#), BadRequest::BadChannelName { index: 0 });
        assert_eq!(bad(r#"{"name":"","data":"d","channel":"a"}"#), BadRequest::EmptyEventName);
        assert_eq!(bad(r#"{"name":"n","data":"d","channel":"a","socket_id":"1"}"#), BadRequest::BadSocketId);
        assert_eq!(bad(r#"{"name":"n","data":"d","channel":"a","socket_id":1.2}"#), BadRequest::BadSocketId);
        let long = format!(r#"{{"name":"{}","data":"d","channel":"a"}}"#, "n".repeat(201));
        assert_eq!(bad(&long), BadRequest::EventNameTooLong { limit: 200 });
        let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
        let json = serde_json::json!({"name":"n","data":"d","channels":many}).to_string();
        assert_eq!(bad(&json), BadRequest::TooManyChannels { count: 101, limit: 100 });
        let big = serde_json::json!({"name":"n","data":"x".repeat(10 * 1024 + 1),"channel":"a"}).to_string();
        assert!(matches!(parse(&big), Err(ApiError::DataTooLarge { size: 10241, limit: 10240 })));
    }
}
