//! Pusher frames → laravel-echo-server's socket.io events, `(event, channel, data)`.
//! Must not do IO: pure, so every mapping is tested byte for byte.
//!
//! Every frame a socket gets is encoded once for the Pusher protocol (DESIGN.md); a socket.io
//! socket's session maps each one here: channel events keep their name and JSON `data`
//! (a REST or Laravel `data` string holding JSON is sent as that JSON, as laravel-echo-server
//! sends Laravel's payload), presence events become `presence:subscribed` / `joining` /
//! `leaving` with `{user_id, user_info}` members. Pusher's `member_removed` carries no
//! `user_info` while Echo's `leaving` callback wants it, so each socket keeps the rosters of
//! its presence channels (bounded by the app's presence member limit).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One socket.io event to emit: `emit(event, channel, data)`.
#[derive(Debug)]
pub(super) struct Emit {
    pub(super) event: String,
    pub(super) channel: String,
    pub(super) data: Box<RawValue>,
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(default, borrow)]
    channel: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Presence {
    presence: Roster,
}

#[derive(Deserialize)]
struct Roster {
    #[serde(default)]
    ids: Vec<String>,
    #[serde(default)]
    hash: HashMap<String, Box<RawValue>>,
}

#[derive(Deserialize)]
struct Member {
    user_id: String,
    #[serde(default)]
    user_info: Option<Box<RawValue>>,
}

/// The presence rosters one socket has seen: channel → user id → `user_info`.
#[derive(Debug, Default)]
pub(super) struct Rosters(HashMap<String, HashMap<String, Box<RawValue>>>);

impl Rosters {
    /// What to emit for `frame`, if anything (Pusher-only frames map to nothing).
    pub(super) fn translate(&mut self, frame: &str) -> Option<Emit> {
        let f: Frame<'_> = serde_json::from_str(frame).ok()?;
        let channel = f.channel?.into_owned();
        let emit =
            |event: &str, data: Box<RawValue>| Some(Emit { event: event.to_owned(), channel: channel.clone(), data });
        match f.event.as_ref() {
            "pusher_internal:subscription_succeeded" => {
                let roster: Presence = serde_json::from_str(&inner_text(f.data?)?).ok()?;
                let members = self.0.entry(channel.clone()).or_default();
                members.clear();
                let mut hash = roster.presence.hash;
                let null = || RawValue::from_string("null".into()).expect("valid JSON");
                let mut list = Vec::with_capacity(roster.presence.ids.len());
                for id in roster.presence.ids {
                    let info = hash.remove(&id).unwrap_or_else(null);
                    list.push(member_json(&id, &info));
                    members.insert(id, info);
                }
                emit("presence:subscribed", raw(format!("[{}]", list.join(","))))
            }
            "pusher_internal:member_added" => {
                let m: Member = serde_json::from_str(&inner_text(f.data?)?).ok()?;
                let info = m.user_info.unwrap_or_else(|| RawValue::from_string("null".into()).expect("valid JSON"));
                let data = raw(member_json(&m.user_id, &info));
                self.0.entry(channel.clone()).or_default().insert(m.user_id, info);
                emit("presence:joining", data)
            }
            "pusher_internal:member_removed" => {
                let m: Member = serde_json::from_str(&inner_text(f.data?)?).ok()?;
                let info = self.0.get_mut(&channel).and_then(|r| r.remove(&m.user_id));
                let null = RawValue::from_string("null".into()).expect("valid JSON");
                emit("presence:leaving", raw(member_json(&m.user_id, info.as_deref().unwrap_or(&null))))
            }
            e if e.starts_with("pusher:") || e.starts_with("pusher_internal:") => None,
            e => {
                let data = match f.data {
                    None => raw("null".into()),
                    Some(d) => event_data(d),
                };
                Some(Emit { event: e.to_owned(), channel, data })
            }
        }
    }

    /// Forgets a channel's roster once the socket left it.
    pub(super) fn forget(&mut self, channel: &str) {
        self.0.remove(channel);
    }
}

/// A frame's `data` as socket.io clients get it: a string holding JSON becomes that JSON, any
/// other value (a plain string, or a pusher-js client event's object) stays as it is.
fn event_data(data: &RawValue) -> Box<RawValue> {
    if let Ok(text) = serde_json::from_str::<String>(data.get())
        && let Ok(json) = serde_json::from_str::<Box<RawValue>>(&text)
    {
        return json;
    }
    data.to_owned()
}

/// `data` that Herald encodes as a JSON string, unwrapped; or the value itself.
fn inner_text(data: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(data.get()).ok().or_else(|| Some(data.get().to_owned()))
}

/// `{"user_id": …, "user_info": …}`; an integer id goes out as a number, as Laravel's
/// `channel_data` gave it to laravel-echo-server.
fn member_json(user_id: &str, info: &RawValue) -> String {
    let id = if user_id.parse::<i64>().is_ok_and(|n| n.to_string() == user_id) {
        user_id.to_owned()
    } else {
        serde_json::to_string(user_id).expect("strings encode")
    };
    format!(r#"{{"user_id":{id},"user_info":{}}}"#, info.get())
}

fn raw(json: String) -> Box<RawValue> {
    RawValue::from_string(json).expect("valid JSON built here")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::server_event;

    fn one(r: &mut Rosters, frame: &str) -> (String, String, String) {
        let e = r.translate(frame).expect("an event");
        (e.event, e.channel, e.data.get().to_owned())
    }

    #[test]
    fn channel_events_keep_laravels_json() {
        let mut r = Rosters::default();
        let frame = server_event::channel_event("App\\Events\\Shipped", "orders", r#"{"id":1}"#);
        assert_eq!(one(&mut r, &frame), ("App\\Events\\Shipped".into(), "orders".into(), r#"{"id":1}"#.into()));
        let plain = server_event::channel_event("e", "orders", "not json");
        assert_eq!(one(&mut r, &plain).2, r#""not json""#, "a plain string stays a string");
        let whisper = r#"{"event":"client-typing","channel":"private-chat","data":{"x":1}}"#;
        assert_eq!(one(&mut r, whisper), ("client-typing".into(), "private-chat".into(), r#"{"x":1}"#.into()));
    }

    #[test]
    fn pusher_only_frames_map_to_nothing() {
        let mut r = Rosters::default();
        assert!(r.translate(r#"{"event":"pusher:pong","data":{}}"#).is_none());
        assert!(r.translate(&server_event::subscription_succeeded("orders")).is_none());
        assert!(r.translate(r#"{"event":"pusher_internal:subscription_count","channel":"a","data":"{}"}"#).is_none());
        assert!(r.translate("not json").is_none());
    }

    #[test]
    fn presence_members_join_and_leave_with_their_info() {
        let mut r = Rosters::default();
        let ok = r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-room","data":"{\"presence\":{\"ids\":[\"1\",\"ann\"],\"hash\":{\"1\":{\"name\":\"Bo\"},\"ann\":null},\"count\":2}}"}"#;
        assert_eq!(
            one(&mut r, ok),
            (
                "presence:subscribed".into(),
                "presence-room".into(),
                r#"[{"user_id":1,"user_info":{"name":"Bo"}},{"user_id":"ann","user_info":null}]"#.into()
            )
        );
        let added = r#"{"event":"pusher_internal:member_added","channel":"presence-room","data":"{\"user_id\":\"7\",\"user_info\":{\"name\":\"Cy\"}}"}"#;
        assert_eq!(one(&mut r, added).2, r#"{"user_id":7,"user_info":{"name":"Cy"}}"#);
        let removed =
            r#"{"event":"pusher_internal:member_removed","channel":"presence-room","data":"{\"user_id\":\"7\"}"}"#;
        assert_eq!(
            one(&mut r, removed),
            ("presence:leaving".into(), "presence-room".into(), r#"{"user_id":7,"user_info":{"name":"Cy"}}"#.into())
        );
        assert_eq!(one(&mut r, removed).2, r#"{"user_id":7,"user_info":null}"#, "unknown by now");
        r.forget("presence-room");
        assert!(r.0.is_empty());
    }
}
