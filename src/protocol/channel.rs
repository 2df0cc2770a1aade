//! Channel names and their kinds: the single place where prefixes are interpreted.
//! Must not know about subscriptions or sockets.

use std::fmt;

use super::error::ProtocolError;

/// Prefix of a user's own channel, `#server-to-user-{user_id}`.
pub const USER_CHANNEL_PREFIX: &str = "#server-to-user-";

/// What kind of channel a name denotes, by exact prefix (longest first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// No authorization; no client events.
    Public,
    /// `private-`: signed `socket_id:channel`.
    Private,
    /// `private-encrypted-`: signed like private; payloads end-to-end encrypted; no client events.
    PrivateEncrypted,
    /// `presence-`: signed `socket_id:channel:channel_data`; has a member roster.
    Presence,
    /// `#server-to-user-{id}`: only the socket signed in as `{id}` may subscribe.
    User,
}

impl ChannelKind {
    /// Whether a subscription needs an `auth` signature.
    pub const fn needs_auth(self) -> bool {
        matches!(self, Self::Private | Self::PrivateEncrypted | Self::Presence)
    }

    /// Whether `client-*` events may be sent on it.
    pub const fn allows_client_events(self) -> bool {
        matches!(self, Self::Private | Self::Presence)
    }
}

/// A valid channel name. The field is private: constructing one means validating it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(String);

impl ChannelName {
    /// Validates `name` against Pusher's rules: 1..=`max_len` characters from
    /// `A-Z a-z 0-9 _ - = @ , . ;`, or a `#server-to-user-{id}` user channel.
    ///
    /// # Errors
    /// [`ProtocolError::BadChannelName`] when the name breaks a rule.
    pub fn parse(name: &str, max_len: usize) -> Result<Self, ProtocolError> {
        let ok = name.len() <= max_len
            && match name.strip_prefix(USER_CHANNEL_PREFIX) {
                // User ids are the app's own (e.g. `auth0|123`): any visible characters.
                Some(user) => !user.is_empty() && user.chars().all(|c| !c.is_control() && !c.is_whitespace()),
                None => !name.is_empty() && name.bytes().all(is_channel_byte),
            };
        if ok { Ok(Self(name.to_owned())) } else { Err(ProtocolError::BadChannelName) }
    }

    /// The name as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The channel's kind.
    pub fn kind(&self) -> ChannelKind {
        let n = self.0.as_str();
        if n.starts_with(USER_CHANNEL_PREFIX) {
            ChannelKind::User
        } else if n.starts_with("private-encrypted-") {
            ChannelKind::PrivateEncrypted
        } else if n.starts_with("private-") {
            ChannelKind::Private
        } else if n.starts_with("presence-") {
            ChannelKind::Presence
        } else {
            ChannelKind::Public
        }
    }

    /// Whether the channel keeps its last event (`cache-`, `private-cache-`,
    /// `private-encrypted-cache-`, `presence-cache-`).
    pub fn is_cache(&self) -> bool {
        ["cache-", "private-cache-", "private-encrypted-cache-", "presence-cache-"]
            .iter()
            .any(|p| self.0.starts_with(p))
    }

    /// For a user channel, the user id it belongs to.
    pub fn user_id(&self) -> Option<&str> {
        self.0.strip_prefix(USER_CHANNEL_PREFIX)
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ChannelName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Lets maps keyed by `ChannelName` be searched with a `&str` (hash and equality are the
/// string's), so a per-socket lookup is one hash probe, never a scan.
impl std::borrow::Borrow<str> for ChannelName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

fn is_channel_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'=' | b'@' | b',' | b'.' | b';')
}

#[cfg(test)]
mod tests {
    use super::ChannelKind::*;
    use super::*;

    fn kind(n: &str) -> ChannelKind {
        ChannelName::parse(n, 200).unwrap().kind()
    }

    #[test]
    fn kinds_by_exact_prefix() {
        for (name, k) in [
            ("news", Public),
            ("cache-news", Public),
            ("private-a", Private),
            ("private-cache-a", Private),
            ("private-encrypted-a", PrivateEncrypted),
            ("private-encrypted-cache-a", PrivateEncrypted),
            ("presence-a", Presence),
            ("presence-cache-a", Presence),
            ("#server-to-user-42", User),
            ("foo-private-x", Public),
            ("privatex", Public),
            ("private", Public),
            ("presence", Public),
        ] {
            assert_eq!(kind(name), k, "{name}");
        }
    }

    #[test]
    fn cache_flag() {
        for (name, cache) in [
            ("cache-a", true),
            ("private-cache-a", true),
            ("private-encrypted-cache-a", true),
            ("presence-cache-a", true),
            ("cachex", false),
            ("my-cache-a", false),
            ("private-a", false),
        ] {
            assert_eq!(ChannelName::parse(name, 200).unwrap().is_cache(), cache, "{name}");
        }
    }

    #[test]
    fn name_rules() {
        for ok in ["a", "private-App.Models.User.1", "x_y-z=@,.;", "A9"] {
            assert!(ChannelName::parse(ok, 200).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", "#foo", "#server-to-user-", "a:b", "a*"] {
            assert_eq!(ChannelName::parse(bad, 200), Err(ProtocolError::BadChannelName), "{bad}");
        }
        assert!(ChannelName::parse(&"a".repeat(200), 200).is_ok());
        assert!(ChannelName::parse(&"a".repeat(201), 200).is_err());
    }

    #[test]
    fn maps_keyed_by_name_are_searched_by_str() {
        let mut m = std::collections::HashMap::new();
        m.insert(ChannelName::parse("private-a", 200).unwrap(), 1);
        assert_eq!(m.get("private-a"), Some(&1));
        assert_eq!(m.remove("private-a"), Some(1));
        assert!(!m.contains_key("private-a"));
    }

    #[test]
    fn user_channel_id() {
        let c = ChannelName::parse("#server-to-user-42", 200).unwrap();
        assert_eq!(c.user_id(), Some("42"));
        let c = ChannelName::parse("#server-to-user-auth0|abc@x.y", 200).unwrap();
        assert_eq!(c.user_id(), Some("auth0|abc@x.y"));
        assert!(ChannelName::parse("#server-to-user-a b", 200).is_err());
        assert_eq!(ChannelName::parse("news", 200).unwrap().user_id(), None);
    }
}
