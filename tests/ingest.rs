//! Laravel's `redis` broadcaster as an event source: what Laravel PUBLISHes (its own
//! `RedisBroadcaster`, through Debian's Illuminate 8 and predis, and hand-made messages for the
//! edge cases) reaches pusher-js-style subscribers byte for byte, `toOthers()` leaves the
//! sender out, bad messages are counted and harm nothing, and a cluster delivers once.

mod common;
use common::redis::RedisServer;
use common::*;
use herald::config::Config;
use serde_json::json;

fn with_ingest(mut c: Config, url: &str) -> Config {
    c.ingest.enabled = true;
    c.ingest.redis_url = url.into();
    c
}

/// Publishes as Laravel does, with its real `RedisBroadcaster` (php, Debian's Illuminate 8).
async fn laravel_broadcast(redis: &RedisServer, event: &str, socket: Option<&str>, channels: &[&str], payload: &str) {
    use tokio::io::AsyncWriteExt;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/laravel/broadcast.php");
    let mut child = tokio::process::Command::new("php")
        .arg(script)
        .arg(redis.port.to_string())
        .arg(event)
        .arg(socket.unwrap_or("-"))
        .args(channels)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("php runs (apt-get install php-cli php-illuminate-broadcasting php-illuminate-redis php-predis)");
    child.stdin.take().unwrap().write_all(payload.as_bytes()).await.unwrap();
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("php in time").unwrap();
    assert!(status.success(), "the Laravel broadcaster failed");
}

async fn publish(redis: &RedisServer, channel: &str, payload: &str) {
    let reply = redis.command(&["PUBLISH", channel, payload]).await;
    assert!(reply.starts_with(':'), "{reply}");
}

#[tokio::test]
async fn laravels_redis_broadcaster_reaches_subscribers_and_to_others_leaves_the_sender_out() {
    let redis = RedisServer::start().await;
    let s = TestServer::start(with_ingest(config(), &redis.url())).await;
    let mut sender = s.connect(KEY).await;
    let mut other = s.connect(KEY).await;
    for c in [&mut sender, &mut other] {
        c.subscribe("private-orders.1").await;
        c.subscribe("news").await;
    }
    // An event class name, data exactly as Laravel encoded it (its `socket` key included).
    let payload = r#"{"order":{"id":1,"total":9.5},"note":"a\/b"}"#;
    laravel_broadcast(&redis, "App\\Events\\OrderShipped", None, &["private-orders.1"], payload).await;
    for c in [&mut sender, &mut other] {
        let ev = c.expect("App\\Events\\OrderShipped").await;
        assert_eq!(ev["channel"], "private-orders.1");
        assert_eq!(ev["data"], r#"{"order":{"id":1,"total":9.5},"note":"a\/b","socket":null}"#);
    }
    // broadcastAs() name, toOthers() from the sender's request, two channels at once.
    let socket = sender.socket_id.clone();
    laravel_broadcast(&redis, "order.updated", Some(&socket), &["private-orders.1", "news"], r#"{"id":2}"#).await;
    for channel in ["private-orders.1", "news"] {
        let ev = other.expect("order.updated").await;
        assert_eq!(ev["channel"], channel);
        assert_eq!(ev["data"], format!(r#"{{"id":2,"socket":"{socket}"}}"#));
    }
    // The sender got neither: the next thing it sees is a later broadcast for everyone.
    laravel_broadcast(&redis, "marker", None, &["news"], "{}").await;
    assert_eq!(sender.expect_next("marker").await["channel"], "news");
}

#[tokio::test]
async fn bad_messages_are_counted_and_harm_nothing() {
    let redis = RedisServer::start().await;
    let s = TestServer::start(with_ingest(config(), &redis.url())).await;
    let mut c = s.connect(KEY).await;
    c.subscribe("news").await;
    publish(&redis, "laravel_database_news", "not json").await;
    publish(&redis, "laravel_database_news", r#"{"data":{}}"#).await;
    let big = format!(r#"{{"event":"e","data":{{"x":"{}"}}}}"#, "a".repeat(20_000));
    publish(&redis, "laravel_database_news", &big).await;
    publish(&redis, "some-other-apps-channel!", "{}").await;
    // An unprefixed name is taken as it is (phpredis cluster setups publish bare names).
    publish(&redis, "news", r#"{"event":"still-here","data":{"ok":true},"socket":null}"#).await;
    let ev = c.expect_next("still-here").await;
    assert_eq!(ev["data"], r#"{"ok":true}"#);
    let text = s.metrics().await;
    let outcome = |o: &str| series(&text, "herald_ingest_messages_total", &format!("outcome=\"{o}\""));
    assert_eq!((outcome("malformed"), outcome("refused"), outcome("foreign")), (2.0, 1.0, 1.0));
    assert_eq!(outcome("delivered"), 1.0);
}

#[tokio::test]
async fn on_a_cluster_each_broadcast_arrives_once() {
    let redis = RedisServer::start().await;
    let config = with_ingest(cluster_config(&redis.url()), "");
    let nodes = [TestServer::start(config.clone()).await, TestServer::start(config).await];
    let mut subs = Vec::new();
    for node in &nodes {
        let mut c = node.connect(KEY).await;
        c.subscribe("news").await;
        subs.push(c);
    }
    laravel_broadcast(&redis, "App\\Events\\Posted", None, &["news"], r#"{"n":1}"#).await;
    laravel_broadcast(&redis, "App\\Events\\Posted", None, &["news"], r#"{"n":2}"#).await;
    // A REST marker through the bus: nothing may come between the two broadcasts and it.
    assert_eq!(nodes[0].api().trigger("news", "marker", "m").await.0, 200);
    for c in &mut subs {
        for n in [1, 2] {
            let ev = c.expect_next("App\\Events\\Posted").await;
            assert_eq!(ev["data"], json!({"n": n, "socket": null}).to_string());
        }
        c.expect_next("marker").await;
    }
}
