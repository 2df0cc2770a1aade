//! Several Herald nodes on one real Redis (and, each test again, on a real Redis Cluster): delivery to every node exactly once, in publish
//! order across nodes, `socket_id` exclusion across nodes, client events, user channels,
//! and interest routing (a node without subscribers receives nothing).

mod common;
use common::*;
use serde_json::json;

on_redis_and_cluster! {
    async fn a_publish_on_any_node_reaches_every_subscriber_once_in_order(redis: Backing) {
        let nodes = redis.nodes(3).await;
        let mut subs = Vec::new();
        for node in &nodes {
            let mut c = node.connect(KEY).await;
            c.subscribe("orders").await;
            subs.push(c);
        }
        // Consecutive publishes alternate between the nodes; every subscriber sees 0..30 in order.
        for i in 0..30 {
            let (status, _) = nodes[i % 3].api().trigger("orders", "tick", &i.to_string()).await;
            assert_eq!(status, 200);
        }
        for c in &mut subs {
            for i in 0..30 {
                let ev = c.expect("tick").await;
                assert_eq!(ev["data"], json!(i.to_string()), "order at a subscriber");
            }
            c.expect_quiet().await;
        }
    }
}

on_redis_and_cluster! {
    async fn socket_id_exclusion_and_client_events_cross_nodes(redis: Backing) {
        let nodes = redis.nodes(2).await;
        let mut a = nodes[0].connect(KEY).await;
        let mut b = nodes[1].connect(KEY).await;
        a.subscribe("private-chat").await;
        b.subscribe("private-chat").await;
        // toOthers(): the sender's socket (on node 1) is left out by a trigger on node 0.
        let body = json!({"name": "said", "channel": "private-chat", "data": "hi", "socket_id": b.socket_id});
        assert_eq!(nodes[0].api().post("/events", &body).await.0, 200);
        assert_eq!(a.expect("said").await["data"], "hi");
        // A whisper from node 1 reaches node 0's subscriber, never its sender.
        b.client_event("private-chat", "client-typing", json!({"who": "b"})).await;
        assert_eq!(a.expect("client-typing").await["data"], json!({"who": "b"}));
        b.expect_quiet().await;
    }
}

on_redis_and_cluster! {
    async fn a_node_without_subscribers_receives_nothing_from_the_bus(redis: Backing) {
        let nodes = redis.nodes(3).await;
        let mut c = nodes[1].connect(KEY).await;
        c.subscribe("news").await;
        for _ in 0..20 {
            assert_eq!(nodes[0].api().trigger("news", "item", "x").await.0, 200);
        }
        for _ in 0..20 {
            c.expect("item").await;
        }
        let idle = nodes[2].metrics().await;
        assert_eq!(unlabelled(&idle, "herald_bus_received_total"), 0.0, "node 2 has no subscriber");
        assert_eq!(unlabelled(&idle, "herald_bus_subscriptions"), 0.0);
        let publisher = nodes[0].metrics().await;
        assert_eq!(unlabelled(&publisher, "herald_bus_received_total"), 0.0, "node 0 publishes, holds no subscriber");
        assert!(unlabelled(&nodes[1].metrics().await, "herald_bus_received_total") >= 20.0);
    }
}

on_redis_and_cluster! {
    async fn user_channels_and_terminations_cross_nodes(redis: Backing) {
        let nodes = redis.nodes(2).await;
        let mut tab1 = nodes[0].connect(KEY).await;
        let mut tab2 = nodes[1].connect(KEY).await;
        for tab in [&mut tab1, &mut tab2] {
            tab.signin(r#"{"id":"42"}"#).await;
        }
        let body = json!({"name": "notice", "channel": "#server-to-user-42", "data": "n"});
        assert_eq!(nodes[1].api().post("/events", &body).await.0, 200);
        assert_eq!(tab1.expect("notice").await["data"], "n");
        assert_eq!(tab2.expect("notice").await["data"], "n");
        let (status, _) = nodes[0].api().post("/users/42/terminate_connections", &json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(tab1.expect_close().await, Some(4009));
        assert_eq!(tab2.expect_close().await, Some(4009));
    }
}
