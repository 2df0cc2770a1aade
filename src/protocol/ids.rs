//! Socket ids: the `^\d+\.\d+$` strings both server SDKs validate.
//! Must not generate randomness itself: callers pass the two numbers in.

use std::fmt;
use std::sync::Arc;

use super::error::ProtocolError;

/// A connection's id, e.g. `123456.7890123`. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(Arc<str>);

impl SocketId {
    /// Builds an id from two numbers (the caller supplies randomness).
    pub fn from_parts(a: u64, b: u64) -> Self {
        Self(format!("{a}.{b}").into())
    }

    /// Parses an id sent by a client or an SDK.
    ///
    /// # Errors
    /// [`ProtocolError::BadSocketId`] unless `s` matches `^\d+\.\d+$`.
    pub fn parse(s: &str) -> Result<Self, ProtocolError> {
        if is_valid_socket_id(s) { Ok(Self(s.into())) } else { Err(ProtocolError::BadSocketId) }
    }

    /// The Pusher-format id of a socket known to its client by another id (a socket.io
    /// socket's Engine.IO id, which Laravel gets back as `X-Socket-ID`): the same on every
    /// node, so a broadcast naming that id leaves the socket out wherever it is read.
    /// `None` for an empty or overlong id (at most 64 bytes).
    pub fn for_foreign(id: &str) -> Option<Self> {
        if id.is_empty() || id.len() > 64 {
            return None;
        }
        // FNV-1a (stable across builds and nodes, unlike std's hasher), split in two.
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        Some(Self::from_parts(hash >> 32, hash & 0xffff_ffff))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `s` matches `^\d+\.\d+$`.
pub fn is_valid_socket_id(s: &str) -> bool {
    match s.split_once('.') {
        Some((a, b)) => {
            let digits = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
            digits(a) && digits(b)
        }
        None => false,
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format() {
        assert_eq!(SocketId::from_parts(123, 456).as_str(), "123.456");
        let sio = SocketId::for_foreign("gorm5kHZb-IyHRbK").expect("mapped");
        assert!(is_valid_socket_id(sio.as_str()));
        assert_eq!(Some(sio.clone()), SocketId::for_foreign("gorm5kHZb-IyHRbK"), "stable");
        assert_ne!(Some(sio), SocketId::for_foreign("gorm5kHZb-IyHRbL"));
        assert_eq!(SocketId::for_foreign(""), None);
        for ok in ["1.2", "123456.7890123", "0.0"] {
            assert!(SocketId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1", "1.", ".1", "1.2.3", "a.b", "1.2 ", "-1.2", "1,2"] {
            assert_eq!(SocketId::parse(bad), Err(ProtocolError::BadSocketId), "{bad}");
        }
    }
}
