//! Node loss and Redis loss on a real Redis: a SIGKILLed node's members and subscriptions are
//! removed by one survivor, each change announced once; a node cut off from Redis for longer
//! than its lease asks its sockets to reconnect; a REST publish during an outage is a 503; a
//! Redis restarted empty gets every node's state back without any client action.

mod common;
use common::hooks::{Receiver, receiver};
use common::node::NodeProcess;
use common::proxy::Proxy;
use common::redis::RedisServer;
use common::*;
use herald::config::{Config, WebhookConfig};
use serde_json::{Value, json};

const ROOM: &str = "presence-room";

fn with_webhooks(mut c: Config, url: &str) -> Config {
    use herald::protocol::WebhookKind::*;
    c.webhooks.batch_ms = 10;
    c.webhooks.vacate_delay_ms = 0;
    let events = vec![ChannelOccupied, ChannelVacated, MemberAdded, MemberRemoved];
    c.apps[0].webhooks = vec![WebhookConfig { url: url.into(), events, ..WebhookConfig::default() }];
    c
}

/// Webhook events until one matches `until`, in order.
async fn events_until(hooks: &mut Receiver, until: impl Fn(&Value) -> bool) -> Vec<Value> {
    hooks.events_until(until).await
}

async fn users(node: &TestServer) -> Value {
    node.api().get(&format!("/channels/{ROOM}/users"), &[]).await.1
}

/// Polls a query until it answers `want` (a bounded wait for the cluster to converge).
async fn until_users(node: &TestServer, want: Value) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let got = users(node).await;
        if got == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "users stayed {got}, want {want}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

on_redis_and_cluster! {
    async fn a_killed_nodes_state_is_reaped_once_and_nothing_else(redis: Backing) {
        let mut hooks = receiver(0, 200).await;
        let config = with_webhooks(redis.config(), &hooks.url);
        let mut doomed = NodeProcess::spawn(&config).await;
        let survivors = [TestServer::start(config.clone()).await, TestServer::start(config).await];

        let mut watcher = survivors[0].connect(KEY).await;
        watcher.join(ROOM, "w", json!(null)).await;
        let mut alice = doomed.server.connect(KEY).await;
        alice.join(ROOM, "alice", json!(null)).await;
        let mut bob_there = doomed.server.connect(KEY).await;
        bob_there.join(ROOM, "bob", json!(null)).await;
        let mut bob_here = survivors[1].connect(KEY).await;
        bob_here.join(ROOM, "bob", json!(null)).await;
        let mut lonely = doomed.server.connect(KEY).await;
        lonely.subscribe("only-there").await;
        for name in ["alice", "bob"] {
            let added = watcher.expect("pusher_internal:member_added").await;
            assert_eq!(data(&added)["user_id"], name);
        }
        events_until(&mut hooks, |e| e["name"] == "channel_occupied" && e["channel"] == "only-there").await;

        doomed.kill().await;

        // Within the lease: Alice is gone (once), Bob stays (his other tab is alive).
        let removed = watcher.expect("pusher_internal:member_removed").await;
        assert_eq!(data(&removed)["user_id"], "alice");
        // The reaper goes channel by channel, in no particular order: collect until both are in.
        let mut seen = Vec::new();
        let is_vacate = |e: &Value| e["name"] == "channel_vacated" && e["channel"] == "only-there";
        let is_removal = |e: &Value| e["name"] == "member_removed";
        while !(seen.iter().any(is_vacate) && seen.iter().any(is_removal)) {
            seen.extend(hooks.next().await.events());
        }
        let removals: Vec<&Value> = seen.iter().filter(|e| is_removal(e)).collect();
        assert_eq!(removals.len(), 1, "{seen:?}");
        assert_eq!(removals[0]["user_id"], "alice");
        assert_eq!(seen.iter().filter(|e| is_vacate(e)).count(), 1, "{seen:?}");
        until_users(&survivors[1], json!({"users": [{"id": "bob"}, {"id": "w"}]})).await;
        let (_, list) = survivors[0].api().get("/channels", &[]).await;
        assert_eq!(list, json!({"channels": {ROOM: {}}}));

        // Exactly one survivor reaped it; a marker shows no duplicate webhook was still queued.
        let mut marker = survivors[1].connect(KEY).await;
        marker.subscribe("marker").await;
        let after = events_until(&mut hooks, |e| e["channel"] == "marker").await;
        assert!(after.iter().all(|e| e["channel"] == "marker"), "late duplicates: {after:?}");
        let mut reaped = 0.0;
        for s in &survivors {
            reaped += unlabelled(&s.metrics().await, "herald_cluster_reaped_nodes_total");
        }
        assert_eq!(reaped, 1.0);
        watcher.expect_quiet().await;
    }
}

#[tokio::test]
async fn redis_loss_is_a_503_and_an_empty_restart_is_repaired() {
    let mut redis = RedisServer::start().await;
    let nodes = cluster(&redis.url(), 2).await;
    let mut alice = nodes[0].connect(KEY).await;
    alice.join(ROOM, "alice", json!(null)).await;
    let mut bob = nodes[1].connect(KEY).await;
    bob.join(ROOM, "bob", json!(null)).await;
    let mut carol = nodes[1].connect(KEY).await;
    carol.join(ROOM, "carol", json!(null)).await;
    for name in ["bob", "carol"] {
        assert_eq!(data(&alice.expect("pusher_internal:member_added").await)["user_id"], name);
    }
    assert_eq!(data(&bob.expect("pusher_internal:member_added").await)["user_id"], "carol");
    let mut reader = nodes[0].connect(KEY).await;
    reader.subscribe("news").await;

    redis.kill();
    let (status, _) = nodes[1].api().trigger("news", "lost", "x").await;
    assert_eq!(status, 503, "never a 2xx for an event that was not published");
    let text = nodes[1].metrics().await;
    assert!(series(&text, "herald_cluster_failures_total", "operation=\"publish\"") >= 1.0);
    // A blip shorter than the lease: the node stays in the Service, and says the bus is down.
    let ready = reqwest::get(format!("{}/ready", nodes[1].metrics_base)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    while unlabelled(&nodes[1].metrics().await, "herald_bus_up") != 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "herald_bus_up stayed 1 with Redis down");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Carol leaves while Redis is away: her leave cannot be recorded now.
    carol.close().await;
    carol.expect_close().await;

    redis.restart_empty().await;
    // Every node registers what it holds again: rosters and counts are right, with no client
    // reconnecting, and delivery works again.
    until_users(&nodes[1], json!({"users": [{"id": "alice"}, {"id": "bob"}]})).await;
    // ...and the clients that saw Carol join (on both nodes) see her go, once.
    for c in [&mut alice, &mut bob] {
        let gone = c.expect_within_lease("pusher_internal:member_removed").await;
        assert_eq!(data(&gone)["user_id"], "carol");
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (status, _) = nodes[1].api().trigger("news", "back", "y").await;
        if status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "publishing never recovered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(reader.expect("back").await["data"], "y");
    let (_, news) = nodes[1].api().get("/channels/news", &[("info", "subscription_count")]).await;
    assert_eq!(news, json!({"occupied": true, "subscription_count": 1}));
    for c in [&mut alice, &mut bob] {
        c.expect_quiet().await;
    }
}

#[tokio::test]
async fn a_node_cut_off_longer_than_its_lease_fences_itself() {
    let redis = RedisServer::start().await;
    let proxy = Proxy::start(redis.port).await;
    let cut_off = TestServer::start(cluster_config(&proxy.url())).await;
    let healthy = TestServer::start(cluster_config(&redis.url())).await;
    let mut watcher = healthy.connect(KEY).await;
    watcher.join(ROOM, "w", json!(null)).await;
    let mut alice = cut_off.connect(KEY).await;
    alice.join(ROOM, "alice", json!(null)).await;
    watcher.expect("pusher_internal:member_added").await;

    proxy.cut();
    // The others reap it; it asks its own sockets to reconnect (4200) rather than serve state
    // that is gone, and says it is not ready.
    let removed = watcher.expect_within_lease("pusher_internal:member_removed").await;
    assert_eq!(data(&removed)["user_id"], "alice");
    let closed = alice.expect_close_within(std::time::Duration::from_secs(10)).await;
    assert_eq!(closed, Some(4200));
    let ready = reqwest::get(format!("{}/ready", cut_off.metrics_base)).await.unwrap();
    assert_eq!(ready.status(), 503);

    proxy.restore();
    // Once Redis answers again the node serves again, with a clean slate.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while reqwest::get(format!("{}/ready", cut_off.metrics_base)).await.unwrap().status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut again = cut_off.connect(KEY).await;
    let reply = again.join(ROOM, "alice", json!(null)).await;
    assert_eq!(data(&reply)["presence"]["count"], 2);
    watcher.expect("pusher_internal:member_added").await;
}
