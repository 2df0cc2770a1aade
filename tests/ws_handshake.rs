//! Opening a socket: `connection_established`, and every refusal (error frame, then close code).

mod common;
use common::*;
use serde_json::Value;

const PUSHER_JS: &str = "protocol=7&client=js&version=8.4.0&flash=false";

fn is_socket_id(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    s.split_once('.').is_some_and(|(a, b)| digits(a) && digits(b))
}

/// Expects the refusal sequence: `pusher:error` with `code`, then a close frame with `code`.
async fn expect_refused(c: &mut Client, code: u16) {
    c.expect_error(Some(code)).await;
    assert_eq!(c.expect_close().await, Some(code));
}

#[tokio::test]
async fn connection_established_carries_socket_id_and_activity_timeout() {
    let mut cfg = config();
    cfg.websocket.activity_timeout_secs = 42;
    let s = TestServer::start(cfg).await;
    let mut c = s.connect_raw(KEY, PUSHER_JS).await;
    let ev = c.expect_next("pusher:connection_established").await;
    let obj = ev.as_object().unwrap();
    assert_eq!(obj.len(), 2, "only event and data: {ev}");
    let text = ev["data"].as_str().expect("data is a JSON string");
    let data: Value = serde_json::from_str(text).unwrap();
    assert_eq!(data.as_object().unwrap().len(), 2, "{data}");
    let sid = data["socket_id"].as_str().expect("socket_id is a string");
    assert!(is_socket_id(sid), "{sid} does not match ^\\d+\\.\\d+$");
    assert!(data["activity_timeout"].is_u64(), "activity_timeout is an integer: {data}");
    assert_eq!(data["activity_timeout"], 42);
}

#[tokio::test]
async fn socket_ids_differ_across_connections() {
    let s = TestServer::default().await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..10 {
        let c = s.connect(KEY).await;
        assert!(ids.insert(c.socket_id.clone()), "socket id {} reused", c.socket_id);
    }
}

#[tokio::test]
async fn unknown_app_key_is_refused_with_4001() {
    let s = TestServer::default().await;
    let mut c = s.connect_raw("no-such-key", PUSHER_JS).await;
    expect_refused(&mut c, 4001).await;
}

#[tokio::test]
async fn disabled_app_is_refused_with_4003() {
    let mut cfg = config();
    cfg.apps[0].enabled = false;
    let s = TestServer::start(cfg).await;
    let mut c = s.connect_raw(KEY, PUSHER_JS).await;
    expect_refused(&mut c, 4003).await;
}

#[tokio::test]
async fn over_max_connections_is_refused_with_4004_until_a_slot_frees() {
    let mut cfg = config();
    cfg.apps[0].max_connections = 2;
    let s = TestServer::start(cfg).await;
    let mut first = s.connect(KEY).await;
    let mut second = s.connect(KEY).await;
    let mut third = s.connect_raw(KEY, PUSHER_JS).await;
    expect_refused(&mut third, 4004).await;

    first.close().await;
    s.wait_metric("herald_connections", |v| v == 1.0).await;
    let mut again = s.connect(KEY).await;
    again.expect_quiet().await;
    second.expect_quiet().await;
}

#[tokio::test]
async fn non_numeric_protocol_is_refused_with_4006() {
    let s = TestServer::default().await;
    let mut c = s.connect_raw(KEY, "protocol=abc&client=js").await;
    expect_refused(&mut c, 4006).await;
}

#[tokio::test]
async fn unsupported_protocol_versions_are_refused_with_4007() {
    let s = TestServer::default().await;
    for version in ["4", "8"] {
        let mut c = s.connect_raw(KEY, &format!("protocol={version}&client=js")).await;
        expect_refused(&mut c, 4007).await;
    }
}

#[tokio::test]
async fn protocol_5_6_and_7_are_accepted() {
    let s = TestServer::default().await;
    for version in ["5", "6", "7"] {
        let mut c = s.connect_raw(KEY, &format!("protocol={version}&client=js&version=8.4.0")).await;
        c.expect_next("pusher:connection_established").await;
        c.expect_quiet().await;
    }
}

#[tokio::test]
async fn missing_protocol_is_accepted_by_default() {
    let s = TestServer::default().await;
    let mut c = s.connect_raw(KEY, "client=js&version=8.4.0").await;
    c.expect_next("pusher:connection_established").await;
    c.expect_quiet().await;
}

#[tokio::test]
async fn missing_protocol_is_refused_with_4008_when_required() {
    let mut cfg = config();
    cfg.websocket.require_protocol_param = true;
    let s = TestServer::start(cfg).await;
    let mut c = s.connect_raw(KEY, "client=js&version=8.4.0").await;
    expect_refused(&mut c, 4008).await;
    let mut ok = s.connect_raw(KEY, PUSHER_JS).await;
    ok.expect_next("pusher:connection_established").await;
}

#[tokio::test]
async fn path_prefix_mounts_the_socket_endpoint() {
    let mut cfg = config();
    cfg.server.path_prefix = "/ws".into();
    let s = TestServer::start(cfg).await;
    assert!(s.ws_base.ends_with("/ws"), "{}", s.ws_base);
    let mut c = s.connect(KEY).await;
    c.subscribe("orders").await;

    let unprefixed = format!("ws://{}/app/{KEY}?{PUSHER_JS}", s.addr());
    let refused = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(unprefixed)).await.expect("in time");
    assert!(refused.is_err(), "/app/{{key}} must not be served outside the prefix");
}

#[tokio::test]
async fn client_close_is_answered_with_a_close_frame() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    c.close().await;
    assert_eq!(c.expect_close().await, Some(1000));
}

#[tokio::test]
async fn pages_from_origins_the_app_does_not_allow_are_refused_with_4009() {
    let mut cfg = config();
    cfg.apps[0].allowed_origins = vec!["https://app.example.com".into(), "https://*.example.org".into()];
    let s = TestServer::start(cfg).await;
    for allowed in ["https://app.example.com", "https://shop.example.org", "https://APP.example.com:443"] {
        s.connect_from(KEY, allowed).await.established().await;
    }
    for refused in ["https://evil.example.net", "http://app.example.com", "https://example.org", "null"] {
        let mut c = s.connect_from(KEY, refused).await;
        let message = c.expect_error(Some(4009)).await;
        assert!(message.contains("Origin"), "{refused}: {message}");
        assert_eq!(c.expect_close().await, Some(4009), "{refused}");
    }
    // Non-browser clients send no Origin: allowed unless the app requires one.
    s.connect(KEY).await;
    assert!(s.metrics().await.contains(r#"herald_rejected_total{reason="origin_not_allowed"} 4"#));
    s.stop().await;

    let mut cfg = config();
    cfg.apps[0].allowed_origins = vec!["https://app.example.com".into()];
    cfg.apps[0].require_origin = true;
    let s = TestServer::start(cfg).await;
    let mut c = s.connect_raw(KEY, PUSHER_JS).await;
    expect_refused(&mut c, 4009).await;
    s.connect_from(KEY, "https://app.example.com").await.established().await;
}
