//! Subscribing and unsubscribing: authorization per channel kind, names, cache channels,
//! subscription counts, and how malformed or oversized input is answered.

mod common;
use common::*;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn succeeded(channel: &str) -> Value {
    json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})
}

fn count(channel: &str, n: usize) -> Value {
    let data = json!({"subscription_count": n}).to_string();
    json!({"event": "pusher_internal:subscription_count", "channel": channel, "data": data})
}

/// Sends `pusher:subscribe` with `auth` as given.
async fn send_subscribe(c: &mut Client, channel: &str, auth: &str) {
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": channel}})).await;
}

/// Subscribes (signing private channels) and requires the very next frame to be the exact success.
async fn subscribe_exact(c: &mut Client, channel: &str) {
    let auth = if channel.starts_with("private-") { c.auth(channel) } else { String::new() };
    send_subscribe(c, channel, &auth).await;
    assert_eq!(c.expect_next("pusher_internal:subscription_succeeded").await, succeeded(channel));
}

/// Expects a refused subscription: `pusher:error` 4009, then the matching `subscription_error`.
async fn expect_refused(c: &mut Client, channel: &str, kind: &str, status: u16) {
    let message = c.expect_error(Some(4009)).await;
    let err = c.expect_next("pusher:subscription_error").await;
    let want = json!({
        "event": "pusher:subscription_error",
        "channel": channel,
        "data": {"type": kind, "error": message, "status": status},
    });
    assert_eq!(err, want);
}

fn bad_auth() -> String {
    format!("{KEY}:{}", "0".repeat(64))
}

#[tokio::test]
async fn public_subscribe_succeeds_and_ignores_auth() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    send_subscribe(&mut c, "orders", "").await;
    assert_eq!(c.expect_next("pusher_internal:subscription_succeeded").await, succeeded("orders"));
    send_subscribe(&mut c, "news", &bad_auth()).await;
    assert_eq!(c.expect_next("pusher_internal:subscription_succeeded").await, succeeded("news"));
    c.send(json!({"event": "pusher:subscribe", "data": {"channel": "weather"}})).await;
    assert_eq!(c.expect_next("pusher_internal:subscription_succeeded").await, succeeded("weather"));
    c.expect_quiet().await;
}

#[tokio::test]
async fn subscribe_data_may_be_a_json_string() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    let data = json!({"auth": c.auth("private-a"), "channel": "private-a"}).to_string();
    c.send(json!({"event": "pusher:subscribe", "data": data})).await;
    assert_eq!(c.expect_next("pusher_internal:subscription_succeeded").await, succeeded("private-a"));
}

#[tokio::test]
async fn private_subscribe_with_a_valid_signature_succeeds() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    subscribe_exact(&mut c, "private-orders.1").await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn private_subscribe_with_a_bad_signature_is_refused_and_the_socket_stays() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    send_subscribe(&mut c, "private-x", &bad_auth()).await;
    expect_refused(&mut c, "private-x", "AuthError", 401).await;
    c.expect_quiet().await;
    subscribe_exact(&mut c, "private-y").await;
}

#[tokio::test]
async fn private_subscribe_without_auth_or_with_another_key_or_socket_is_refused() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    let other = s.connect(KEY).await;
    c.send(json!({"event": "pusher:subscribe", "data": {"channel": "private-x"}})).await;
    expect_refused(&mut c, "private-x", "AuthError", 401).await;

    let sig = c.auth("private-x").split_once(':').unwrap().1.to_owned();
    send_subscribe(&mut c, "private-x", &format!("other-key:{sig}")).await;
    expect_refused(&mut c, "private-x", "AuthError", 401).await;

    let for_other_socket = other.auth("private-x");
    send_subscribe(&mut c, "private-x", &for_other_socket).await;
    expect_refused(&mut c, "private-x", "AuthError", 401).await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn private_encrypted_subscribe_is_authorized_like_private() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    subscribe_exact(&mut c, "private-encrypted-orders").await;
    send_subscribe(&mut c, "private-encrypted-other", &bad_auth()).await;
    expect_refused(&mut c, "private-encrypted-other", "AuthError", 401).await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn invalid_channel_names_are_refused_as_bad_requests() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    let too_long = "a".repeat(201);
    for name in ["a b", too_long.as_str(), "#foo", "", "a/b", "é"] {
        send_subscribe(&mut c, name, "").await;
        expect_refused(&mut c, name, "BadRequest", 400).await;
    }
    c.expect_quiet().await;
    subscribe_exact(&mut c, &"a".repeat(200)).await;
}

#[tokio::test]
async fn channel_names_with_punctuation_pusher_allows_are_accepted() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    for name in ["a,b;c@d=e.f", "x_y-z", "private-App.Models.User.1", "cache,;@=."] {
        let auth = if name.starts_with("private-") { c.auth(name) } else { String::new() };
        send_subscribe(&mut c, name, &auth).await;
        let ev = c.expect_next("pusher_internal:subscription_succeeded").await;
        assert_eq!(ev, succeeded(name));
    }
}

#[tokio::test]
async fn resubscribing_is_idempotent() {
    let mut cfg = config();
    cfg.apps[0].subscription_count = true;
    let s = TestServer::start(cfg).await;
    let mut a = s.connect(KEY).await;
    subscribe_exact(&mut a, "private-room").await;
    assert_eq!(a.expect_next("pusher_internal:subscription_count").await, count("private-room", 1));
    subscribe_exact(&mut a, "private-room").await;
    a.expect_quiet().await;

    let mut b = s.connect(KEY).await;
    subscribe_exact(&mut b, "private-room").await;
    assert_eq!(b.expect_next("pusher_internal:subscription_count").await, count("private-room", 2));
    assert_eq!(a.expect_next("pusher_internal:subscription_count").await, count("private-room", 2));

    b.client_event("private-room", "client-hi", json!({"n": 1})).await;
    a.expect_next("client-hi").await;
    a.expect_quiet().await;
}

#[tokio::test]
async fn unsubscribe_has_no_reply_and_stops_delivery() {
    let s = TestServer::default().await;
    let (mut a, mut b, mut c) = (s.connect(KEY).await, s.connect(KEY).await, s.connect(KEY).await);
    for x in [&mut a, &mut b, &mut c] {
        subscribe_exact(x, "private-room").await;
    }
    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "private-room"}})).await;
    b.expect_quiet().await;

    a.client_event("private-room", "client-hi", json!({})).await;
    c.expect_next("client-hi").await;
    b.expect_quiet().await;

    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "never-subscribed"}})).await;
    b.expect_quiet().await;
}

#[tokio::test]
async fn empty_cache_channel_answers_with_cache_miss() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    for channel in ["cache-x", "private-cache-x"] {
        subscribe_exact(&mut c, channel).await;
        let miss = c.expect_next("pusher:cache_miss").await;
        assert_eq!(miss, json!({"event": "pusher:cache_miss", "channel": channel, "data": "{}"}));
    }
    c.expect_quiet().await;
}

#[tokio::test]
async fn subscription_count_follows_subscribes_and_unsubscribes() {
    let mut cfg = config();
    cfg.apps[0].subscription_count = true;
    let s = TestServer::start(cfg).await;
    let mut a = s.connect(KEY).await;
    subscribe_exact(&mut a, "orders").await;
    assert_eq!(a.expect_next("pusher_internal:subscription_count").await, count("orders", 1));

    let mut b = s.connect(KEY).await;
    subscribe_exact(&mut b, "orders").await;
    assert_eq!(b.expect_next("pusher_internal:subscription_count").await, count("orders", 2));
    assert_eq!(a.expect_next("pusher_internal:subscription_count").await, count("orders", 2));

    b.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "orders"}})).await;
    assert_eq!(a.expect_next("pusher_internal:subscription_count").await, count("orders", 1));
    b.expect_quiet().await;

    b.close().await;
    a.expect_quiet().await;
}

#[tokio::test]
async fn subscription_count_drops_when_a_subscriber_disconnects() {
    let mut cfg = config();
    cfg.apps[0].subscription_count = true;
    let s = TestServer::start(cfg).await;
    let mut a = s.connect(KEY).await;
    subscribe_exact(&mut a, "orders").await;
    a.expect_next("pusher_internal:subscription_count").await;
    let mut b = s.connect(KEY).await;
    subscribe_exact(&mut b, "orders").await;
    assert_eq!(a.expect_next("pusher_internal:subscription_count").await, count("orders", 2));
    b.close().await;
    assert_eq!(a.expect_next("pusher_internal:subscription_count").await, count("orders", 1));
}

#[tokio::test]
async fn subscription_count_is_not_sent_when_the_app_disables_it() {
    let s = TestServer::default().await;
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    subscribe_exact(&mut a, "orders").await;
    subscribe_exact(&mut b, "orders").await;
    a.expect_quiet().await;
    b.expect_quiet().await;
}

#[tokio::test]
async fn subscription_count_is_never_sent_on_presence_channels() {
    let mut cfg = config();
    cfg.apps[0].subscription_count = true;
    let s = TestServer::start(cfg).await;
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    a.join("presence-room", "1", json!({})).await;
    a.expect_quiet().await;
    b.join("presence-room", "2", json!({})).await;
    a.expect_next("pusher_internal:member_added").await;
    a.expect_quiet().await;
    b.expect_quiet().await;
}

#[tokio::test]
async fn malformed_json_gets_a_non_closing_error() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    for bad in ["{not json", "[]", r#"{"event":1}"#, r#"{"event":"pusher:subscribe","data":{}}"#] {
        c.send_text(bad).await;
        c.expect_error(None).await;
    }
    c.expect_quiet().await;
    subscribe_exact(&mut c, "orders").await;
}

/// Each refusal says what was wrong, once: the field at fault and its expected type.
#[tokio::test]
async fn malformed_frames_are_told_what_was_wrong() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    for (bad, says) in [
        (r#"{"event":"pusher:subscribe","data":{"channel":"private-a","auth":5}}"#, "Field `auth` must be a string"),
        (r#"{"event":"pusher:subscribe","data":{"auth":""}}"#, "Missing field `channel`"),
        (r#"{"event":"pusher:subscribe"}"#, "Missing field `data`"),
        (r#"{"event":"pusher:signin","data":{"auth":"k:s"}}"#, "Missing field `user_data`"),
    ] {
        c.send_text(bad).await;
        assert_eq!(c.expect_error(None).await, says, "{bad}");
    }
    c.send_text("{not json").await;
    let message = c.expect_error(None).await;
    assert!(message.starts_with("Invalid message format: "), "{message}");
    assert_eq!(message.matches("nvalid message format").count(), 1, "{message}");
}

#[tokio::test]
async fn unknown_events_get_a_non_closing_error() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    c.send(json!({"event": "pusher:whatever", "data": {}})).await;
    c.expect_error(None).await;
    c.send(json!({"event": "typing", "channel": "orders", "data": {}})).await;
    c.expect_error(None).await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn binary_frames_get_an_error_and_the_socket_stays() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    c.ws.send(Message::Binary(br#"{"event":"pusher:ping","data":{}}"#.to_vec().into())).await.unwrap();
    c.expect_error(None).await;
    c.expect_quiet().await;
    subscribe_exact(&mut c, "orders").await;
}

#[tokio::test]
async fn oversized_message_closes_only_that_socket_with_1009() {
    let mut cfg = config();
    cfg.websocket.max_message_bytes = 1024;
    let s = TestServer::start(cfg).await;
    let (mut big, mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await, s.connect(KEY).await);
    for x in [&mut big, &mut a, &mut b] {
        subscribe_exact(x, "private-room").await;
    }
    let payload = json!({"event": "client-big", "channel": "private-room", "data": "x".repeat(2048)});
    big.send(payload).await;
    assert_eq!(big.expect_close().await, Some(1009));

    a.client_event("private-room", "client-hi", json!({"n": 1})).await;
    assert_eq!(b.expect_next("client-hi").await["data"], json!({"n": 1}));
    a.expect_quiet().await;
    b.expect_quiet().await;
}

#[tokio::test]
async fn message_at_the_size_limit_is_accepted() {
    let mut cfg = config();
    cfg.websocket.max_message_bytes = 1024;
    let s = TestServer::start(cfg).await;
    let mut c = s.connect(KEY).await;
    let head = r#"{"event":"pusher:ping","data":{"pad":""}}"#;
    let text = format!(r#"{{"event":"pusher:ping","data":{{"pad":"{}"}}}}"#, "x".repeat(1024 - head.len()));
    assert_eq!(text.len(), 1024);
    c.send_text(&text).await;
    c.expect_next("pusher:pong").await;
}

#[tokio::test]
async fn cache_channels_replay_the_last_api_event_right_after_success() {
    let s = TestServer::default().await;
    let data = r#"{"url":"a\/b","n":2}"#;
    for channel in ["cache-x", "private-cache-x", "presence-cache-x"] {
        assert_eq!(s.api().trigger(channel, "moved", r#"{"n":1}"#).await.0, 200);
        assert_eq!(s.api().trigger(channel, "moved", data).await.0, 200);
        let mut c = s.connect(KEY).await;
        if channel.starts_with("presence-") {
            let channel_data = json!({"user_id": "1"}).to_string();
            let auth = c.presence_auth(channel, &channel_data);
            c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel_data": channel_data, "channel": channel}}))
                .await;
            c.expect_next("pusher_internal:subscription_succeeded").await;
        } else {
            subscribe_exact(&mut c, channel).await;
        }
        let replay = c.expect_next("moved").await;
        assert_eq!(replay, json!({"event": "moved", "channel": channel, "data": data}), "{channel}");
        c.expect_quiet().await;
    }
}

#[tokio::test]
async fn client_events_on_cache_channels_are_relayed_but_not_cached() {
    let s = TestServer::default().await;
    let (mut a, mut b, mut late) = (s.connect(KEY).await, s.connect(KEY).await, s.connect(KEY).await);
    subscribe_exact(&mut a, "private-cache-chat").await;
    a.expect_next("pusher:cache_miss").await;
    subscribe_exact(&mut b, "private-cache-chat").await;
    b.expect_next("pusher:cache_miss").await;
    a.client_event("private-cache-chat", "client-hi", json!({"n": 1})).await;
    b.expect_next("client-hi").await;

    subscribe_exact(&mut late, "private-cache-chat").await;
    let miss = late.expect_next("pusher:cache_miss").await;
    assert_eq!(miss, json!({"event": "pusher:cache_miss", "channel": "private-cache-chat", "data": "{}"}));
    late.expect_quiet().await;
}

#[tokio::test]
async fn fragmented_message_over_the_limit_closes_with_1009() {
    let mut cfg = config();
    cfg.websocket.max_message_bytes = 1024;
    let s = TestServer::start(cfg).await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    raw.send_fragmented_text(&[r#"{"event":"pusher:ping","data":""#, &"x".repeat(600), &"x".repeat(600), r#""}"#])
        .await;
    assert_eq!(raw.next_frame().await, Frame::Close(Some(1009)));
}

#[tokio::test]
async fn fragmented_message_within_the_limit_is_reassembled() {
    let mut cfg = config();
    cfg.websocket.max_message_bytes = 1024;
    let s = TestServer::start(cfg).await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    raw.send_fragmented_text(&[r#"{"event":"pusher:ping","data":""#, &"x".repeat(400), &"x".repeat(400), r#""}"#])
        .await;
    raw.expect_event("pusher:pong").await;
}
