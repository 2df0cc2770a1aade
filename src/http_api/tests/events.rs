//! Triggering: delivery bytes, exclusion, user channels, cache, `info` replies, batches.

use actix_web::http::StatusCode;
use serde_json::json;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytestring::ByteString;
use tokio::time::Instant;

use super::{app, call, frames, get, harness, post, subscriber};
use crate::cluster::{Bus, ClusterError, LocalCluster};
use crate::protocol::SocketId;
use crate::protocol::server_event::WatchlistStatus;
use crate::registry::Registry;

#[actix_web::test]
async fn channel_and_channels_reach_subscribers_byte_exact() {
    let h = harness();
    let app = app!(h.deps);
    let mut a = subscriber(&h, (1, 1), &["private-orders.1"], None);
    let mut b = subscriber(&h, (2, 2), &["news", "sport"], None);

    // pusher-http-php: one channel as `channel`, `/` escaped as `\/` in data.
    let body = r#"{"name":"App\\Events\\OrderShipped","data":"{\"url\":\"a\\/b\"}","channel":"private-orders.1"}"#;
    assert_eq!(call(&app, post("/events", body).to_request()).await, (StatusCode::OK, json!({})));
    let want = r#"{"event":"App\\Events\\OrderShipped","channel":"private-orders.1","data":"{\"url\":\"a\\/b\"}"}"#;
    assert_eq!(frames(&mut a), vec![want]);

    // pusher-http-node: `channels`; a duplicate is delivered once.
    let body = r#"{"name":"my-event","data":"{\"message\":\"hello\"}","channels":["news","sport","news"]}"#;
    assert_eq!(call(&app, post("/events", body).to_request()).await, (StatusCode::OK, json!({})));
    assert_eq!(
        frames(&mut b),
        vec![
            r#"{"event":"my-event","channel":"news","data":"{\"message\":\"hello\"}"}"#,
            r#"{"event":"my-event","channel":"sport","data":"{\"message\":\"hello\"}"}"#,
        ]
    );
    assert!(frames(&mut a).is_empty());

    // Non-string data is relayed as its JSON text.
    let body = r#"{"name":"e","data":{"k": 1},"channel":"news"}"#;
    assert_eq!(call(&app, post("/events", body).to_request()).await.0, StatusCode::OK);
    assert_eq!(frames(&mut b), vec![r#"{"event":"e","channel":"news","data":"{\"k\": 1}"}"#]);
}

#[actix_web::test]
async fn socket_id_is_excluded() {
    let h = harness();
    let app = app!(h.deps);
    let mut sender = subscriber(&h, (1, 1), &["news"], None);
    let mut other = subscriber(&h, (2, 2), &["news"], None);
    let body = r#"{"name":"e","data":"d","channel":"news","socket_id":"1.1"}"#;
    assert_eq!(call(&app, post("/events", body).to_request()).await.0, StatusCode::OK);
    assert!(frames(&mut sender).is_empty());
    assert_eq!(frames(&mut other).len(), 1);
    // An unknown (well-formed) socket id excludes nobody.
    let body = r#"{"name":"e","data":"d","channel":"news","socket_id":"9.9"}"#;
    assert_eq!(call(&app, post("/events", body).to_request()).await.0, StatusCode::OK);
    assert_eq!((frames(&mut sender).len(), frames(&mut other).len()), (1, 1));
}

#[actix_web::test]
async fn user_channel_goes_to_signed_in_sockets() {
    let h = harness();
    let app = app!(h.deps);
    let mut rx = subscriber(&h, (5, 5), &[], None);
    let sid = SocketId::from_parts(5, 5);
    h.registry.namespace(super::ID).sign_in("42", &sid);
    let body = r##"{"name":"notice","data":"hi","channel":"#server-to-user-42"}"##;
    assert_eq!(call(&app, post("/events", body).to_request()).await.0, StatusCode::OK);
    assert_eq!(frames(&mut rx), vec![r##"{"event":"notice","channel":"#server-to-user-42","data":"hi"}"##]);
}

#[actix_web::test]
async fn user_channel_honours_socket_id() {
    let h = harness();
    let app = app!(h.deps);
    let mut sender = subscriber(&h, (5, 5), &[], None);
    let mut other_tab = subscriber(&h, (6, 6), &[], None);
    let ns = h.registry.namespace(super::ID);
    ns.sign_in("42", &SocketId::from_parts(5, 5));
    ns.sign_in("42", &SocketId::from_parts(6, 6));
    let body = r##"{"name":"notice","data":"hi","channel":"#server-to-user-42","socket_id":"5.5"}"##;
    assert_eq!(call(&app, post("/events", body).to_request()).await.0, StatusCode::OK);
    assert!(frames(&mut sender).is_empty(), "the sender's own socket is left out");
    assert_eq!(frames(&mut other_tab).len(), 1);
}

/// A bus that checks, at the moment of each fan-out, that the cache already holds the event
/// being fanned out: a subscriber joining between the two would otherwise get the older event.
struct CacheFirst {
    inner: LocalCluster,
    registry: Registry,
    checked: AtomicUsize,
}

#[async_trait::async_trait]
impl Bus for CacheFirst {
    async fn publish(
        &self,
        app: &str,
        channel: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError> {
        let cached = self.registry.cache().get(app, channel, Instant::now()).expect("cached before the fan-out");
        assert!(frame.contains(&format!("\"data\":{}", serde_json::to_string(&cached.data).unwrap())), "{frame}");
        self.checked.fetch_add(1, Ordering::Relaxed);
        self.inner.publish(app, channel, frame, except).await
    }
    fn publish_queued(
        &self,
        app: &str,
        channel: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError> {
        self.inner.publish_queued(app, channel, frame, except)
    }
    fn deliver_here(&self, app: &str, channel: &str, frame: &ByteString, except: Option<&SocketId>) {
        self.inner.deliver_here(app, channel, frame, except);
    }
    async fn send_to_user(
        &self,
        app: &str,
        user: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError> {
        self.inner.send_to_user(app, user, frame, except).await
    }
    async fn terminate_user(&self, app: &str, user: &str) -> Result<(), ClusterError> {
        self.inner.terminate_user(app, user).await
    }
    async fn watchlist_changed(&self, app: &str, user: &str, status: WatchlistStatus) -> Result<(), ClusterError> {
        self.inner.watchlist_changed(app, user, status).await
    }
}

#[actix_web::test]
async fn cache_channels_store_the_event_before_fanning_it_out() {
    let mut h = harness();
    let probe = Arc::new(CacheFirst {
        inner: LocalCluster::new(h.registry.clone()),
        registry: h.registry.clone(),
        checked: AtomicUsize::new(0),
    });
    h.deps.cluster.bus = probe.clone();
    let app = app!(h.deps);
    for data in ["old", "new"] {
        let body = json!({"name": "score", "data": data, "channels": ["cache-a", "private-cache-b"]}).to_string();
        assert_eq!(call(&app, post("/events", &body).to_request()).await.0, StatusCode::OK);
    }
    assert_eq!(probe.checked.load(Ordering::Relaxed), 4);
}

#[actix_web::test]
async fn info_reports_counts_per_unique_channel() {
    let h = harness();
    let app = app!(h.deps);
    let _p1 = subscriber(&h, (1, 1), &["presence-room", "news"], Some("u1"));
    let _p2 = subscriber(&h, (2, 2), &["presence-room", "news"], Some("u1"));
    let _p3 = subscriber(&h, (3, 3), &["presence-room"], Some("u2"));
    let body = r#"{"name":"e","data":"d","channels":["presence-room","news","empty","news"],"info":"user_count,subscription_count"}"#;
    // Presence channels report both counts, as the hosted service (and the PHP SDK's own
    // acceptance tests) expect.
    let want = json!({"channels": {
        "presence-room": {"user_count": 2, "subscription_count": 3},
        "news": {"subscription_count": 2},
        "empty": {"subscription_count": 0},
    }});
    assert_eq!(call(&app, post("/events", body).to_request()).await, (StatusCode::OK, want));
    // Nothing applicable to report: `{}` per channel, never `[]`.
    let body = r#"{"name":"e","data":"d","channel":"news","info":"user_count"}"#;
    let want = json!({"channels": {"news": {}}});
    assert_eq!(call(&app, post("/events", body).to_request()).await, (StatusCode::OK, want));
}

#[actix_web::test]
async fn batch_publishes_in_order_and_reports_info() {
    let h = harness();
    let app = app!(h.deps);
    let mut rx = subscriber(&h, (1, 1), &["a", "presence-x"], Some("7"));
    let body = json!({"batch": [
        {"channel": "a", "name": "first", "data": "1"},
        {"channel": "presence-x", "name": "second", "data": "2", "info": "user_count,subscription_count"},
        {"channels": ["a"], "name": "third", "data": "3", "info": "subscription_count"},
    ]})
    .to_string();
    let want = json!({"batch": [{}, {"user_count": 1, "subscription_count": 1}, {"subscription_count": 1}]});
    assert_eq!(call(&app, post("/batch_events", &body).to_request()).await, (StatusCode::OK, want));
    assert_eq!(
        frames(&mut rx),
        vec![
            r#"{"event":"first","channel":"a","data":"1"}"#,
            r#"{"event":"second","channel":"presence-x","data":"2"}"#,
            r#"{"event":"third","channel":"a","data":"3"}"#,
        ]
    );
    // Without any `info`: `{}`.
    let body = json!({"batch": [{"channel": "a", "name": "e", "data": "d", "socket_id": "1.1"}]}).to_string();
    assert_eq!(call(&app, post("/batch_events", &body).to_request()).await, (StatusCode::OK, json!({})));
    assert!(frames(&mut rx).is_empty(), "socket_id excluded in batches too");
}

#[actix_web::test]
async fn cache_channel_keeps_the_last_event() {
    let h = harness();
    let app = app!(h.deps);
    let (status, body) = call(&app, get("/channels/cache-scores", &[("info", "cache")]).to_request()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"occupied": false})));
    for data in ["1-0", "2-0"] {
        let body = json!({"name": "score", "data": data, "channel": "cache-scores"}).to_string();
        assert_eq!(call(&app, post("/events", &body).to_request()).await.0, StatusCode::OK);
    }
    let (status, body) = call(&app, get("/channels/cache-scores", &[("info", "cache")]).to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"occupied": false, "cache": {"data": "2-0", "ttl": 60}}));
    let cached = h.registry.cache().get(super::ID, "cache-scores", tokio::time::Instant::now()).unwrap();
    assert_eq!(cached.event, "score");
    // A non-cache channel is never cached.
    let body = json!({"name": "e", "data": "d", "channel": "news"}).to_string();
    assert_eq!(call(&app, post("/events", &body).to_request()).await.0, StatusCode::OK);
    assert!(h.registry.cache().get(super::ID, "news", tokio::time::Instant::now()).is_none());
}
