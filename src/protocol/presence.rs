//! Presence members and signed-in users, parsed from `channel_data` / `user_data`.
//! Must not keep rosters: `registry/` does; this only parses and checks limits.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::client_event::from_json_text;
use super::error::ProtocolError;
use super::limits::Limits;

/// One presence member: a user id and the info the app attached to it.
#[derive(Clone, Debug)]
pub struct PresenceMember {
    /// Canonical user id: the string, or a number's JSON text.
    pub user_id: String,
    /// `user_info` exactly as the app sent it, if any.
    pub user_info: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct ChannelData {
    #[serde(default)]
    user_id: Option<Value>,
    #[serde(default)]
    user_info: Option<Box<RawValue>>,
}

impl PresenceMember {
    /// Parses presence `channel_data` (`{"user_id": string|number, "user_info": any}`).
    ///
    /// # Errors
    /// [`ProtocolError::BadChannelData`] when it is not an object with a usable `user_id`, or
    /// breaks the user id / user info limits.
    pub fn from_channel_data(text: &str, limits: &Limits) -> Result<Self, ProtocolError> {
        let d: ChannelData = from_json_text(text).ok_or(ProtocolError::BadChannelData("not a JSON object"))?;
        let user_id = d
            .user_id
            .as_ref()
            .and_then(canonical_id)
            .ok_or(ProtocolError::BadChannelData("user_id must be a string or a number"))?;
        Self::checked(user_id, d.user_info, limits, ProtocolError::BadChannelData)
    }

    fn checked(
        user_id: String,
        user_info: Option<Box<RawValue>>,
        limits: &Limits,
        err: fn(&'static str) -> ProtocolError,
    ) -> Result<Self, ProtocolError> {
        if user_id.is_empty() || user_id.chars().count() > limits.max_presence_user_id_len {
            return Err(err("user id is empty or too long"));
        }
        if user_info.as_ref().is_some_and(|i| i.get().len() > limits.max_presence_user_info_bytes) {
            return Err(err("user_info is too large"));
        }
        Ok(Self { user_id, user_info })
    }
}

/// A user id as text: strings as they are, numbers as their JSON text.
pub fn canonical_id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A signed-in user, from `pusher:signin`'s `user_data`.
#[derive(Clone, Debug)]
pub struct UserData {
    /// The user's id (a non-empty string).
    pub id: String,
    /// `user_info`, used as presence info when a presence subscribe has no `channel_data`.
    pub user_info: Option<Box<RawValue>>,
    /// Ids whose online status the user wants, truncated to the limit.
    pub watchlist: Vec<String>,
    /// Whether the watchlist was longer than the limit.
    pub watchlist_truncated: bool,
}

#[derive(Deserialize)]
struct RawUserData {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    user_info: Option<Box<RawValue>>,
    #[serde(default)]
    watchlist: Option<Vec<Value>>,
}

impl UserData {
    /// Parses signin `user_data`. `id` must be a non-empty string (pusher-js requires it).
    ///
    /// # Errors
    /// [`ProtocolError::BadUserData`] when `id` is missing, not a string, empty or too long,
    /// or `watchlist` holds anything but ids.
    pub fn parse(text: &str, limits: &Limits) -> Result<Self, ProtocolError> {
        let d: RawUserData = from_json_text(text).ok_or(ProtocolError::BadUserData("not a JSON object"))?;
        let id = match d.id {
            Some(Value::String(s)) => s,
            _ => return Err(ProtocolError::BadUserData("id must be a string")),
        };
        let member = PresenceMember::checked(id, d.user_info, limits, ProtocolError::BadUserData)?;
        let mut watchlist = Vec::new();
        for v in d.watchlist.unwrap_or_default() {
            watchlist.push(canonical_id(&v).ok_or(ProtocolError::BadUserData("watchlist ids"))?);
        }
        let watchlist_truncated = watchlist.len() > limits.max_watchlist_size;
        watchlist.truncate(limits.max_watchlist_size);
        Ok(Self { id: member.user_id, user_info: member.user_info, watchlist, watchlist_truncated })
    }

    /// The presence member this user becomes when subscribing without `channel_data`.
    pub fn as_member(&self) -> PresenceMember {
        PresenceMember { user_id: self.id.clone(), user_info: self.user_info.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_data_ids_are_canonical_strings() {
        let l = Limits::default();
        let m = PresenceMember::from_channel_data(r#"{"user_id":10,"user_info":{"name":"A"}}"#, &l).unwrap();
        assert_eq!(m.user_id, "10");
        assert_eq!(m.user_info.unwrap().get(), r#"{"name":"A"}"#);
        let m = PresenceMember::from_channel_data(r#"{"user_id":"u-1"}"#, &l).unwrap();
        assert_eq!(m.user_id, "u-1");
        assert!(m.user_info.is_none());
        for bad in ["", "[]", "{}", r#"{"user_id":null}"#, r#"{"user_id":true}"#, r#"{"user_id":""}"#, "nope"] {
            assert!(PresenceMember::from_channel_data(bad, &l).is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_data_limits() {
        let l = Limits { max_presence_user_id_len: 3, max_presence_user_info_bytes: 10, ..Limits::default() };
        assert!(PresenceMember::from_channel_data(r#"{"user_id":"abc"}"#, &l).is_ok());
        assert!(PresenceMember::from_channel_data(r#"{"user_id":"abcd"}"#, &l).is_err());
        assert!(PresenceMember::from_channel_data(r#"{"user_id":"a","user_info":"123456789012"}"#, &l).is_err());
    }

    #[test]
    fn user_data() {
        let l = Limits { max_watchlist_size: 2, ..Limits::default() };
        let u = UserData::parse(r#"{"id":"1","user_info":{"n":1},"watchlist":["2",3,"4"]}"#, &l).unwrap();
        assert_eq!(u.id, "1");
        assert_eq!(u.watchlist, vec!["2".to_owned(), "3".to_owned()]);
        assert!(u.watchlist_truncated);
        assert_eq!(u.as_member().user_info.unwrap().get(), r#"{"n":1}"#);
        for bad in [r#"{"id":1}"#, r#"{"id":""}"#, "{}", r#"{"id":"1","watchlist":[{}]}"#] {
            assert!(UserData::parse(bad, &l).is_err(), "{bad}");
        }
    }
}
