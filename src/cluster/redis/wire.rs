//! What travels on a bus channel: one message per publish, a kind letter, a short header line
//! and the frame exactly as sockets receive it. The receiving node knows the app, the channel
//! or user from the bus channel it subscribed to, so a message repeats neither.
//! Must not allocate per subscriber: a frame is decoded once per node, then shared.
//!
//! - `E<except>\n<frame>` a channel event (`except`: a socket id, or empty);
//! - `P<version>\n<frame>` a presence `member_added`/`member_removed`, published by the Lua
//!   script that decided it, `version` the roster version it produced;
//! - `U<except>\n<frame>` a frame for a user's sockets; `X` closes the user's sockets;
//! - `W1` / `W0` the user went online / offline (for the sockets watching it).

use bytestring::ByteString;

use crate::protocol::SocketId;

/// A decoded bus message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Message {
    /// A channel event, for every subscriber but `except`.
    Event { except: Option<SocketId>, frame: ByteString },
    /// A presence event with the roster version it made.
    Presence { version: u64, frame: ByteString },
    /// A frame for a user's sockets but `except`.
    ToUser { except: Option<SocketId>, frame: ByteString },
    /// Close the user's sockets.
    Terminate,
    /// The user went online (`true`) or offline.
    Watch(bool),
}

/// Encodes a channel event.
pub(super) fn event(except: Option<&SocketId>, frame: &str) -> Vec<u8> {
    with_header(b'E', except.map_or("", SocketId::as_str), frame)
}

/// Encodes a frame for a user's sockets.
pub(super) fn to_user(except: Option<&SocketId>, frame: &str) -> Vec<u8> {
    with_header(b'U', except.map_or("", SocketId::as_str), frame)
}

/// A termination. (Presence events and `W1`/`W0` are written by the Lua scripts.)
pub(super) const TERMINATE: &[u8] = b"X";

fn with_header(kind: u8, header: &str, frame: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + header.len() + frame.len());
    out.push(kind);
    out.extend_from_slice(header.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(frame.as_bytes());
    out
}

/// Decodes a message; `None` for anything malformed (counted by the caller).
pub(super) fn decode(payload: &[u8]) -> Option<Message> {
    let (&kind, rest) = payload.split_first()?;
    match kind {
        b'X' if rest.is_empty() => return Some(Message::Terminate),
        b'W' => {
            return match rest {
                b"1" => Some(Message::Watch(true)),
                b"0" => Some(Message::Watch(false)),
                _ => None,
            };
        }
        _ => {}
    }
    let newline = rest.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&rest[..newline]).ok()?;
    let frame = ByteString::try_from(bytes::Bytes::copy_from_slice(&rest[newline + 1..])).ok()?;
    let except = || if header.is_empty() { Some(None) } else { SocketId::parse(header).ok().map(Some) };
    match kind {
        b'E' => Some(Message::Event { except: except()?, frame }),
        b'U' => Some(Message::ToUser { except: except()?, frame }),
        b'P' => Some(Message::Presence { version: header.parse().ok()?, frame }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let sid = SocketId::from_parts(12, 34);
        let frame = r#"{"event":"e","channel":"c","data":"{}"}"#;
        assert_eq!(
            decode(&event(Some(&sid), frame)),
            Some(Message::Event { except: Some(sid.clone()), frame: frame.into() })
        );
        assert_eq!(decode(&event(None, frame)), Some(Message::Event { except: None, frame: frame.into() }));
        assert_eq!(
            decode(&to_user(Some(&sid), "x\ny")),
            Some(Message::ToUser { except: Some(sid), frame: "x\ny".into() })
        );
        assert_eq!(
            decode(format!("P17\n{frame}").as_bytes()),
            Some(Message::Presence { version: 17, frame: frame.into() })
        );
        assert_eq!(decode(TERMINATE), Some(Message::Terminate));
        assert_eq!(decode(b"W1"), Some(Message::Watch(true)));
        assert_eq!(decode(b"W0"), Some(Message::Watch(false)));
    }

    #[test]
    fn refuses_garbage() {
        for bad in [&b""[..], b"E", b"Enot-a-socket\n{}", b"Px\n{}", b"W2", b"Xtra", b"Q\n{}", b"E\n\xff"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
