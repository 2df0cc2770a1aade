//! Webhooks against a real local HTTP receiver: payloads, signatures, batching, the vacate
//! delay, retries, and bounded memory when the receiver is down.

mod common;

use common::hooks::{assert_valid, receiver};
use common::*;
use herald::config::{Config, WebhookConfig};
use serde_json::{Value, json};

fn webhook_config(url: &str) -> Config {
    let mut c = config();
    c.webhooks.batch_ms = 10;
    c.webhooks.vacate_delay_ms = 300;
    c.webhooks.retry_initial_ms = 20;
    use herald::protocol::WebhookKind::*;
    let events = vec![ChannelOccupied, ChannelVacated, MemberAdded, MemberRemoved, ClientEvent, CacheMiss];
    c.apps[0].webhooks = vec![WebhookConfig { url: url.into(), events, ..WebhookConfig::default() }];
    c
}

fn named(name: &'static str, channel: &'static str) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["name"] == name && e["channel"] == channel
}

#[tokio::test]
async fn occupied_then_vacated_after_the_delay() {
    let mut r = receiver(0, 200).await;
    let s = TestServer::start(webhook_config(&r.url)).await;
    let mut c = s.connect(KEY).await;
    c.subscribe("news").await;
    let hook = r.next().await;
    assert_valid(&hook);
    assert_eq!(hook.events(), vec![json!({"name": "channel_occupied", "channel": "news"})]);
    c.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}})).await;
    let events = r.events_until(named("channel_vacated", "news")).await;
    assert_eq!(events, vec![json!({"name": "channel_vacated", "channel": "news"})]);
}

#[tokio::test]
async fn quick_resubscribe_sends_no_vacated_occupied_pair() {
    let mut r = receiver(0, 200).await;
    let s = TestServer::start(webhook_config(&r.url)).await;
    let mut c = s.connect(KEY).await;
    c.subscribe("news").await;
    c.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}})).await;
    c.subscribe("news").await;
    // A vacate of another channel, held for the same delay but later: when it arrives, any
    // uncancelled vacate of `news` would already have been released.
    c.subscribe("marker").await;
    c.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "marker"}})).await;
    let events = r.events_until(named("channel_vacated", "marker")).await;
    let news: Vec<&Value> = events.iter().filter(|e| e["channel"] == "news").collect();
    assert_eq!(news, vec![&json!({"name": "channel_occupied", "channel": "news"})], "{events:?}");
}

#[tokio::test]
async fn member_events_are_per_user_not_per_socket() {
    let mut r = receiver(0, 200).await;
    let s = TestServer::start(webhook_config(&r.url)).await;
    let mut tab1 = s.connect(KEY).await;
    let mut tab2 = s.connect(KEY).await;
    tab1.join("presence-room", "7", json!({"n": 1})).await;
    tab2.join("presence-room", "7", json!({"n": 1})).await;
    tab1.close().await;
    tab2.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "presence-room"}})).await;
    let events = r.events_until(named("channel_vacated", "presence-room")).await;
    let members: Vec<&Value> = events.iter().filter(|e| e["name"].as_str().unwrap().starts_with("member_")).collect();
    assert_eq!(
        members,
        vec![
            &json!({"name": "member_added", "channel": "presence-room", "user_id": "7"}),
            &json!({"name": "member_removed", "channel": "presence-room", "user_id": "7"}),
        ]
    );
}

#[tokio::test]
async fn client_events_and_cache_misses() {
    let mut r = receiver(0, 200).await;
    let s = TestServer::start(webhook_config(&r.url)).await;
    let mut a = s.connect(KEY).await;
    let mut b = s.connect(KEY).await;
    a.join("presence-chat", "1", json!({})).await;
    b.join("presence-chat", "2", json!({})).await;
    a.send(json!({"event": "client-typing", "channel": "presence-chat", "data": {"name": "Ann"}})).await;
    b.expect("client-typing").await;
    let events = r.events_until(|e| e["name"] == "client_event").await;
    let want = json!({"name": "client_event", "channel": "presence-chat", "event": "client-typing",
                      "data": "{\"name\":\"Ann\"}", "socket_id": a.socket_id, "user_id": "1"});
    assert_eq!(events.last().unwrap(), &want);
    a.subscribe("cache-loc").await;
    b.subscribe("cache-loc").await;
    let events = r.events_until(|e| e["name"] == "cache_miss").await;
    assert_eq!(events.last().unwrap(), &json!({"name": "cache_miss", "channel": "cache-loc"}));
}

#[tokio::test]
async fn subscription_counts_when_wanted() {
    let mut r = receiver(0, 200).await;
    let mut cfg = webhook_config(&r.url);
    cfg.apps[0].webhooks[0].events = vec![herald::protocol::WebhookKind::SubscriptionCount];
    cfg.apps[0].webhooks[0].channel_prefix = "count-".into();
    let s = TestServer::start(cfg).await;
    let mut a = s.connect(KEY).await;
    let mut b = s.connect(KEY).await;
    a.subscribe("other").await;
    a.subscribe("count-me").await;
    let events = r.events_until(|_| true).await;
    assert_eq!(events, vec![json!({"name": "subscription_count", "channel": "count-me", "subscription_count": 1})]);
    b.subscribe("count-me").await;
    let events = r.events_until(|_| true).await;
    assert_eq!(events, vec![json!({"name": "subscription_count", "channel": "count-me", "subscription_count": 2})]);
}

/// Above 100 subscribers, `subscription_count` webhooks follow the event's cadence: at most one
/// per 5 s, the delayed one carrying the count current when it goes out.
#[tokio::test]
async fn subscription_count_webhooks_are_throttled_on_big_channels() {
    let mut r = receiver(0, 200).await;
    let mut cfg = webhook_config(&r.url);
    use herald::protocol::WebhookKind::{ChannelOccupied, SubscriptionCount};
    cfg.apps[0].webhooks[0].events = vec![SubscriptionCount, ChannelOccupied];
    let s = TestServer::start(cfg).await;
    let mut clients = Vec::new();
    for _ in 0..105 {
        let mut c = s.connect(KEY).await;
        c.subscribe("big").await;
        clients.push(c);
    }
    // Webhooks leave in the order they were queued: an unthrottled count for 102–105 would
    // come before this marker.
    clients[0].subscribe("marker").await;
    let mut seen = Vec::new();
    // The throttled announcement comes up to 5 s after the 101st: wait longer than `WAIT`.
    while seen.last() != Some(&json!(105)) {
        let hook = tokio::time::timeout(WAIT * 3, r.hooks.recv()).await.expect("a webhook in time").unwrap();
        for e in hook.events() {
            match (e["name"].as_str(), e["channel"].as_str()) {
                (Some("channel_occupied"), Some("marker")) => seen.push(json!("marker")),
                (Some("subscription_count"), Some("big")) => seen.push(e["subscription_count"].clone()),
                _ => {}
            }
        }
    }
    // Batching collapses a channel's repeated counts to the latest, so below 101 any subset
    // may arrive; 101 goes out at once, then the marker, and 105 once the throttle allows.
    let n = seen.len();
    assert!(n >= 3 && seen[n - 3..] == [json!(101), json!("marker"), json!(105)], "{seen:?}");
    assert!(seen[..n - 3].iter().all(|c| c.as_u64().is_some_and(|c| c <= 100)), "{seen:?}");
}

#[tokio::test]
async fn events_are_batched_into_one_request() {
    let mut r = receiver(0, 200).await;
    let mut cfg = webhook_config(&r.url);
    cfg.webhooks.batch_ms = 60_000;
    cfg.webhooks.batch_max_events = 3;
    cfg.apps[0].webhooks[0].events = vec![herald::protocol::WebhookKind::ChannelOccupied];
    let s = TestServer::start(cfg).await;
    let mut c = s.connect(KEY).await;
    for ch in ["a", "b", "c"] {
        c.subscribe(ch).await;
    }
    let hook = r.next().await;
    assert_valid(&hook);
    let names: Vec<Value> = hook.events().iter().map(|e| e["channel"].clone()).collect();
    assert_eq!(names, vec![json!("a"), json!("b"), json!("c")]);
}

#[tokio::test]
async fn failures_are_retried_until_delivered() {
    let mut r = receiver(2, 503).await;
    let s = TestServer::start(webhook_config(&r.url)).await;
    let mut c = s.connect(KEY).await;
    c.subscribe("news").await;
    let bodies: Vec<String> = [r.next().await, r.next().await, r.next().await].into_iter().map(|h| h.body).collect();
    assert!(bodies.iter().all(|b| b == &bodies[0]), "every retry sends the same signed body");
    wait_series(&s, "herald_webhook_requests_total{app_id=\"test-app\",outcome=\"sent\"}", 1.0).await;
    let m = s.metrics().await;
    assert!(m.contains("herald_webhook_requests_total{app_id=\"test-app\",outcome=\"retried\"} 2"), "{m}");
}

#[tokio::test]
async fn client_errors_are_final() {
    let mut r = receiver(usize::MAX, 400).await;
    let s = TestServer::start(webhook_config(&r.url)).await;
    let mut c = s.connect(KEY).await;
    c.subscribe("news").await;
    r.next().await;
    wait_series(&s, "herald_webhook_requests_total{app_id=\"test-app\",outcome=\"failed\"}", 1.0).await;
    assert!(r.hooks.try_recv().is_err(), "a 400 is not retried");
}

#[tokio::test]
async fn a_dead_receiver_cannot_grow_memory() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", dead.local_addr().unwrap());
    drop(dead);
    let mut cfg = webhook_config(&url);
    cfg.webhooks.batch_max_events = 1;
    cfg.webhooks.max_pending_batches = 2;
    cfg.webhooks.retry_initial_ms = 60_000;
    cfg.apps[0].webhooks[0].events = vec![herald::protocol::WebhookKind::ChannelOccupied];
    let s = TestServer::start(cfg).await;
    let mut c = s.connect(KEY).await;
    for i in 0..10 {
        c.subscribe(&format!("ch{i}")).await;
    }
    wait_series(&s, "herald_webhook_requests_total{app_id=\"test-app\",outcome=\"dropped\"}", 8.0).await;
    wait_series(&s, "herald_webhook_events_total{app_id=\"test-app\",outcome=\"dropped\"}", 8.0).await;
}

#[tokio::test]
async fn shutdown_flushes_held_and_batched_events() {
    let mut r = receiver(0, 200).await;
    let mut cfg = webhook_config(&r.url);
    cfg.webhooks.vacate_delay_ms = 600_000;
    let s = TestServer::start(cfg).await;
    let mut c = s.connect(KEY).await;
    c.subscribe("news").await;
    assert_eq!(r.next().await.events(), vec![json!({"name": "channel_occupied", "channel": "news"})]);
    c.send(json!({"event": "pusher:unsubscribe", "data": {"channel": "news"}})).await;
    c.expect_quiet().await;
    s.stop().await;
    let events = r.events_until(named("channel_vacated", "news")).await;
    assert_eq!(events, vec![json!({"name": "channel_vacated", "channel": "news"})]);
}
