//! `pusher:signin`: the success frame, refusals (non-closing 4009), the user's own channel,
//! watchlist events, and closing connections that never authenticate when the app requires it.

mod common;
use common::*;
use herald::protocol::signature;
use serde_json::{Value, json};

/// Sends a correctly signed `pusher:signin` for `user_data`, without waiting.
async fn send_signin(c: &mut Client, user_data: &str) {
    let auth = signature::auth_token(KEY, SECRET, &signature::user_string(&c.socket_id, user_data));
    c.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
}

/// Signs in and requires the very next frame to be the exact success.
async fn signin_exact(c: &mut Client, user_data: &str) {
    send_signin(c, user_data).await;
    let ev = c.expect_next("pusher:signin_success").await;
    assert_eq!(ev, json!({"event": "pusher:signin_success", "data": {"user_data": user_data}}));
}

/// The very next frame must be `watchlist_events` with exactly `events`.
async fn expect_watchlist(c: &mut Client, events: Value) {
    let ev = c.expect_next("pusher_internal:watchlist_events").await;
    assert_eq!(ev.as_object().unwrap().len(), 2, "event and data only: {ev}");
    assert_eq!(data(&ev), json!({"events": events}));
}

async fn subscribe_user_channel(c: &mut Client, channel: &str) {
    c.send(json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": channel}})).await;
}

#[tokio::test]
async fn signin_success_echoes_the_signed_user_data() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    signin_exact(&mut c, r#"{"id":"12345","user_info":{"name":"Ann"}}"#).await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn bad_signature_is_refused_without_closing() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    let user_data = r#"{"id":"1"}"#;
    let wrong = signature::auth_token(KEY, SECRET, &signature::user_string("1.1", user_data));
    c.send(json!({"event": "pusher:signin", "data": {"auth": wrong, "user_data": user_data}})).await;
    c.expect_error(Some(4009)).await;
    c.expect_quiet().await;
    signin_exact(&mut c, user_data).await;
}

#[tokio::test]
async fn user_data_without_a_string_id_is_refused() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    for bad in [r#"{"id":12345}"#, r#"{"id":""}"#, r#"{"name":"x"}"#, "not json"] {
        send_signin(&mut c, bad).await;
        c.expect_error(Some(4009)).await;
    }
    c.expect_quiet().await;
}

#[tokio::test]
async fn signing_in_as_a_different_user_is_refused_and_keeps_the_first_identity() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    signin_exact(&mut c, r#"{"id":"1"}"#).await;
    send_signin(&mut c, r#"{"id":"2"}"#).await;
    c.expect_error(Some(4009)).await;
    c.expect_quiet().await;

    subscribe_user_channel(&mut c, "#server-to-user-1").await;
    c.expect_next("pusher_internal:subscription_succeeded").await;
    subscribe_user_channel(&mut c, "#server-to-user-2").await;
    c.expect_error(Some(4009)).await;
}

#[tokio::test]
async fn user_channel_is_for_the_signed_in_user_only() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    subscribe_user_channel(&mut c, "#server-to-user-1").await;
    let message = c.expect_error(Some(4009)).await;
    let err = c.expect_next("pusher:subscription_error").await;
    let want = json!({
        "event": "pusher:subscription_error",
        "channel": "#server-to-user-1",
        "data": {"type": "AuthError", "error": message, "status": 401},
    });
    assert_eq!(err, want);

    signin_exact(&mut c, r#"{"id":"1"}"#).await;
    subscribe_user_channel(&mut c, "#server-to-user-1").await;
    let ok = c.expect_next("pusher_internal:subscription_succeeded").await;
    assert_eq!(
        ok,
        json!({"event": "pusher_internal:subscription_succeeded", "channel": "#server-to-user-1", "data": "{}"})
    );
    subscribe_user_channel(&mut c, "#server-to-user-12").await;
    c.expect_error(Some(4009)).await;
    c.expect_next("pusher:subscription_error").await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn watchlist_reports_status_at_signin_then_changes() {
    let s = TestServer::default().await;
    let (mut a, mut b1, mut b2, mut c) =
        (s.connect(KEY).await, s.connect(KEY).await, s.connect(KEY).await, s.connect(KEY).await);
    signin_exact(&mut c, r#"{"id":"c"}"#).await;
    signin_exact(&mut a, r#"{"id":"a","watchlist":["b","c"]}"#).await;
    expect_watchlist(&mut a, json!([{"name": "online", "user_ids": ["c"]}, {"name": "offline", "user_ids": ["b"]}]))
        .await;

    signin_exact(&mut b1, r#"{"id":"b"}"#).await;
    expect_watchlist(&mut a, json!([{"name": "online", "user_ids": ["b"]}])).await;
    signin_exact(&mut b2, r#"{"id":"b"}"#).await;
    a.expect_quiet().await;

    // The server echoes a close only after the socket's user was signed out.
    b1.close().await;
    assert_eq!(b1.expect_close().await, Some(1000));
    a.expect_quiet().await;
    b2.close().await;
    assert_eq!(b2.expect_close().await, Some(1000));
    expect_watchlist(&mut a, json!([{"name": "offline", "user_ids": ["b"]}])).await;
    a.expect_quiet().await;
}

#[tokio::test]
async fn watchlist_with_everyone_offline_reports_one_offline_event() {
    let s = TestServer::default().await;
    let mut a = s.connect(KEY).await;
    signin_exact(&mut a, r#"{"id":"a","watchlist":["b","c"]}"#).await;
    expect_watchlist(&mut a, json!([{"name": "offline", "user_ids": ["b", "c"]}])).await;
    a.expect_quiet().await;
}

#[tokio::test]
async fn watchlist_over_the_limit_is_truncated_with_4302() {
    let mut cfg = config();
    cfg.apps[0].limits.max_watchlist_size = 2;
    let s = TestServer::start(cfg).await;
    let (mut a, mut d) = (s.connect(KEY).await, s.connect(KEY).await);
    signin_exact(&mut a, r#"{"id":"a","watchlist":["b","c","d"]}"#).await;
    a.expect_error(Some(4302)).await;
    expect_watchlist(&mut a, json!([{"name": "offline", "user_ids": ["b", "c"]}])).await;

    signin_exact(&mut d, r#"{"id":"d"}"#).await;
    a.expect_quiet().await;
}

fn requiring_signin() -> herald::config::Config {
    let mut cfg = config();
    cfg.apps[0].require_user_authentication = true;
    cfg.apps[0].user_authentication_timeout_secs = 1;
    cfg
}

#[tokio::test]
async fn required_authentication_closes_sockets_that_never_sign_in() {
    let s = TestServer::start(requiring_signin()).await;
    let mut signed = s.connect(KEY).await;
    signin_exact(&mut signed, r#"{"id":"1"}"#).await;
    let mut anonymous = s.connect(KEY).await;
    anonymous.subscribe("public-news").await;
    // Refused attempts do not count as authenticating.
    let bad = format!("{KEY}:{}", "0".repeat(64));
    anonymous.send(json!({"event": "pusher:subscribe", "data": {"auth": bad, "channel": "private-x"}})).await;
    anonymous.expect_error(Some(4009)).await;
    anonymous.expect_next("pusher:subscription_error").await;
    anonymous.send(json!({"event": "pusher:signin", "data": {"auth": bad, "user_data": r#"{"id":"2"}"#}})).await;
    anonymous.expect_error(Some(4009)).await;

    anonymous.expect_error(Some(4009)).await;
    assert_eq!(anonymous.expect_close().await, Some(4009));
    // `signed` connected first, so its own deadline has passed too.
    signed.expect_quiet().await;
}

#[tokio::test]
async fn required_authentication_accepts_a_private_subscription() {
    let s = TestServer::start(requiring_signin()).await;
    let mut authorized = s.connect(KEY).await;
    authorized.subscribe("private-orders").await;
    let mut anonymous = s.connect(KEY).await;

    anonymous.expect_error(Some(4009)).await;
    assert_eq!(anonymous.expect_close().await, Some(4009));
    authorized.expect_quiet().await;
}
