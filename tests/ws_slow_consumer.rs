//! Slow consumers: a socket that stops reading is closed with 4100 once its bounded queue is
//! full, the disconnect is counted, and nobody else is affected.

mod common;
use common::*;
use serde_json::{Value, json};

const SLOW_METRIC: &str = "herald_slow_consumer_disconnects_total";
/// Upper bound on the flood: far more bytes than the socket buffers between server and client hold.
const MAX_BATCHES: usize = 1000;
const BATCH: usize = 4;

fn slow_config() -> herald::config::Config {
    let mut cfg = config();
    cfg.websocket.outbound_queue_frames = 8;
    cfg.apps[0].limits.client_events_per_second = 1_000_000;
    cfg.websocket.inbound_messages_per_second = 1_000_000;
    cfg
}

/// A reader with a tiny receive buffer and a fast client-event producer on one channel.
async fn slow_and_flooder(s: &TestServer) -> (RawClient, Client) {
    let path = format!("{}/app/{KEY}?protocol=7", s.path_prefix());
    let mut slow = RawClient::connect(s.addr(), &path, Some(4096)).await;
    slow.subscribe("private-flood").await;
    let mut flooder = s.connect(KEY).await;
    flooder.subscribe("private-flood").await;
    flooder.nodelay();
    (slow, flooder)
}

/// A steady producer, not a burst: a few events, then a ping round trip, so the queue fills
/// because the socket stopped reading, not because one wake-up delivered more than 8 frames.
async fn flood_until_slow(s: &TestServer, flooder: &mut Client) {
    let payload = "x".repeat(8 * 1024);
    let mut batches = 0;
    while s.metric(SLOW_METRIC).await < 1.0 {
        assert!(batches < MAX_BATCHES, "the slow socket was never disconnected");
        for _ in 0..BATCH {
            flooder.client_event("private-flood", "client-flood", json!(payload)).await;
        }
        flooder.expect_quiet().await;
        batches += 1;
    }
}

#[tokio::test]
async fn a_socket_that_stops_reading_is_closed_and_counted() {
    let s = TestServer::start(slow_config()).await;

    let (mut slow, mut flooder) = slow_and_flooder(&s).await;
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    a.subscribe("private-other").await;
    b.subscribe("private-other").await;

    flood_until_slow(&s, &mut flooder).await;

    // Reading again drains what was already on the wire; the server's last words are 4100.
    let error = loop {
        match slow.next_frame().await {
            Frame::Text(t) => {
                let ev: Value = serde_json::from_str(&t).unwrap();
                if ev["event"] == "pusher:error" {
                    break ev;
                }
                assert_eq!(ev["event"], "client-flood");
            }
            other => panic!("expected pusher:error 4100 before {other:?}"),
        }
    };
    assert_eq!(error["data"]["code"], 4100);
    assert_eq!(slow.next_frame().await, Frame::Close(Some(4100)));

    flooder.expect_quiet().await;
    a.client_event("private-other", "client-hi", json!({})).await;
    b.expect_next("client-hi").await;
    a.expect_quiet().await;
    b.expect_quiet().await;
    assert_eq!(s.metric(SLOW_METRIC).await, 1.0);
}

/// A slow consumer that never reads again does not keep its socket, its queue or its last
/// batch for a pong timeout: the whole close is bounded by a couple of seconds.
#[tokio::test]
async fn a_slow_consumer_that_never_reads_again_is_dropped_promptly() {
    let mut cfg = slow_config();
    cfg.websocket.pong_timeout_secs = 600;
    let s = TestServer::start(cfg).await;
    let (slow, mut flooder) = slow_and_flooder(&s).await;
    flood_until_slow(&s, &mut flooder).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while unlabelled(&s.metrics().await, "herald_open_sockets") > 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "the slow socket is still held");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    flooder.expect_quiet().await;
    drop(slow);
}
