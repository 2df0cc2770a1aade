//! Presence channels: the roster snapshot, member_added/removed per user (not per socket),
//! first-wins user_info, the member cap, and the signin-based subscribe without channel_data.

mod common;
use common::*;
use serde_json::{Value, json};

const ROOM: &str = "presence-room";

/// Subscribes with `channel_data` exactly as given (signed), without waiting for an answer.
async fn send_join(c: &mut Client, channel: &str, channel_data: &str) {
    let auth = c.presence_auth(channel, channel_data);
    let data = json!({"auth": auth, "channel_data": channel_data, "channel": channel});
    c.send(json!({"event": "pusher:subscribe", "data": data})).await;
}

/// Joins and requires the very next frame to be the success; returns its `presence` object
/// with `ids` sorted.
async fn join(c: &mut Client, channel: &str, channel_data: &str) -> Value {
    send_join(c, channel, channel_data).await;
    snapshot(c, channel).await
}

async fn join_as(c: &mut Client, user_id: &str, info: Value) -> Value {
    join(c, ROOM, &json!({"user_id": user_id, "user_info": info}).to_string()).await
}

async fn snapshot(c: &mut Client, channel: &str) -> Value {
    let ev = c.expect_next("pusher_internal:subscription_succeeded").await;
    assert_eq!(ev["channel"], channel);
    assert_eq!(ev.as_object().unwrap().len(), 3, "event, channel, data: {ev}");
    let mut data = data(&ev);
    assert_eq!(data.as_object().unwrap().len(), 1, "only `presence`: {data}");
    let presence = data["presence"].take();
    assert!(presence["hash"].is_object(), "hash must be an object: {presence}");
    let mut ids: Vec<String> =
        presence["ids"].as_array().unwrap().iter().map(|v| v.as_str().expect("string ids").to_owned()).collect();
    ids.sort();
    json!({"ids": ids, "hash": presence["hash"], "count": presence["count"]})
}

/// The very next frame must be `member_added` for `user_id` with `info` (`None`: no user_info).
async fn expect_member_added(c: &mut Client, user_id: &str, info: Option<Value>) {
    let ev = c.expect_next("pusher_internal:member_added").await;
    assert_eq!(ev["channel"], ROOM);
    let mut want = json!({"user_id": user_id});
    if let Some(info) = info {
        want["user_info"] = info;
    }
    assert_eq!(data(&ev), want, "{ev}");
}

async fn expect_member_removed(c: &mut Client, user_id: &str) {
    let ev = c.expect_next("pusher_internal:member_removed").await;
    let data = json!({"user_id": user_id}).to_string();
    assert_eq!(ev, json!({"event": "pusher_internal:member_removed", "channel": ROOM, "data": data}));
}

async fn unsubscribe(c: &mut Client, channel: &str) {
    c.send(json!({"event": "pusher:unsubscribe", "data": {"channel": channel}})).await;
    // The pong proves the server handled the unsubscribe before anything sent after it.
    c.expect_quiet().await;
}

/// Expects `pusher:error` 4009/4100 and the matching `subscription_error`.
async fn expect_refused(c: &mut Client, code: u16, kind: &str, status: u16) {
    let message = c.expect_error(Some(code)).await;
    let err = c.expect_next("pusher:subscription_error").await;
    let want = json!({
        "event": "pusher:subscription_error",
        "channel": ROOM,
        "data": {"type": kind, "error": message, "status": status},
    });
    assert_eq!(err, want);
}

#[tokio::test]
async fn snapshot_includes_the_subscriber() {
    let s = TestServer::default().await;
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    let first = join_as(&mut a, "1", json!({"name": "Ann"})).await;
    assert_eq!(first, json!({"ids": ["1"], "hash": {"1": {"name": "Ann"}}, "count": 1}));
    let second = join_as(&mut b, "2", json!({"name": "Bob"})).await;
    let hash = json!({"1": {"name": "Ann"}, "2": {"name": "Bob"}});
    assert_eq!(second, json!({"ids": ["1", "2"], "hash": hash, "count": 2}));
}

#[tokio::test]
async fn numeric_user_ids_become_strings() {
    let s = TestServer::default().await;
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    join_as(&mut a, "1", json!({})).await;
    let got = join(&mut b, ROOM, r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#).await;
    let hash = json!({"1": {}, "10": {"name": "Mr. Channels"}});
    assert_eq!(got, json!({"ids": ["1", "10"], "hash": hash, "count": 2}));
    expect_member_added(&mut a, "10", Some(json!({"name": "Mr. Channels"}))).await;

    b.client_event(ROOM, "client-typing", json!({})).await;
    assert_eq!(a.expect_next("client-typing").await["user_id"], "10");
    unsubscribe(&mut b, ROOM).await;
    expect_member_removed(&mut a, "10").await;
}

#[tokio::test]
async fn hash_is_an_object_and_missing_user_info_is_null() {
    let s = TestServer::default().await;
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    let got = join(&mut a, ROOM, r#"{"user_id":"1"}"#).await;
    assert_eq!(got, json!({"ids": ["1"], "hash": {"1": null}, "count": 1}));
    join_as(&mut b, "2", json!({"n": 2})).await;
    expect_member_added(&mut a, "2", Some(json!({"n": 2}))).await;
}

#[tokio::test]
async fn member_added_goes_to_others_only() {
    let s = TestServer::default().await;
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    join_as(&mut a, "1", json!({"name": "Ann"})).await;
    a.expect_quiet().await;
    join_as(&mut b, "2", json!({"name": "Bob"})).await;
    let ev = a.expect_next("pusher_internal:member_added").await;
    let data = r#"{"user_id":"2","user_info":{"name":"Bob"}}"#;
    assert_eq!(ev, json!({"event": "pusher_internal:member_added", "channel": ROOM, "data": data}));
    b.expect_quiet().await;
    a.expect_quiet().await;
}

#[tokio::test]
async fn one_user_on_two_sockets_is_one_member_until_the_last_unsubscribes() {
    let s = TestServer::default().await;
    let (mut a, mut b1, mut b2) = (s.connect(KEY).await, s.connect(KEY).await, s.connect(KEY).await);
    join_as(&mut a, "1", json!({})).await;
    join_as(&mut b1, "2", json!({})).await;
    expect_member_added(&mut a, "2", Some(json!({}))).await;
    let got = join_as(&mut b2, "2", json!({})).await;
    assert_eq!(got["count"], 2);
    assert_eq!(got["ids"], json!(["1", "2"]));
    a.expect_quiet().await;
    b1.expect_quiet().await;

    unsubscribe(&mut b1, ROOM).await;
    a.expect_quiet().await;
    b2.expect_quiet().await;
    unsubscribe(&mut b2, ROOM).await;
    expect_member_removed(&mut a, "2").await;
    a.expect_quiet().await;
}

#[tokio::test]
async fn one_user_on_two_sockets_is_removed_when_the_last_socket_closes() {
    let s = TestServer::default().await;
    let (mut a, mut b1, mut b2) = (s.connect(KEY).await, s.connect(KEY).await, s.connect(KEY).await);
    join_as(&mut a, "1", json!({})).await;
    join_as(&mut b1, "2", json!({})).await;
    expect_member_added(&mut a, "2", Some(json!({}))).await;
    join_as(&mut b2, "2", json!({})).await;

    // The server echoes the close only after it left every channel.
    b1.close().await;
    assert_eq!(b1.expect_close().await, Some(1000));
    a.expect_quiet().await;
    b2.close().await;
    assert_eq!(b2.expect_close().await, Some(1000));
    expect_member_removed(&mut a, "2").await;
    a.expect_quiet().await;
}

#[tokio::test]
async fn the_first_sockets_user_info_wins() {
    let s = TestServer::default().await;
    let (mut b1, mut b2, mut c) = (s.connect(KEY).await, s.connect(KEY).await, s.connect(KEY).await);
    join_as(&mut b1, "2", json!({"v": 1})).await;
    let second = join_as(&mut b2, "2", json!({"v": 2})).await;
    assert_eq!(second, json!({"ids": ["2"], "hash": {"2": {"v": 1}}, "count": 1}));
    let third = join_as(&mut c, "3", json!({"v": 3})).await;
    assert_eq!(third["hash"], json!({"2": {"v": 1}, "3": {"v": 3}}));
    expect_member_added(&mut b1, "3", Some(json!({"v": 3}))).await;
    expect_member_added(&mut b2, "3", Some(json!({"v": 3}))).await;

    unsubscribe(&mut b1, ROOM).await;
    unsubscribe(&mut b2, ROOM).await;
    let again = join_as(&mut b2, "2", json!({"v": 2})).await;
    assert_eq!(again["hash"], json!({"2": {"v": 2}, "3": {"v": 3}}));
}

#[tokio::test]
async fn full_channel_refuses_new_users_but_not_another_socket_of_a_member() {
    let mut cfg = config();
    cfg.apps[0].limits.max_presence_members = 2;
    let s = TestServer::start(cfg).await;
    let (mut a, mut b, mut c, mut b2) =
        (s.connect(KEY).await, s.connect(KEY).await, s.connect(KEY).await, s.connect(KEY).await);
    join_as(&mut a, "1", json!({})).await;
    join_as(&mut b, "2", json!({})).await;

    send_join(&mut c, ROOM, &json!({"user_id": "3"}).to_string()).await;
    expect_refused(&mut c, 4100, "LimitReached", 4100).await;
    c.expect_quiet().await;

    let got = join_as(&mut b2, "2", json!({})).await;
    assert_eq!(got["count"], 2);
    expect_member_added(&mut a, "2", Some(json!({}))).await;
    a.expect_quiet().await;
}

#[tokio::test]
async fn bad_presence_signature_is_refused() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    let signed_for = r#"{"user_id":"1"}"#;
    let auth = c.presence_auth(ROOM, signed_for);
    let data = json!({"auth": auth, "channel_data": r#"{"user_id":"2"}"#, "channel": ROOM});
    c.send(json!({"event": "pusher:subscribe", "data": data})).await;
    expect_refused(&mut c, 4009, "AuthError", 401).await;

    let data = json!({"auth": format!("{KEY}:{}", "ab".repeat(32)), "channel_data": signed_for, "channel": ROOM});
    c.send(json!({"event": "pusher:subscribe", "data": data})).await;
    expect_refused(&mut c, 4009, "AuthError", 401).await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn channel_data_that_is_not_a_member_object_is_refused() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    for bad in ["not json", "[]", r#"{"user_info":{}}"#, r#"{"user_id":null}"#, r#"{"user_id":""}"#] {
        send_join(&mut c, ROOM, bad).await;
        expect_refused(&mut c, 4009, "BadRequest", 400).await;
    }
    c.expect_quiet().await;
}

#[tokio::test]
async fn presence_without_channel_data_is_refused_when_not_signed_in() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    let auth = c.auth(ROOM);
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": ROOM}})).await;
    expect_refused(&mut c, 4009, "AuthError", 401).await;
    c.expect_quiet().await;
    let got = join_as(&mut c, "1", json!({})).await;
    assert_eq!(got["count"], 1);
}

#[tokio::test]
async fn presence_without_channel_data_uses_the_signed_in_user() {
    let s = TestServer::default().await;
    let (mut a, mut me) = (s.connect(KEY).await, s.connect(KEY).await);
    join_as(&mut a, "1", json!({"name": "Ann"})).await;
    me.signin(r#"{"id":"7","user_info":{"name":"Zed"}}"#).await;

    let auth = me.auth(ROOM);
    me.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": ROOM}})).await;
    let got = snapshot(&mut me, ROOM).await;
    let hash = json!({"1": {"name": "Ann"}, "7": {"name": "Zed"}});
    assert_eq!(got, json!({"ids": ["1", "7"], "hash": hash, "count": 2}));
    expect_member_added(&mut a, "7", Some(json!({"name": "Zed"}))).await;

    me.client_event(ROOM, "client-typing", json!({})).await;
    assert_eq!(a.expect_next("client-typing").await["user_id"], "7");
}

#[tokio::test]
async fn presence_without_channel_data_checks_the_signature_when_signed_in() {
    let s = TestServer::default().await;
    let mut me = s.connect(KEY).await;
    me.signin(r#"{"id":"7"}"#).await;
    let auth = me.auth("presence-elsewhere");
    me.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": ROOM}})).await;
    expect_refused(&mut me, 4009, "AuthError", 401).await;
    me.expect_quiet().await;
}

#[tokio::test]
async fn rejoining_from_the_same_socket_announces_nothing() {
    let s = TestServer::default().await;
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    join_as(&mut a, "1", json!({})).await;
    join_as(&mut b, "2", json!({})).await;
    expect_member_added(&mut a, "2", Some(json!({}))).await;
    let again = join_as(&mut b, "2", json!({})).await;
    assert_eq!(again, json!({"ids": ["1", "2"], "hash": {"1": {}, "2": {}}, "count": 2}));
    a.expect_quiet().await;
    unsubscribe(&mut b, ROOM).await;
    expect_member_removed(&mut a, "2").await;
}

/// Concurrent joins: every member learns every other member exactly once, either from its
/// snapshot or from a `member_added`, never both (Echo would fire `joining` for someone
/// already in `here`).
#[tokio::test]
async fn concurrent_joins_announce_each_member_exactly_once() {
    const N: usize = 24;
    let s = TestServer::default().await;
    let mut clients = Vec::new();
    for _ in 0..N {
        clients.push(s.connect(KEY).await);
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let data = json!({"user_id": i.to_string()}).to_string();
        let auth = c.presence_auth("presence-race", &data);
        c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel_data": data, "channel": "presence-race"}}))
            .await;
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let snapshot = data(&c.expect("pusher_internal:subscription_succeeded").await);
        let mut known: std::collections::HashSet<String> =
            snapshot["presence"]["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        assert!(known.contains(&i.to_string()), "the snapshot includes the subscriber");
        while known.len() < N {
            let added = data(&c.expect("pusher_internal:member_added").await);
            let id = added["user_id"].as_str().unwrap().to_owned();
            assert!(known.insert(id.clone()), "member {i} got member_added for {id}, already known");
        }
        c.expect_quiet().await;
    }
}
