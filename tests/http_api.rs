//! The REST API over real sockets: triggers reach WebSocket clients, queries see real state.

mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn trigger_with_channel_reaches_subscribers_verbatim() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    c.subscribe("private-orders.1").await;
    // What pusher-http-php sends for one channel: `channel`, and `\/` escapes kept in `data`.
    let data = r#"{"order":{"id":1,"url":"a\/b"}}"#;
    let (status, body) = s.api().trigger("private-orders.1", "App\\Events\\OrderShipped", data).await;
    assert_eq!((status, body), (200, json!({})));
    let ev = c.expect("App\\Events\\OrderShipped").await;
    assert_eq!(ev, json!({"event": "App\\Events\\OrderShipped", "channel": "private-orders.1", "data": data}));
}

#[tokio::test]
async fn trigger_to_several_channels_and_socket_id_exclusion() {
    let s = TestServer::default().await;
    let mut a = s.connect(KEY).await;
    let mut b = s.connect(KEY).await;
    for c in [&mut a, &mut b] {
        c.subscribe("one").await;
        c.subscribe("two").await;
    }
    let body = json!({"name": "e", "channels": ["one", "two"], "data": "x", "socket_id": a.socket_id});
    let (status, _) = s.api().post("/events", &body).await;
    assert_eq!(status, 200);
    assert_eq!(b.expect("e").await["channel"], "one");
    assert_eq!(b.expect("e").await["channel"], "two");
    a.expect_quiet().await;
}

#[tokio::test]
async fn info_counts_users_and_subscriptions() {
    let s = TestServer::default().await;
    let mut a = s.connect(KEY).await;
    let mut b = s.connect(KEY).await;
    a.join("presence-room", "1", json!({"name": "Ann"})).await;
    b.join("presence-room", "1", json!({"name": "Ann"})).await;
    a.subscribe("news").await;
    let body = json!({"name": "e", "channels": ["presence-room", "news", "empty"], "data": "x", "info": "user_count,subscription_count"});
    let (status, res) = s.api().post("/events", &body).await;
    assert_eq!(status, 200);
    assert_eq!(
        res,
        json!({"channels": {
            "presence-room": {"user_count": 1, "subscription_count": 2},
            "news": {"subscription_count": 1},
            "empty": {"subscription_count": 0},
        }})
    );
}

/// A trigger to a user's channel leaves out `socket_id`, like every other trigger: the tab that
/// caused it does not hear its own echo.
#[tokio::test]
async fn send_to_user_honours_socket_id() {
    let s = TestServer::default().await;
    let mut tab1 = s.connect(KEY).await;
    let mut tab2 = s.connect(KEY).await;
    for tab in [&mut tab1, &mut tab2] {
        tab.signin(r#"{"id":"7"}"#).await;
    }
    let body = json!({"name": "n", "channel": "#server-to-user-7", "data": "x", "socket_id": tab1.socket_id});
    assert_eq!(s.api().post("/events", &body).await.0, 200);
    assert_eq!(tab2.expect("n").await["channel"], "#server-to-user-7");
    tab1.expect_quiet().await;
}

#[tokio::test]
async fn batch_events_publish_in_order() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    c.subscribe("a").await;
    let batch = json!({"batch": [
        {"channel": "a", "name": "first", "data": "1"},
        {"channel": "a", "name": "second", "data": "2", "info": "subscription_count"},
    ]});
    let (status, res) = s.api().post("/batch_events", &batch).await;
    assert_eq!(status, 200);
    assert_eq!(res, json!({"batch": [{}, {"subscription_count": 1}]}));
    assert_eq!(c.expect_next("first").await["data"], "1");
    assert_eq!(c.expect_next("second").await["data"], "2");
}

#[tokio::test]
async fn refused_requests_publish_nothing() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    c.subscribe("a").await;
    let too_many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let cases = [
        (json!({"name": "e", "channels": too_many, "data": "x"}), 400),
        (json!({"name": "e", "channels": ["a", "bad name"], "data": "x"}), 400),
        (json!({"name": "e", "channel": "a", "data": "x".repeat(10 * 1024 + 1)}), 413),
        (json!({"name": "e", "channel": "a", "data": "x", "socket_id": "nope"}), 400),
        (json!({"channel": "a", "data": "x"}), 400),
    ];
    for (body, want) in cases {
        let (status, res) = s.api().post("/events", &body).await;
        assert_eq!(status, want, "{body} -> {res}");
        assert!(res["error"].is_string(), "{res}");
    }
    let batch: Vec<_> = (0..11).map(|i| json!({"channel": "a", "name": format!("e{i}"), "data": "x"})).collect();
    assert_eq!(s.api().post("/batch_events", &json!({"batch": batch})).await.0, 400);
    let half_bad =
        json!({"batch": [{"channel": "a", "name": "ok", "data": "x"}, {"channel": "a b", "name": "e", "data": "x"}]});
    assert_eq!(s.api().post("/batch_events", &half_bad).await.0, 400);
    c.expect_quiet().await;
}

#[tokio::test]
async fn signatures_are_checked() {
    let s = TestServer::default().await;
    let api = s.api();
    let body = json!({"name": "e", "channel": "a", "data": "x"}).to_string();
    let path = format!("/apps/{APP_ID}/events");
    let post = |q: String| {
        let url = format!("{}{path}?{q}", s.http_base);
        let body = body.clone();
        async move { reqwest::Client::new().post(url).body(body).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(api.signed_query("POST", &path, &[], body.as_bytes(), now_secs())).await, 200);
    let stale = api.signed_query("POST", &path, &[], body.as_bytes(), now_secs() - 601);
    assert_eq!(post(stale).await, 401);
    let wrong_secret = Api { secret: "wrong".into(), ..s.api() };
    assert_eq!(post(wrong_secret.signed_query("POST", &path, &[], body.as_bytes(), now_secs())).await, 401);
    let other_body = api.signed_query("POST", &path, &[], b"{}", now_secs());
    assert_eq!(post(other_body).await, 401);
    let unknown = Api { app_id: "nope".into(), ..s.api() };
    assert_eq!(unknown.trigger("a", "e", "x").await.0, 404);
}

#[tokio::test]
async fn disabled_app_is_forbidden() {
    let mut cfg = config();
    cfg.apps[0].enabled = false;
    let s = TestServer::start(cfg).await;
    assert_eq!(s.api().trigger("a", "e", "x").await.0, 403);
}

#[tokio::test]
async fn path_prefix_is_stripped_before_the_signature_check() {
    let mut cfg = config();
    cfg.server.path_prefix = "/herald".into();
    let s = TestServer::start(cfg).await;
    let mut c = s.connect(KEY).await;
    c.subscribe("a").await;
    // The SDKs sign `/apps/{id}/events` even when they post to `/herald/apps/{id}/events`.
    assert_eq!(s.api().trigger("a", "e", "x").await.0, 200);
    c.expect("e").await;
}

#[tokio::test]
async fn cache_channels_replay_the_last_event() {
    let s = TestServer::default().await;
    assert_eq!(s.api().trigger("cache-loc", "moved", "{\"x\":1}").await.0, 200);
    assert_eq!(s.api().trigger("cache-loc", "moved", "{\"x\":2}").await.0, 200);
    let mut c = s.connect(KEY).await;
    c.subscribe("cache-loc").await;
    let ev = c.expect_next("moved").await;
    assert_eq!(ev, json!({"event": "moved", "channel": "cache-loc", "data": "{\"x\":2}"}));
    let (status, info) = s.api().get("/channels/cache-loc", &[("info", "cache,subscription_count")]).await;
    assert_eq!(status, 200);
    assert_eq!(info["occupied"], true);
    assert_eq!(info["subscription_count"], 1);
    assert_eq!(info["cache"]["data"], "{\"x\":2}");
    assert!(info["cache"]["ttl"].as_u64().unwrap() > 1700);
}

#[tokio::test]
async fn channel_queries() {
    let s = TestServer::default().await;
    assert_eq!(s.api().get("/channels", &[]).await, (200, json!({"channels": {}})));
    let mut a = s.connect(KEY).await;
    let mut b = s.connect(KEY).await;
    a.join("presence-room", "1", json!({})).await;
    b.join("presence-room", "2", json!({})).await;
    a.subscribe("news").await;
    let (_, all) = s.api().get("/channels", &[]).await;
    assert_eq!(all, json!({"channels": {"news": {}, "presence-room": {}}}));
    let (_, pres) = s.api().get("/channels", &[("filter_by_prefix", "presence-"), ("info", "user_count")]).await;
    assert_eq!(pres, json!({"channels": {"presence-room": {"user_count": 2}}}));
    assert_eq!(s.api().get("/channels", &[("info", "user_count")]).await.0, 400);
    let (_, one) = s.api().get("/channels/presence-room", &[("info", "user_count,subscription_count")]).await;
    assert_eq!(one, json!({"occupied": true, "user_count": 2, "subscription_count": 2}));
    assert_eq!(s.api().get("/channels/none", &[]).await, (200, json!({"occupied": false})));
    assert_eq!(s.api().get("/channels/news", &[("info", "user_count")]).await.0, 400);
    let (_, users) = s.api().get("/channels/presence-room/users", &[]).await;
    assert_eq!(users, json!({"users": [{"id": "1"}, {"id": "2"}]}));
    assert_eq!(s.api().get("/channels/news/users", &[]).await.0, 400);
}

#[tokio::test]
async fn server_to_user_and_terminate_connections() {
    let s = TestServer::default().await;
    let mut tab1 = s.connect(KEY).await;
    let mut tab2 = s.connect(KEY).await;
    let mut other = s.connect(KEY).await;
    for c in [&mut tab1, &mut tab2] {
        c.signin(r#"{"id":"42"}"#).await;
        c.subscribe("#server-to-user-42").await;
    }
    other.signin(r#"{"id":"7"}"#).await;
    assert_eq!(s.api().trigger("#server-to-user-42", "note", "hi").await.0, 200);
    for c in [&mut tab1, &mut tab2] {
        assert_eq!(c.expect("note").await["channel"], "#server-to-user-42");
    }
    let (status, body) = s.api().post("/users/42/terminate_connections", &json!({})).await;
    assert_eq!((status, body), (200, json!({})));
    for c in [&mut tab1, &mut tab2] {
        assert_eq!(c.expect("pusher:error").await["data"]["code"], 4009);
        assert_eq!(c.expect_close().await, Some(4009));
    }
    other.expect_quiet().await;
}

#[tokio::test]
async fn user_channels_accept_any_visible_user_id() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    c.signin(r#"{"id":"auth0|abc"}"#).await;
    c.subscribe("#server-to-user-auth0|abc").await;
    assert_eq!(s.api().trigger("#server-to-user-auth0|abc", "note", "hi").await.0, 200);
    assert_eq!(c.expect("note").await["channel"], "#server-to-user-auth0|abc");
}

/// A body refused from its declared size is still read to its end (bounded), so a client that
/// writes all of it, as Node's and PHP's HTTP clients do, reads the 413 instead of a broken pipe.
#[tokio::test]
async fn a_refused_five_megabyte_body_is_answered_413_and_read_to_its_end() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::default().await;
    let body = json!({"name": "e", "channel": "news", "data": "x".repeat(5 * 1024 * 1024)}).to_string();
    let path = format!("/apps/{APP_ID}/events");
    let q = s.api().signed_query("POST", &path, &[], body.as_bytes(), now_secs());
    let tcp = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let (mut rd, mut wr) = tcp.into_split();
    let head = format!(
        "POST {path}?{q} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        wr.write_all(body.as_bytes()).await?;
        Ok::<_, std::io::Error>(wr)
    });
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&response).contains("bytes\"}") {
        let n = tokio::time::timeout(WAIT, rd.read(&mut chunk)).await.expect("an answer in time").unwrap();
        assert!(n > 0, "closed before the answer: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    let wr = tokio::time::timeout(WAIT, writer).await.expect("written in time").unwrap();
    assert!(wr.is_ok(), "every byte of the body was taken, no broken pipe: {wr:?}");
}
