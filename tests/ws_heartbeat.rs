//! Liveness: `pusher:ping`/`pong`, WebSocket ping/pong, and the activity/pong timeouts that
//! close dead peers (4201) without ever dropping healthy receive-only clients.

mod common;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::{Duration, Instant, interval};
use tokio_tungstenite::tungstenite::Message;

/// One-second activity and pong timeouts, so a dead peer is found within about two seconds.
fn fast_heartbeat() -> herald::config::Config {
    let mut cfg = config();
    cfg.websocket.activity_timeout_secs = 1;
    cfg.websocket.pong_timeout_secs = 1;
    cfg
}

#[tokio::test]
async fn pusher_ping_is_answered_with_pusher_pong() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    c.send(json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(c.expect_next("pusher:pong").await, json!({"event": "pusher:pong", "data": "{}"}));
    c.send_text(r#"{"event":"pusher:ping"}"#).await;
    assert_eq!(c.expect_next("pusher:pong").await, json!({"event": "pusher:pong", "data": "{}"}));
}

#[tokio::test]
async fn websocket_ping_frame_is_answered_with_a_pong_frame() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    c.ws.send(Message::Ping(b"are you there".to_vec().into())).await.unwrap();
    let msg = tokio::time::timeout(WAIT, c.ws.next()).await.expect("a frame in time").expect("open").unwrap();
    assert_eq!(msg, Message::Pong(b"are you there".to_vec().into()));
    c.expect_quiet().await;
}

#[tokio::test]
async fn silent_client_that_answers_pings_is_kept() {
    let s = TestServer::start(fast_heartbeat()).await;
    let mut c = s.connect(KEY).await;
    // Reading lets tungstenite answer each server ping; three pings span three activity timeouts,
    // each longer than what a non-answering client gets (ping + pong timeout).
    let mut pings = 0;
    while pings < 3 {
        let msg = tokio::time::timeout(WAIT, c.ws.next()).await.expect("a ping in time").expect("open").unwrap();
        match msg {
            Message::Ping(_) => pings += 1,
            Message::Text(t) if serde_json::from_str::<Value>(&t).unwrap()["event"] == "pusher:ping" => {}
            other => panic!("only pings expected while silent, got {other:?}"),
        }
    }
    c.expect_quiet().await;
}

#[tokio::test]
async fn client_that_never_answers_the_ping_is_closed_with_4201() {
    let s = TestServer::start(fast_heartbeat()).await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    let started = Instant::now();
    assert!(matches!(raw.next_frame().await, Frame::Ping(_)), "the server probes a silent client first");
    match raw.next_frame().await {
        Frame::Text(t) => assert_eq!(t, r#"{"event":"pusher:ping","data":"{}"}"#),
        other => panic!("expected a pusher:ping after the WebSocket ping, got {other:?}"),
    }
    let error = match raw.next_frame().await {
        Frame::Text(t) => serde_json::from_str::<Value>(&t).unwrap(),
        other => panic!("expected the pusher:error before the close, got {other:?}"),
    };
    assert_eq!(error["event"], "pusher:error");
    assert_eq!(error["data"]["code"], 4201);
    assert!(error["data"]["message"].is_string());
    assert_eq!(raw.next_frame().await, Frame::Close(Some(4201)));
    assert!(started.elapsed() >= Duration::from_secs(1), "closed before the pong timeout");
}

#[tokio::test]
async fn receive_only_client_on_a_busy_channel_is_never_dropped() {
    let s = TestServer::start(fast_heartbeat()).await;
    let mut receiver = s.connect(KEY).await;
    receiver.subscribe("private-busy").await;
    let mut sender = s.connect(KEY).await;
    sender.subscribe("private-busy").await;

    const EVENTS: u64 = 15;
    let send = tokio::spawn(async move {
        let mut every = interval(Duration::from_millis(200));
        for n in 0..EVENTS {
            every.tick().await;
            sender.client_event("private-busy", "client-tick", json!({"n": n})).await;
        }
        sender
    });
    for n in 0..EVENTS {
        assert_eq!(receiver.expect_next("client-tick").await["data"], json!({"n": n}));
    }
    let mut sender = send.await.unwrap();
    receiver.expect_quiet().await;
    sender.expect_quiet().await;
}

/// SDKs without WebSocket-level pings answer the protocol's `pusher:ping` with `pusher:pong`.
#[tokio::test]
async fn client_answering_pusher_ping_with_pusher_pong_is_kept() {
    let s = TestServer::start(fast_heartbeat()).await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    let mut answered = 0;
    while answered < 3 {
        match raw.next_frame().await {
            Frame::Ping(_) => {}
            Frame::Text(t) => {
                assert_eq!(serde_json::from_str::<Value>(&t).unwrap()["event"], "pusher:ping", "{t}");
                raw.send(json!({"event": "pusher:pong", "data": {}})).await;
                answered += 1;
            }
            other => panic!("the socket must stay open, got {other:?}"),
        }
    }
}
