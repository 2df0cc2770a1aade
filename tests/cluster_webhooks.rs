//! Webhooks on a cluster: one webhook per cluster transition whichever node decided it, and
//! the vacate delay cancelled by a re-join on any node (neither `channel_vacated` nor the
//! following `channel_occupied` go out, as on one node).

mod common;
use common::hooks::receiver;
use common::*;
use herald::config::{Config, WebhookConfig};
use serde_json::{Value, json};

fn with_webhooks(mut c: Config, url: &str, vacate_delay_ms: u64) -> Config {
    use herald::protocol::WebhookKind::*;
    c.webhooks.batch_ms = 10;
    c.webhooks.vacate_delay_ms = vacate_delay_ms;
    let events = vec![ChannelOccupied, ChannelVacated, MemberAdded, MemberRemoved];
    c.apps[0].webhooks = vec![WebhookConfig { url: url.into(), events, ..WebhookConfig::default() }];
    c
}

fn brief(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["user_id"].as_str() {
            Some(u) => format!("{} {} {u}", e["name"].as_str().unwrap(), e["channel"].as_str().unwrap()),
            None => format!("{} {}", e["name"].as_str().unwrap(), e["channel"].as_str().unwrap()),
        })
        .collect()
}

on_redis_and_cluster! {
    async fn each_cluster_transition_is_one_webhook(redis: Backing) {
        let mut hooks = receiver(0, 200).await;
        let config = with_webhooks(redis.config(), &hooks.url, 0);
        let nodes = [TestServer::start(config.clone()).await, TestServer::start(config).await];
        let mut a = nodes[0].connect(KEY).await;
        let mut b = nodes[1].connect(KEY).await;
        a.join("presence-room", "u", json!(null)).await;
        b.join("presence-room", "u", json!(null)).await;
        a.close().await;
        a.expect_close().await;
        b.close().await;
        let events = hooks.events_until(|e| e["name"] == "channel_vacated").await;
        assert_eq!(
            brief(&events),
            [
                "channel_occupied presence-room",
                "member_added presence-room u",
                "member_removed presence-room u",
                "channel_vacated presence-room"
            ]
        );
    }
}

on_redis_and_cluster! {
    async fn a_rejoin_on_another_node_within_the_vacate_delay_cancels_both_webhooks(redis: Backing) {
        let mut hooks = receiver(0, 200).await;
        let config = with_webhooks(redis.config(), &hooks.url, 400);
        let nodes = [TestServer::start(config.clone()).await, TestServer::start(config).await];
        let mut first = nodes[0].connect(KEY).await;
        first.join("presence-room", "u", json!(null)).await;
        hooks.events_until(|e| e["name"] == "member_added").await;
        // The user reloads the page and lands on the other node.
        first.close().await;
        first.expect_close().await;
        let mut again = nodes[1].connect(KEY).await;
        again.join("presence-room", "u", json!(null)).await;
        // Once the delay ran out (the leaving node found both removals cancelled), a marker:
        // nothing about the room may come before it.
        let cancelled = "herald_webhook_events_total{app_id=\"test-app\",outcome=\"cancelled\"}";
        wait_series(&nodes[0], cancelled, 2.0).await;
        let mut marker = nodes[0].connect(KEY).await;
        marker.subscribe("marker").await;
        let events = hooks.events_until(|e| e["channel"] == "marker").await;
        assert_eq!(brief(&events), ["channel_occupied marker"]);
        // A real vacate still goes out, once, after the delay.
        again.close().await;
        let events = hooks.events_until(|e| e["name"] == "channel_vacated").await;
        assert_eq!(brief(&events), ["member_removed presence-room u", "channel_vacated presence-room"]);
    }
}
