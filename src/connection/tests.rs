//! The connection as its socket's drop guard, and the per-connection subscription cap, checked
//! against a real registry (no sockets: what a cancelled or panicked session leaves behind).

use std::sync::Arc;

use bytestring::ByteString;
use serde_json::{Value, json};
use tokio::time::{Duration, Instant};

use super::{ConnDeps, ConnSettings, Connection};
use crate::apps::App;
use crate::cluster::Cluster;
use crate::config::{AppConfig, WebhooksConfig};
use crate::metrics::Metrics;
use crate::protocol::{SocketId, signature};
use crate::registry::{Namespace, OutboundRx, Registry, outbound};
use crate::webhooks::{self, WebhookSettings};

struct World {
    registry: Registry,
    deps: ConnDeps,
    app: Arc<App>,
}

impl World {
    fn new(config: &AppConfig) -> Self {
        let registry = Registry::default();
        let metrics = Metrics::new();
        let debug = crate::debug::DebugTap::new(&crate::config::DebugConfig::default(), metrics.debug());
        let (webhooks, _dispatcher) =
            webhooks::start(WebhookSettings::from(&WebhooksConfig::default()), metrics.clone(), debug.clone());
        let deps = ConnDeps {
            cluster: Cluster::local(registry.clone()),
            metrics,
            webhooks,
            usage: crate::usage::UsageMeter::new(Cluster::local(registry.clone()).usage, registry.clone()),
            debug,
            settings: ConnSettings {
                subscription_error_event: true,
                cache_ttl: Duration::from_secs(60),
                vacate_delay: Duration::from_secs(3),
            },
        };
        Self { registry, deps, app: Arc::new(App::from(config)) }
    }

    fn ns(&self) -> Arc<Namespace> {
        self.registry.namespace(&self.app.id)
    }

    fn connect(&self, n: u64) -> (Connection, OutboundRx) {
        let (tx, rx) = outbound(SocketId::from_parts(n, n), 64);
        assert!(self.ns().add_socket(&tx, 0));
        (Connection::new(self.app.clone(), self.ns(), tx, self.deps.clone(), Instant::now()), rx)
    }
}

/// Waits for the drop guard's task to give the slots back (it frees the slot last).
async fn until_connections(ns: &Namespace, n: usize) {
    let released = async {
        while ns.connection_count() != n {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), released).await.expect("the drop guard released the connection");
}

async fn send(conn: &mut Connection, frame: Value) -> Vec<Value> {
    let mut replies: Vec<ByteString> = Vec::new();
    conn.handle_text(&frame.to_string(), Instant::now(), &mut replies).await;
    replies.iter().map(|r| serde_json::from_str(r).unwrap()).collect()
}

fn presence_subscribe(conn: &Connection, app: &App, channel: &str, user_id: &str) -> Value {
    let data = json!({ "user_id": user_id }).to_string();
    let signed = signature::presence_string(conn.socket_id().as_str(), channel, &data);
    let auth = signature::auth_token(&app.key, app.secret.expose(), &signed);
    json!({"event": "pusher:subscribe", "data": {"channel": channel, "auth": auth, "channel_data": data}})
}

fn signin(conn: &Connection, app: &App, user_id: &str) -> Value {
    let user_data = json!({ "id": user_id, "watchlist": ["other"] }).to_string();
    let signed = signature::user_string(conn.socket_id().as_str(), &user_data);
    let auth = signature::auth_token(&app.key, app.secret.expose(), &signed);
    json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})
}

fn queued(rx: &mut OutboundRx) -> Vec<Value> {
    let mut out = Vec::new();
    let mut batch = Vec::new();
    rx.drain_ready(&mut batch, 100);
    for f in batch {
        out.push(serde_json::from_str(&f).unwrap());
    }
    out
}

#[tokio::test]
async fn dropping_a_connection_releases_everything_it_held() {
    let world = World::new(&AppConfig::development());
    let (mut watcher, mut watcher_rx) = world.connect(1);
    let (mut conn, _rx) = world.connect(2);
    {
        let f = presence_subscribe(&watcher, &world.app, "presence-room", "w");
        send(&mut watcher, f).await
    };
    {
        let f = signin(&conn, &world.app, "u1");
        send(&mut conn, f).await
    };
    send(&mut conn, json!({"event": "pusher:subscribe", "data": {"channel": "news"}})).await;
    {
        let f = presence_subscribe(&conn, &world.app, "presence-room", "u1");
        send(&mut conn, f).await
    };
    let ns = world.ns();
    assert_eq!((ns.channel_count(), ns.connection_count()), (2, 2));
    assert!(ns.is_online("u1"));
    queued(&mut watcher_rx);

    // What a panicking or cancelled session task does: drop the state without `close`.
    drop(conn);
    until_connections(&ns, 1).await;

    assert_eq!(ns.channel_count(), 1, "only the watcher's channel is left");
    assert_eq!(ns.connection_count(), 1, "the app's connection slot is free again");
    assert!(!ns.is_online("u1"), "the user entry is gone");
    let room = ns.channel("presence-room").expect("still occupied by the watcher");
    assert_eq!((room.subscription_count(), room.user_count()), (1, 1));
    let events = queued(&mut watcher_rx);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "pusher_internal:member_removed");
    drop(watcher);
    until_connections(&ns, 0).await;
    assert_eq!((ns.channel_count(), ns.connection_count()), (0, 0));
}

#[tokio::test]
async fn close_and_drop_release_exactly_once() {
    let world = World::new(&AppConfig::development());
    let (mut conn, _rx) = world.connect(3);
    send(&mut conn, json!({"event": "pusher:subscribe", "data": {"channel": "a"}})).await;
    let metrics = conn.metrics().clone();
    conn.close().await;
    let ns = world.ns();
    assert_eq!((ns.channel_count(), ns.connection_count()), (0, 0));
    assert_eq!((metrics.connections.get(), metrics.disconnects.get()), (0, 1));
}

#[tokio::test]
async fn subscriptions_over_the_cap_are_refused_and_not_stored() {
    let mut config = AppConfig::development();
    config.limits.max_subscriptions_per_connection = 3;
    let world = World::new(&config);
    let (mut conn, rx) = world.connect(4);
    for c in ["a", "b", "c"] {
        let replies = send(&mut conn, json!({"event": "pusher:subscribe", "data": {"channel": c}})).await;
        assert_eq!(replies[0]["event"], "pusher_internal:subscription_succeeded", "{replies:?}");
    }
    let again = send(&mut conn, json!({"event": "pusher:subscribe", "data": {"channel": "a"}})).await;
    assert_eq!(again[0]["event"], "pusher_internal:subscription_succeeded", "a repeat is not a new channel");
    let refused = send(&mut conn, json!({"event": "pusher:subscribe", "data": {"channel": "d"}})).await;
    assert_eq!(refused[0]["event"], "pusher:error", "{refused:?}");
    assert_eq!(refused[0]["data"]["code"], 4100);
    assert_eq!(refused[1]["event"], "pusher:subscription_error");
    assert_eq!(refused[1]["data"]["type"], "LimitReached");
    assert!(world.ns().channel("d").is_none(), "nothing stored for the refused channel");
    send(&mut conn, json!({"event": "pusher:unsubscribe", "data": {"channel": "b"}})).await;
    let replies = send(&mut conn, json!({"event": "pusher:subscribe", "data": {"channel": "d"}})).await;
    assert_eq!(replies[0]["event"], "pusher_internal:subscription_succeeded", "room again after a leave");
    assert!(rx.is_empty(), "nothing was queued for this socket");
}

#[tokio::test]
async fn a_second_tab_reuses_the_encoded_roster() {
    let world = World::new(&AppConfig::development());
    let (mut a, _ra) = world.connect(5);
    let (mut b, _rb) = world.connect(6);
    let first = {
        let f = presence_subscribe(&a, &world.app, "presence-x", "same");
        send(&mut a, f).await
    };
    let second = {
        let f = presence_subscribe(&b, &world.app, "presence-x", "same");
        send(&mut b, f).await
    };
    assert_eq!(first, second, "one member, one roster");
    let room = world.ns().channel("presence-x").unwrap();
    assert_eq!((room.subscription_count(), room.user_count()), (2, 1));
}

#[tokio::test]
async fn a_join_racing_the_last_leave_lands_in_a_live_channel() {
    let world = World::new(&AppConfig::development());
    let ns = world.ns();
    for n in 0..200u64 {
        let (mut leaver, _l) = world.connect(1000 + n);
        send(&mut leaver, json!({"event": "pusher:subscribe", "data": {"channel": "flappy"}})).await;
        let (mut joiner, _j) = world.connect(5000 + n);
        let leave = tokio::spawn(async move { leaver.close().await });
        send(&mut joiner, json!({"event": "pusher:subscribe", "data": {"channel": "flappy"}})).await;
        leave.await.unwrap();
        let ch = ns.channel("flappy").expect("the joiner's channel is registered");
        assert_eq!(ch.subscription_count(), 1);
        joiner.close().await;
        assert!(ns.channel("flappy").is_none());
    }
}
