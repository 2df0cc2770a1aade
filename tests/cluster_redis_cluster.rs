//! The `redis_cluster` driver on a real three-master Redis Cluster: hash-tagged keys (each
//! script on one slot), sharded pub/sub, the same guarantees as on one Redis.

mod common;
use common::node::NodeProcess;
use common::redis::RedisClusterServers;
use common::*;
use herald::config::{AdapterDriver, Config};
use serde_json::json;

fn sharded(redis: &RedisClusterServers) -> Config {
    let mut c = cluster_config(&redis.url());
    c.adapter.driver = AdapterDriver::RedisCluster;
    c
}

#[tokio::test]
async fn delivery_presence_queries_and_node_loss_on_a_redis_cluster() {
    let redis = RedisClusterServers::start().await;
    let config = sharded(&redis);
    let mut doomed = NodeProcess::spawn(&config).await;
    let nodes = [TestServer::start(config.clone()).await, TestServer::start(config).await];

    // Channels spread over the shards; each channel's publishes alternate between the nodes
    // and arrive in order (order is per channel: different shards are different streams).
    let channels: Vec<String> = (0..6).map(|i| format!("orders-{i}")).collect();
    let mut subs = Vec::new();
    for node in &nodes {
        let mut c = node.connect(KEY).await;
        for ch in &channels {
            c.subscribe(ch).await;
        }
        subs.push(c);
    }
    for i in 0..24 {
        let ch = &channels[i % channels.len()];
        assert_eq!(nodes[(i / channels.len()) % 2].api().trigger(ch, "tick", &i.to_string()).await.0, 200);
    }
    for c in &mut subs {
        let mut last = std::collections::HashMap::new();
        for _ in 0..24 {
            let ev = c.expect("tick").await;
            let n: usize = ev["data"].as_str().unwrap().parse().unwrap();
            let channel = ev["channel"].as_str().unwrap().to_owned();
            assert_eq!(channels[n % channels.len()], channel);
            if let Some(prev) = last.insert(channel, n) {
                assert!(prev < n, "out of order on one channel: {prev} then {n}");
            }
        }
    }

    // Presence across nodes, and the dead node's member removed by a survivor.
    let mut watcher = nodes[0].connect(KEY).await;
    watcher.join("presence-room", "w", json!(null)).await;
    let mut alice = doomed.server.connect(KEY).await;
    let reply = alice.join("presence-room", "alice", json!({"n": 1})).await;
    assert_eq!(data(&reply)["presence"]["count"], 2);
    assert_eq!(data(&watcher.expect("pusher_internal:member_added").await)["user_id"], "alice");
    let (_, users) = nodes[1].api().get("/channels/presence-room/users", &[]).await;
    assert_eq!(users, json!({"users": [{"id": "alice"}, {"id": "w"}]}));
    let (_, list) = nodes[1].api().get("/channels", &[("filter_by_prefix", "orders-")]).await;
    assert_eq!(list["channels"].as_object().unwrap().len(), 6);

    doomed.kill().await;
    let removed = watcher.expect_within_lease("pusher_internal:member_removed").await;
    assert_eq!(data(&removed)["user_id"], "alice");
}

#[tokio::test]
async fn a_redis_cluster_lost_and_recreated_empty_is_repaired() {
    let mut redis = RedisClusterServers::start().await;
    let mut config = sharded(&redis);
    // Re-creating a cluster takes seconds: a lease longer than the outage, so the nodes keep
    // their sockets (a longer outage fences them, as tests/cluster_failures.rs shows).
    config.adapter.lease_ms = 30_000;
    let nodes = [TestServer::start(config.clone()).await, TestServer::start(config).await];
    let mut alice = nodes[0].connect(KEY).await;
    alice.join("presence-room", "alice", json!(null)).await;
    let mut bob = nodes[1].connect(KEY).await;
    bob.join("presence-room", "bob", json!(null)).await;
    alice.expect("pusher_internal:member_added").await;
    let mut reader = nodes[0].connect(KEY).await;
    reader.subscribe("news").await;

    redis.kill();
    let (status, _) = nodes[1].api().trigger("news", "lost", "x").await;
    assert_eq!(status, 503, "never a 2xx for an event that was not published");

    redis.restart_empty().await;
    // Each node re-subscribes on the new shards and registers what it holds.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, users) = nodes[1].api().get("/channels/presence-room/users", &[]).await;
        let (status, _) = nodes[1].api().trigger("news", "back", "y").await;
        if users == json!({"users": [{"id": "alice"}, {"id": "bob"}]}) && status == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never repaired: users {users}, publish {status}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reader.expect("back").await["data"], "y");
    for c in [&mut alice, &mut bob] {
        c.expect_quiet().await;
    }
}
