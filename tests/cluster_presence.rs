//! Presence, counts and queries across nodes on one real Redis: one roster for the cluster,
//! `member_added` on a user's first socket anywhere and `member_removed` on its last, never
//! both a roster entry and an event, `max_presence_members` cluster-wide, and the REST queries
//! answering for the cluster from any node.

mod common;
use common::*;
use serde_json::{Value, json};

const ROOM: &str = "presence-room";

fn ids(reply: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        data(reply)["presence"]["ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

on_redis_and_cluster! {
    async fn the_roster_and_member_events_are_the_clusters(redis: Backing) {
        let nodes = redis.nodes(2).await;
        let mut alice = nodes[0].connect(KEY).await;
        assert_eq!(ids(&alice.join(ROOM, "alice", json!({"n": 1})).await), ["alice"]);

        // Bob joins on the other node: he sees Alice in his roster, Alice gets one member_added.
        let mut bob = nodes[1].connect(KEY).await;
        let reply = bob.join(ROOM, "bob", json!({"n": 2})).await;
        assert_eq!(ids(&reply), ["alice", "bob"]);
        assert_eq!(data(&reply)["presence"]["hash"]["alice"], json!({"n": 1}));
        let added = alice.expect("pusher_internal:member_added").await;
        assert_eq!(data(&added), json!({"user_id": "bob", "user_info": {"n": 2}}));
        bob.expect_quiet().await;

        // A second tab of Bob's, on node 0: no event, and the roster is the same.
        let mut bob2 = nodes[0].connect(KEY).await;
        assert_eq!(ids(&bob2.join(ROOM, "bob", json!({"n": 3})).await), ["alice", "bob"]);
        alice.expect_quiet().await;
        // Each node's gauges count what it holds: node 0 has Alice and Bob, node 1 Bob.
        for (node, members) in [(&nodes[0], 2.0), (&nodes[1], 1.0)] {
            assert_eq!(node.metric("herald_presence_members").await, members);
            assert_eq!(node.metric("herald_channels").await, 1.0);
        }

        // The users query counts users, not sockets, from either node.
        for node in &nodes {
            let (status, body) = node.api().get(&format!("/channels/{ROOM}/users"), &[]).await;
            assert_eq!((status, body), (200, json!({"users": [{"id": "alice"}, {"id": "bob"}]})));
            let (_, info) =
                node.api().get(&format!("/channels/{ROOM}"), &[("info", "user_count,subscription_count")]).await;
            assert_eq!(info, json!({"occupied": true, "user_count": 2, "subscription_count": 3}));
        }

        // Bob's first tab leaves: he is still there. His last tab leaves: member_removed, once.
        bob.close().await;
        bob.expect_close().await;
        alice.expect_quiet().await;
        bob2.close().await;
        let removed = alice.expect("pusher_internal:member_removed").await;
        assert_eq!(data(&removed), json!({"user_id": "bob"}));
        alice.expect_quiet().await;
    }
}

on_redis_and_cluster! {
    async fn joiners_racing_on_two_nodes_see_each_member_once(redis: Backing) {
        let nodes = redis.nodes(2).await;
        for round in 0..20 {
            let room = format!("presence-race-{round}");
            let mut a = nodes[0].connect(KEY).await;
            let mut b = nodes[1].connect(KEY).await;
            let (ra, rb) = tokio::join!(a.join(&room, "a", json!(null)), b.join(&room, "b", json!(null)));
            // Each learns of the other exactly once: in its roster, or as one member_added.
            for (reply, me, other, client) in [(&ra, "a", "b", &mut a), (&rb, "b", "a", &mut b)] {
                let in_roster = ids(reply).contains(&other.to_owned());
                assert!(ids(reply).contains(&me.to_owned()));
                let event = client.next_within(std::time::Duration::from_millis(300)).await;
                match event {
                    Some(Next::Event(e)) if e["event"] == "pusher_internal:member_added" => {
                        assert!(!in_roster, "round {round}: {me} saw {other} in its roster and as an event");
                        assert_eq!(data(&e)["user_id"], other);
                    }
                    None => assert!(in_roster, "round {round}: {me} never learned of {other}"),
                    Some(other_frame) => panic!("unexpected {other_frame:?}"),
                }
            }
        }
    }
}

on_redis_and_cluster! {
    async fn max_presence_members_is_cluster_wide(redis: Backing) {
        let mut config = redis.config();
        config.apps[0].limits.max_presence_members = 2;
        let nodes = [TestServer::start(config.clone()).await, TestServer::start(config).await];
        let mut a = nodes[0].connect(KEY).await;
        a.join(ROOM, "a", json!(null)).await;
        let mut b = nodes[1].connect(KEY).await;
        b.join(ROOM, "b", json!(null)).await;
        let mut c = nodes[1].connect(KEY).await;
        let data = json!({"user_id": "c"}).to_string();
        let auth = c.presence_auth(ROOM, &data);
        c.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel_data": data, "channel": ROOM}})).await;
        let refused = c.expect("pusher:subscription_error").await;
        assert_eq!(refused["data"]["type"], "LimitReached");
        // An existing member's second socket is not a new member.
        let mut a2 = nodes[1].connect(KEY).await;
        a2.join(ROOM, "a", json!(null)).await;
    }
}

on_redis_and_cluster! {
    async fn channel_lists_and_counts_answer_for_the_cluster(redis: Backing) {
        let nodes = redis.nodes(3).await;
        let mut subs = Vec::new();
        for (i, node) in nodes.iter().enumerate().take(2) {
            let mut c = node.connect(KEY).await;
            c.subscribe("news").await;
            c.subscribe(&format!("only-on-{i}")).await;
            subs.push(c);
        }
        let (status, body) = nodes[2].api().get("/channels", &[("info", "subscription_count")]).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"channels": {
                "news": {"subscription_count": 2},
                "only-on-0": {"subscription_count": 1},
                "only-on-1": {"subscription_count": 1},
            }})
        );
        let (_, filtered) = nodes[2].api().get("/channels", &[("filter_by_prefix", "only-")]).await;
        assert_eq!(filtered["channels"].as_object().unwrap().len(), 2);
        subs[0].close().await;
        subs[0].expect_close().await;
        let (_, body) = nodes[1].api().get("/channels/news", &[("info", "subscription_count")]).await;
        assert_eq!(body, json!({"occupied": true, "subscription_count": 1}));
        let (_, gone) = nodes[1].api().get("/channels/only-on-0", &[]).await;
        assert_eq!(gone, json!({"occupied": false}));
    }
}

on_redis_and_cluster! {
    async fn cache_channels_serve_the_last_event_on_every_node(redis: Backing) {
        let nodes = redis.nodes(2).await;
        let mut first = nodes[0].connect(KEY).await;
        first.subscribe("cache-scores").await;
        first.expect("pusher:cache_miss").await;
        assert_eq!(nodes[0].api().trigger("cache-scores", "score", "3-1").await.0, 200);
        first.expect("score").await;
        let mut late = nodes[1].connect(KEY).await;
        late.subscribe("cache-scores").await;
        assert_eq!(late.expect("score").await["data"], "3-1");
        let (_, body) = nodes[1].api().get("/channels/cache-scores", &[("info", "cache")]).await;
        assert_eq!(body["cache"]["data"], "3-1");
    }
}

on_redis_and_cluster! {
    async fn the_connection_quota_is_cluster_wide(redis: Backing) {
        let mut config = redis.config();
        config.apps[0].max_connections = 2;
        let nodes = [TestServer::start(config.clone()).await, TestServer::start(config).await];
        let _a = nodes[0].connect(KEY).await;
        let mut b = nodes[1].connect(KEY).await;
        let mut c = nodes[0].connect_raw(KEY, "protocol=7").await;
        c.expect_error(Some(4004)).await;
        // A slot given back on one node is free on the other (the close is echoed after it).
        b.close().await;
        b.expect_close().await;
        let _d = nodes[0].connect(KEY).await;
    }
}

on_redis_and_cluster! {
    async fn watchlists_see_users_online_anywhere(redis: Backing) {
        let nodes = redis.nodes(2).await;
        let mut watcher = nodes[0].connect(KEY).await;
        watcher.signin(r#"{"id":"w","watchlist":["u"]}"#).await;
        let events = |ev: Value| data(&ev)["events"].clone();
        let initial = watcher.expect("pusher_internal:watchlist_events").await;
        assert_eq!(events(initial), json!([{"name": "offline", "user_ids": ["u"]}]));
        let mut u = nodes[1].connect(KEY).await;
        u.signin(r#"{"id":"u"}"#).await;
        let online = watcher.expect("pusher_internal:watchlist_events").await;
        assert_eq!(events(online), json!([{"name": "online", "user_ids": ["u"]}]));
        u.close().await;
        let offline = watcher.expect("pusher_internal:watchlist_events").await;
        assert_eq!(events(offline), json!([{"name": "offline", "user_ids": ["u"]}]));
    }
}
