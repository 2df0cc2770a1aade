//! One client frame through every parser a socket runs on it, for fuzz targets and their
//! property-test twins: the envelope, then the channel name, presence `channel_data`, signin
//! `user_data`, and the relayed client event's encoding.
//! Must not be used by the server itself: it only drives the same functions `connection/` calls.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::{ChannelName, ClientEvent, Limits, PresenceMember, UserData, parse, server_event};

/// A relayed client event as its receivers parse it.
#[derive(Deserialize)]
struct Relayed<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    channel: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

/// Parses `text` as a socket would; panics only if an invariant breaks.
pub(crate) fn client_frame(text: &str, limits: &Limits) {
    let event = match parse(text) {
        Ok(event) => event,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "every refusal says why");
            return;
        }
    };
    match event {
        ClientEvent::Subscribe(req) => {
            if let Ok(name) = ChannelName::parse(&req.channel, limits.max_channel_name_len) {
                assert!(name.as_str().len() <= limits.max_channel_name_len);
                let _ = (name.kind(), name.is_cache(), name.user_id());
            }
            if let Some(data) = &req.channel_data
                && let Ok(member) = PresenceMember::from_channel_data(data, limits)
            {
                assert!(!member.user_id.is_empty());
                assert!(member.user_info.as_ref().is_none_or(|i| i.get().len() <= limits.max_presence_user_info_bytes));
                let added = server_event::member_added("presence-x", &member.user_id, member.user_info.as_deref());
                assert!(serde_json::from_str::<Value>(&added).is_ok(), "member_added is JSON: {added}");
            }
        }
        ClientEvent::Signin(req) => {
            if let Ok(user) = UserData::parse(&req.user_data, limits) {
                assert!(user.watchlist.len() <= limits.max_watchlist_size);
            }
        }
        ClientEvent::Client(msg) => {
            let frame = server_event::client_event(&msg.event, &msg.channel, msg.data.as_deref(), Some("u"));
            // Read back with `data` raw: valid JSON need not fit `Value` (1e2225 is a JSON number
            // that no f64 holds, and is relayed as sent; browsers read it as Infinity).
            let back: Relayed<'_> = serde_json::from_str(&frame).expect("a relayed client event is JSON");
            assert_eq!(back.event, msg.event);
            assert_eq!(back.channel, msg.channel);
            assert_eq!(
                back.data.map(RawValue::get),
                msg.data.as_deref().map(RawValue::get),
                "data relayed byte for byte"
            );
        }
        ClientEvent::Ping | ClientEvent::Pong | ClientEvent::Unsubscribe { .. } | ClientEvent::Unknown(_) => {}
    }
}
