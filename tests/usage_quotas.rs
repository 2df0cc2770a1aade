//! Per-app usage and the daily message quota on a two-node cluster (a real redis-server):
//! messages published on either node count towards one total, a REST publish past the quota
//! is refused with 429 (nothing of it published) and a client event with 4301, and the admin
//! API reports the day's messages and peak connections.

mod common;
use common::redis::RedisServer;
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "usage-admin-token-0123";

async fn usage(s: &TestServer) -> Value {
    let res = reqwest::Client::new()
        .get(format!("{}/admin/apps/{APP_ID}/usage", s.metrics_base))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.unwrap()
}

/// Waits until the node's view of today's messages is `want` (reports arrive every second).
async fn wait_messages(s: &TestServer, want: u64) -> Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let u = usage(s).await;
        if u["messages"].as_u64() == Some(want) {
            return u;
        }
        assert!(tokio::time::Instant::now() < deadline, "messages stayed at {u}, wanted {want}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn event(channel: &str) -> Value {
    json!({"name": "e", "channel": channel, "data": "{}"})
}

#[tokio::test]
async fn a_daily_message_quota_holds_across_two_nodes() {
    let redis = RedisServer::start().await;
    let mut cfg = cluster_config(&redis.url());
    cfg.apps[0].quota_messages_per_day = 5;
    cfg.app_store.admin_token = TOKEN.into();
    let (a, b) = (TestServer::start(cfg.clone()).await, TestServer::start(cfg).await);

    // Three messages on node A (a two-channel event counts two), seen by node B.
    assert_eq!(a.api().post("/events", &event("c1")).await.0, 200);
    let two = json!({"name": "e", "channels": ["c1", "c2"], "data": "{}"});
    assert_eq!(a.api().post("/events", &two).await.0, 200);
    wait_messages(&b, 3).await;

    // Two more on node B reach the quota; a sixth is refused, on either node.
    let mut listener = b.connect(KEY).await;
    listener.subscribe("c3").await;
    assert_eq!(b.api().post("/events", &event("c3")).await.0, 200);
    assert_eq!(b.api().post("/events", &event("c3")).await.0, 200);
    let (status, body) = b.api().post("/events", &event("c3")).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("quota"), "{body}");
    // A batch that would pass it is refused whole.
    let batch = json!({"batch": [event("c3"), event("c3")]});
    assert_eq!(b.api().post("/batch_events", &batch).await.0, 429);
    wait_messages(&a, 5).await;
    assert_eq!(a.api().post("/events", &event("c1")).await.0, 429);

    // The two accepted events were delivered.
    listener.expect("e").await;
    listener.expect("e").await;

    // Client events count too: refused with 4301 once the quota is reached.
    let mut sender = a.connect(KEY).await;
    sender.subscribe("private-room").await;
    sender.client_event("private-room", "client-typing", json!({})).await;
    let message = sender.expect_error(Some(4301)).await;
    assert!(message.contains("quota"), "{message}");

    let u = usage(&a).await;
    assert_eq!(u["peak_connections"].as_u64().map(|p| p >= 1), Some(true), "{u}");
    assert!(a.metrics().await.contains(r#"herald_rejected_total{reason="message_quota"}"#));
}

#[tokio::test]
async fn usage_counts_on_one_node_without_a_quota() {
    let mut cfg = config();
    cfg.app_store.admin_token = TOKEN.into();
    let s = TestServer::start(cfg).await;
    for _ in 0..4 {
        assert_eq!(s.api().post("/events", &event("c")).await.0, 200);
    }
    let u = usage(&s).await;
    assert_eq!(u["messages"], 4, "exact on one node: {u}");
    assert_eq!(u["day"].as_str().map(str::len), Some(10));
    assert_eq!(s.metric("herald_app_messages_total").await, 4.0);
}
