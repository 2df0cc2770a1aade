//! One client frame through every parser a socket runs on it, for fuzz targets and their
//! property-test twins: the envelope, then the channel name, presence `channel_data`, signin
//! `user_data`, and the relayed client event's encoding.
//! Must not be used by the server itself: it only drives the same functions `connection/` calls.

use serde_json::Value;

use super::{ChannelName, ClientEvent, Limits, PresenceMember, UserData, parse, server_event};

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
            let back: Value = serde_json::from_str(&frame).expect("a relayed client event is JSON");
            assert_eq!(back["event"].as_str(), Some(msg.event.as_str()));
            assert_eq!(back["channel"].as_str(), Some(msg.channel.as_str()));
            if let Some(data) = &msg.data {
                let sent: Value = serde_json::from_str(data.get()).expect("raw data is JSON");
                assert_eq!(back["data"], sent, "data is relayed as sent");
            }
        }
        ClientEvent::Ping | ClientEvent::Pong | ClientEvent::Unsubscribe { .. } | ClientEvent::Unknown(_) => {}
    }
}
