//! `client-*` events: relayed verbatim to the other subscribers of private and presence
//! channels, never echoed, and refused with a non-closing 4301 everywhere else.

mod common;
use common::*;
use serde_json::json;

/// Two sockets subscribed to `channel` (joined as users "1" and "2" on presence channels).
async fn pair(s: &TestServer, channel: &str) -> (Client, Client) {
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    if channel.starts_with("presence-") {
        a.join(channel, "1", json!({})).await;
        b.join(channel, "2", json!({})).await;
        b.expect_quiet().await;
        a.expect_next("pusher_internal:member_added").await;
    } else {
        a.subscribe(channel).await;
        b.subscribe(channel).await;
    }
    (a, b)
}

/// The sender gets a non-closing 4301 and nothing reaches the other subscriber.
async fn expect_rejected(a: &mut Client, b: &mut Client) -> String {
    let message = a.expect_error(Some(4301)).await;
    a.expect_quiet().await;
    b.expect_quiet().await;
    message
}

#[tokio::test]
async fn private_channel_relay_is_verbatim_and_not_echoed() {
    let s = TestServer::default().await;
    let (mut a, mut b) = pair(&s, "private-chat").await;
    a.send_text(r#"{"event":"client-typing","channel":"private-chat","data":{"name":"Ann", "x":1.50}}"#).await;
    let text = b.next_text().await;
    assert!(text.contains(r#""data":{"name":"Ann", "x":1.50}"#), "data must be relayed byte for byte: {text}");
    let ev: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ev, json!({"event": "client-typing", "channel": "private-chat", "data": {"name": "Ann", "x": 1.50}}));
    a.expect_quiet().await;
    b.expect_quiet().await;
}

#[tokio::test]
async fn presence_channel_relay_adds_the_senders_user_id() {
    let s = TestServer::default().await;
    let (mut a, mut b) = pair(&s, "presence-chat").await;
    a.client_event("presence-chat", "client-typing", json!({"name": "Ann"})).await;
    let ev = b.expect_next("client-typing").await;
    let want = json!({"event": "client-typing", "channel": "presence-chat", "data": {"name": "Ann"}, "user_id": "1"});
    assert_eq!(ev, want);
    b.client_event("presence-chat", "client-typing", json!({"name": "Bob"})).await;
    assert_eq!(a.expect_next("client-typing").await["user_id"], "2");
    a.expect_quiet().await;
    b.expect_quiet().await;
}

#[tokio::test]
async fn string_data_is_relayed_as_a_string() {
    let s = TestServer::default().await;
    let (mut a, mut b) = pair(&s, "private-chat").await;
    a.client_event("private-chat", "client-note", json!("{\"a\":1}")).await;
    let ev = b.expect_next("client-note").await;
    assert_eq!(ev, json!({"event": "client-note", "channel": "private-chat", "data": "{\"a\":1}"}));
}

#[tokio::test]
async fn relay_reaches_every_other_subscriber() {
    let s = TestServer::default().await;
    let (mut a, mut b) = pair(&s, "private-chat").await;
    let mut c = s.connect(KEY).await;
    c.subscribe("private-chat").await;
    a.client_event("private-chat", "client-hi", json!({})).await;
    b.expect_next("client-hi").await;
    c.expect_next("client-hi").await;
    a.expect_quiet().await;
}

#[tokio::test]
async fn rejected_when_the_app_has_client_events_off() {
    let mut cfg = config();
    cfg.apps[0].client_events = false;
    let s = TestServer::start(cfg).await;
    let (mut a, mut b) = pair(&s, "private-chat").await;
    a.client_event("private-chat", "client-hi", json!({})).await;
    expect_rejected(&mut a, &mut b).await;
}

#[tokio::test]
async fn rejected_on_public_channels() {
    let s = TestServer::default().await;
    let (mut a, mut b) = pair(&s, "chat").await;
    a.client_event("chat", "client-hi", json!({})).await;
    expect_rejected(&mut a, &mut b).await;
}

#[tokio::test]
async fn rejected_on_private_encrypted_channels() {
    let s = TestServer::default().await;
    let (mut a, mut b) = pair(&s, "private-encrypted-chat").await;
    a.client_event("private-encrypted-chat", "client-hi", json!({})).await;
    expect_rejected(&mut a, &mut b).await;
}

#[tokio::test]
async fn rejected_on_user_channels() {
    let s = TestServer::default().await;
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    a.signin(r#"{"id":"1"}"#).await;
    a.subscribe("#server-to-user-1").await;
    a.client_event("#server-to-user-1", "client-hi", json!({})).await;
    expect_rejected(&mut a, &mut b).await;
}

#[tokio::test]
async fn rejected_when_not_subscribed() {
    let s = TestServer::default().await;
    let (mut a, mut b) = pair(&s, "private-chat").await;
    a.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "private-chat"}})).await;
    a.client_event("private-chat", "client-hi", json!({})).await;
    expect_rejected(&mut a, &mut b).await;
    let mut c = s.connect(KEY).await;
    c.client_event("private-chat", "client-hi", json!({})).await;
    expect_rejected(&mut c, &mut b).await;
}

#[tokio::test]
async fn rejected_when_data_is_too_large() {
    let mut cfg = config();
    cfg.apps[0].limits.max_event_data_bytes = 100;
    let s = TestServer::start(cfg).await;
    let (mut a, mut b) = pair(&s, "private-chat").await;
    a.client_event("private-chat", "client-big", json!("x".repeat(101))).await;
    expect_rejected(&mut a, &mut b).await;
    let fits = "x".repeat(98);
    a.client_event("private-chat", "client-big", json!(fits)).await;
    assert_eq!(b.expect_next("client-big").await["data"], json!(fits));
}

#[tokio::test]
async fn rejected_when_the_name_is_too_long() {
    let s = TestServer::default().await;
    let (mut a, mut b) = pair(&s, "private-chat").await;
    let too_long = format!("client-{}", "a".repeat(194));
    assert_eq!(too_long.len(), 201);
    a.client_event("private-chat", &too_long, json!({})).await;
    expect_rejected(&mut a, &mut b).await;
    let longest = &too_long[..200];
    a.client_event("private-chat", longest, json!({})).await;
    b.expect_next(longest).await;
}

#[tokio::test]
async fn rate_limit_refuses_the_excess_with_4301() {
    let mut cfg = config();
    cfg.apps[0].limits.client_events_per_second = 3;
    let s = TestServer::start(cfg).await;
    let (mut a, mut b) = pair(&s, "private-chat").await;
    for n in 0..5 {
        a.client_event("private-chat", "client-n", json!({"n": n})).await;
    }
    for _ in 0..2 {
        assert_eq!(a.expect_error(Some(4301)).await, "Client event rate limit exceeded");
    }
    a.expect_quiet().await;
    for n in 0..3 {
        assert_eq!(b.expect_next("client-n").await["data"], json!({"n": n}));
    }
    b.expect_quiet().await;
}
