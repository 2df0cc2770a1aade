//! Slow consumers: a socket that stops reading is closed with 4100 once its bounded queue is
//! full, the disconnect is counted, and nobody else is affected.

mod common;
use common::*;
use serde_json::{Value, json};

const SLOW_METRIC: &str = "herald_slow_consumer_disconnects_total";
/// Upper bound on the flood: far more bytes than the socket buffers between server and client hold.
const MAX_BATCHES: usize = 1000;
const BATCH: usize = 4;

#[tokio::test]
async fn a_socket_that_stops_reading_is_closed_and_counted() {
    let mut cfg = config();
    cfg.websocket.outbound_queue_frames = 8;
    cfg.apps[0].limits.client_events_per_second = 1_000_000;
    let s = TestServer::start(cfg).await;

    let path = format!("{}/app/{KEY}?protocol=7", s.path_prefix());
    let mut slow = RawClient::connect(s.addr(), &path, Some(4096)).await;
    slow.subscribe("private-flood").await;
    let mut flooder = s.connect(KEY).await;
    flooder.subscribe("private-flood").await;
    flooder.nodelay();
    let (mut a, mut b) = (s.connect(KEY).await, s.connect(KEY).await);
    a.subscribe("private-other").await;
    b.subscribe("private-other").await;

    // A steady producer, not a burst: a few events, then a ping round trip, so the queue fills
    // because the socket stopped reading, not because one wake-up delivered more than 8 frames.
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
