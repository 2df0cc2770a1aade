//! Per-connection limits over real sockets: channels per connection, the inbound budget for
//! every kind of message, and what a refused or flooding client sees.

mod common;
use common::*;
use serde_json::json;
use tokio::io::AsyncWriteExt;

fn subscribe_frame(channel: &str) -> Vec<u8> {
    let text = json!({"event": "pusher:subscribe", "data": {"channel": channel}}).to_string();
    masked_frame(true, 0x1, text.as_bytes())
}

/// The defaults leave room for a page with many channels: 1,000 subscriptions sent at once at
/// connect all succeed (inside the inbound burst), and the 1,001st is refused without closing.
#[tokio::test]
async fn a_thousand_channels_at_connect_then_limit_reached() {
    let s = TestServer::default().await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    let burst: Vec<u8> = (0..1000).flat_map(|i| subscribe_frame(&format!("c-{i}"))).collect();
    raw.tcp.write_all(&burst).await.unwrap();
    for i in 0..1000 {
        let ok = raw.expect_event("pusher_internal:subscription_succeeded").await;
        assert_eq!(ok["channel"], format!("c-{i}"));
    }
    raw.tcp.write_all(&subscribe_frame("one-too-many")).await.unwrap();
    let error = raw.expect_event("pusher:error").await;
    assert_eq!(error["data"]["code"], 4100, "{error}");
    let refused = raw.expect_event("pusher:subscription_error").await;
    assert_eq!(refused["channel"], "one-too-many");
    assert_eq!(refused["data"]["type"], "LimitReached");
    assert_eq!(refused["data"]["status"], 4100);
    raw.send(json!({"event": "pusher:ping", "data": {}})).await;
    raw.expect_event("pusher:pong").await;
    let m = s.metrics().await;
    assert_eq!(rejected(&m, "subscription_limit"), 1.0);
    assert_eq!(metric_value(&m, "herald_channels"), Some(1000.0), "the refused channel was not stored");
}

/// Thousands of subscribes and unsubscribes on one socket leave nothing behind, and the socket
/// keeps answering.
#[tokio::test]
async fn unsubscribing_thousands_of_channels_leaves_nothing() {
    let mut cfg = config();
    cfg.apps[0].limits.max_subscriptions_per_connection = 20_000;
    cfg.websocket.inbound_burst = 50_000;
    let s = TestServer::start(cfg).await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    let subs: Vec<u8> = (0..20_000).flat_map(|i| subscribe_frame(&format!("c-{i}"))).collect();
    raw.tcp.write_all(&subs).await.unwrap();
    let unsubs: Vec<u8> = (0..20_000)
        .flat_map(|i| {
            let text = json!({"event": "pusher:unsubscribe", "data": {"channel": format!("c-{i}")}}).to_string();
            masked_frame(true, 0x1, text.as_bytes())
        })
        .collect();
    raw.tcp.write_all(&unsubs).await.unwrap();
    raw.send(json!({"event": "pusher:ping", "data": {}})).await;
    raw.expect_event("pusher:pong").await;
    assert_eq!(metric_value(&s.metrics().await, "herald_channels"), Some(0.0));
}

fn flood_config() -> herald::config::Config {
    let mut cfg = config();
    cfg.websocket.inbound_burst = 10;
    cfg.websocket.inbound_messages_per_second = 1;
    cfg.websocket.inbound_refused_before_close = 3;
    cfg
}

/// Over the burst, text messages are dropped with a non-closing 4301; a client that keeps on
/// is closed with 4100 (pusher-js reconnects after a back-off).
#[tokio::test]
async fn text_over_the_inbound_budget_is_refused_then_closed() {
    let s = TestServer::start(flood_config()).await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    let ping = masked_frame(true, 0x1, br#"{"event":"pusher:ping","data":{}}"#);
    // One write, so the whole flood is handled within a fraction of the refill interval.
    raw.tcp.write_all(&ping.repeat(14)).await.unwrap();
    for _ in 0..10 {
        raw.expect_event("pusher:pong").await;
    }
    for _ in 0..3 {
        let e = raw.expect_event("pusher:error").await;
        assert_eq!(e["data"]["code"], 4301, "{e}");
    }
    let e = raw.expect_event("pusher:error").await;
    assert_eq!(e["data"]["code"], 4100, "{e}");
    assert_eq!(raw.next_frame().await, Frame::Close(Some(4100)));
    let m = s.metrics().await;
    assert_eq!(rejected(&m, "inbound_rate_limited"), 3.0);
    assert_eq!(rejected(&m, "inbound_flood"), 1.0);
    assert_eq!(series(&m, "herald_slow_consumer_disconnects_total", &format!("app_id=\"{APP_ID}\"")), 0.0);
}

/// WebSocket pings spend the same budget: over it they go unanswered, then the socket closes.
#[tokio::test]
async fn websocket_pings_spend_the_same_budget() {
    let s = TestServer::start(flood_config()).await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    raw.tcp.write_all(&masked_frame(true, 0x9, b"p").repeat(14)).await.unwrap();
    for _ in 0..10 {
        assert_eq!(raw.next_frame().await, Frame::Pong(b"p".to_vec()));
    }
    let e = raw.expect_event("pusher:error").await;
    assert_eq!(e["data"]["code"], 4100, "refused pings are dropped silently: {e}");
    assert_eq!(raw.next_frame().await, Frame::Close(Some(4100)));
    assert_eq!(rejected(&s.metrics().await, "inbound_rate_limited"), 3.0);
}

/// One socket's flood does not touch its neighbour's budget.
#[tokio::test]
async fn budgets_are_per_connection() {
    let s = TestServer::start(flood_config()).await;
    let mut flooder = s.connect_tcp(KEY, "protocol=7").await;
    let mut calm = s.connect(KEY).await;
    flooder.tcp.write_all(&masked_frame(true, 0x9, b"").repeat(20)).await.unwrap();
    flooder.expect_event("pusher:error").await;
    for _ in 0..5 {
        calm.expect_quiet().await;
    }
}
