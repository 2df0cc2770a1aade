//! Test harness: a real Herald on 127.0.0.1 port 0, a real WebSocket client, a signing REST client.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod hooks;
pub mod node;
pub mod postgres;
pub mod proxy;
mod raw;
pub mod redis;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use herald::config::{AppConfig, Config};
use herald::protocol::signature;
use herald::server::{self, Running};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

#[allow(unused_imports)]
pub use raw::{Frame, RawClient, masked_frame};

/// How long any single expectation may wait.
pub const WAIT: Duration = Duration::from_secs(5);

pub const KEY: &str = "test-key";
pub const SECRET: &str = "test-secret";
pub const APP_ID: &str = "test-app";

/// An app with client events on.
pub fn app(id: &str, key: &str, secret: &str) -> AppConfig {
    AppConfig { id: id.into(), key: key.into(), secret: secret.into(), client_events: true, ..AppConfig::default() }
}

/// A config bound to 127.0.0.1:0 for both listeners, with the test app.
pub fn config() -> Config {
    let mut c = Config::default();
    c.server.host = "127.0.0.1".into();
    c.server.port = 0;
    c.server.workers = 2;
    c.metrics.host = "127.0.0.1".into();
    c.metrics.port = 0;
    c.shutdown.drain_secs = 0;
    c.apps = vec![app(APP_ID, KEY, SECRET)];
    c
}

/// A node of a cluster on the Redis at `redis_url`, with leases short enough for tests.
pub fn cluster_config(redis_url: &str) -> Config {
    let mut c = config();
    c.adapter.driver = herald::config::AdapterDriver::Redis;
    c.adapter.redis_url = redis_url.into();
    c.adapter.lease_ms = 3_000;
    c.adapter.heartbeat_ms = 500;
    c.adapter.command_timeout_ms = 1_000;
    c
}

/// `n` in-process nodes of one cluster on `redis_url`.
pub async fn cluster(redis_url: &str, n: usize) -> Vec<TestServer> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(TestServer::start(cluster_config(redis_url)).await);
    }
    out
}

pub struct TestServer {
    pub running: Option<Running>,
    pub ws_base: String,
    pub http_base: String,
    pub metrics_base: String,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let prefix = config.server.path_prefix.clone();
        let running = server::start(config).await.expect("server starts");
        let addr = running.addr;
        let maddr = running.metrics_addr;
        Self {
            ws_base: format!("ws://{addr}{prefix}"),
            http_base: format!("http://{addr}{prefix}"),
            metrics_base: format!("http://{maddr}"),
            running: Some(running),
        }
    }

    pub async fn default() -> Self {
        Self::start(config()).await
    }

    /// Connects to `/app/{key}?protocol=7…` and waits for `connection_established`.
    pub async fn connect(&self, key: &str) -> Client {
        let mut c = self.connect_raw(key, "protocol=7&client=js&version=8.4.0&flash=false").await;
        c.established().await;
        c
    }

    /// Connects without reading anything.
    pub async fn connect_raw(&self, key: &str, query: &str) -> Client {
        let url = format!("{}/app/{key}?{query}", self.ws_base);
        let (ws, _) = tokio::time::timeout(WAIT, connect_async(url)).await.expect("connect in time").expect("connect");
        Client { ws, socket_id: String::new(), key: key.into(), secret: SECRET.into() }
    }

    /// Connects as a browser page from `origin` would (an `Origin` header), reading nothing.
    pub async fn connect_from(&self, key: &str, origin: &str) -> Client {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/app/{key}?protocol=7", self.ws_base);
        let mut req = url.into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        let (ws, _) = tokio::time::timeout(WAIT, connect_async(req)).await.expect("connect in time").expect("connect");
        Client { ws, socket_id: String::new(), key: key.into(), secret: SECRET.into() }
    }

    pub fn api(&self) -> Api {
        Api {
            base: self.http_base.clone(),
            app_id: APP_ID.into(),
            key: KEY.into(),
            secret: SECRET.into(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.metrics_base)).await.unwrap().text().await.unwrap()
    }

    /// The WebSocket + REST listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.running.as_ref().expect("running").addr
    }

    /// The configured mount prefix (`""` for none).
    pub fn path_prefix(&self) -> String {
        self.ws_base.trim_start_matches(&format!("ws://{}", self.addr())).to_owned()
    }

    /// A hand-rolled WebSocket client on `/app/{key}?{query}` that never answers pings.
    pub async fn connect_tcp(&self, key: &str, query: &str) -> RawClient {
        RawClient::connect(self.addr(), &format!("{}/app/{key}?{query}", self.path_prefix()), None).await
    }

    /// The test app's value of `name` (the `app_id="test-app"` series), 0 while it has none.
    pub async fn metric(&self, name: &str) -> f64 {
        metric_value(&self.metrics().await, name).unwrap_or(0.0)
    }

    /// Polls `/metrics` until `name` satisfies `cond`, for at most `WAIT`; returns the value.
    /// A bounded wait for a condition: the server updates metrics on its own schedule.
    pub async fn wait_metric(&self, name: &str, cond: impl Fn(f64) -> bool) -> f64 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let v = self.metric(name).await;
            if cond(v) {
                return v;
            }
            assert!(tokio::time::Instant::now() < deadline, "{name} stayed at {v}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
            r.wait().await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub socket_id: String,
    pub key: String,
    pub secret: String,
}

/// What the next frame turned out to be.
#[derive(Debug)]
pub enum Next {
    Event(Value),
    Closed(Option<u16>),
}

impl Client {
    pub async fn established(&mut self) {
        let ev = self.expect("pusher:connection_established").await;
        let data: Value = serde_json::from_str(ev["data"].as_str().expect("data is a string")).unwrap();
        self.socket_id = data["socket_id"].as_str().unwrap().to_owned();
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.expect("send");
    }

    pub async fn send_text(&mut self, t: &str) {
        self.ws.send(Message::text(t.to_owned())).await.expect("send");
    }

    /// Sends a `client-*` event with `data` as given.
    pub async fn client_event(&mut self, channel: &str, event: &str, data: Value) {
        self.send(json!({"event": event, "channel": channel, "data": data})).await;
    }

    /// Sends small frames at once instead of letting Nagle's algorithm hold them for an ACK
    /// (for tests that write many frames in a row).
    pub fn nodelay(&self) {
        if let MaybeTlsStream::Plain(tcp) = self.ws.get_ref() {
            tcp.set_nodelay(true).expect("TCP_NODELAY");
        }
    }

    /// Starts the closing handshake from the client side, with code 1000.
    pub async fn close(&mut self) {
        let normal = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        self.ws.close(Some(normal)).await.expect("close");
    }

    /// The very next frame must be a `pusher:error` with `code` (`None`: `null`); returns its message.
    pub async fn expect_error(&mut self, code: Option<u16>) -> String {
        let e = self.expect_next("pusher:error").await;
        assert_eq!(e["data"]["code"], json!(code), "unexpected error {e}");
        let message = e["data"]["message"].as_str().expect("string message");
        assert!(!message.is_empty(), "empty message in {e}");
        message.to_owned()
    }

    /// The raw text of the very next text frame (for byte-exact checks).
    pub async fn next_text(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await.expect("a frame in time") {
                Some(Ok(Message::Text(t))) => return t.as_str().to_owned(),
                Some(Ok(Message::Close(f))) => panic!("closed ({f:?}) while waiting for a text frame"),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("socket error while waiting for a text frame: {e}"),
                None => panic!("socket ended while waiting for a text frame"),
            }
        }
    }

    /// The next text frame or the close, within `WAIT`. WebSocket pings are answered by
    /// tungstenite, `pusher:ping` events here.
    pub async fn next(&mut self) -> Next {
        self.next_within(WAIT).await.expect("a frame in time")
    }

    pub async fn next_within(&mut self, wait: Duration) -> Option<Next> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return None,
                Ok(m) => m,
            };
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let ev: Value = serde_json::from_str(&t).expect("json frame");
                    // Like pusher-js: answer the server's protocol-level ping and move on.
                    if ev["event"] == "pusher:ping" {
                        self.send(json!({"event": "pusher:pong", "data": {}})).await;
                        continue;
                    }
                    return Some(Next::Event(ev));
                }
                Some(Ok(Message::Close(f))) => return Some(Next::Closed(f.map(|f: CloseFrame| u16::from(f.code)))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Next::Closed(None)),
            }
        }
    }

    /// Skips frames until one with `event == name`, waiting up to 15 s (a cluster lease).
    pub async fn expect_within_lease(&mut self, name: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await.unwrap_or_else(|| panic!("no {name} within the lease")) {
                Next::Event(e) if e["event"] == name => return e,
                Next::Event(_) => continue,
                Next::Closed(code) => panic!("closed ({code:?}) while waiting for {name}"),
            }
        }
    }

    /// Skips frames until the close, within `wait`; returns its code.
    pub async fn expect_close_within(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await.expect("closed in time") {
                Next::Closed(code) => return code,
                Next::Event(_) => continue,
            }
        }
    }

    /// Skips frames until one with `event == name`.
    pub async fn expect(&mut self, name: &str) -> Value {
        loop {
            match self.next().await {
                Next::Event(e) if e["event"] == name => return e,
                Next::Event(_) => continue,
                Next::Closed(code) => panic!("closed ({code:?}) while waiting for {name}"),
            }
        }
    }

    /// The very next frame must be `name`.
    pub async fn expect_next(&mut self, name: &str) -> Value {
        match self.next().await {
            Next::Event(e) => {
                assert_eq!(e["event"], name, "unexpected frame {e}");
                e
            }
            Next::Closed(code) => panic!("closed ({code:?}) while waiting for {name}"),
        }
    }

    /// Skips frames until the close; returns its code.
    pub async fn expect_close(&mut self) -> Option<u16> {
        loop {
            if let Next::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    /// Asserts nothing arrives for `wait`... except via a ping round trip: sends `pusher:ping`
    /// and requires the very next frame to be `pusher:pong`, proving nothing was queued before it.
    pub async fn expect_quiet(&mut self) {
        self.send(json!({"event": "pusher:ping", "data": {}})).await;
        let e = self.expect_next("pusher:pong").await;
        assert_eq!(e["data"], "{}");
    }

    pub fn auth(&self, channel: &str) -> String {
        signature::auth_token(&self.key, &self.secret, &signature::channel_string(&self.socket_id, channel))
    }

    pub fn presence_auth(&self, channel: &str, data: &str) -> String {
        signature::auth_token(&self.key, &self.secret, &signature::presence_string(&self.socket_id, channel, data))
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        let auth = if channel.starts_with("private-") { self.auth(channel) } else { String::new() };
        self.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": channel}})).await;
        self.expect("pusher_internal:subscription_succeeded").await
    }

    pub async fn join(&mut self, channel: &str, user_id: &str, info: Value) -> Value {
        let data = json!({"user_id": user_id, "user_info": info}).to_string();
        let auth = self.presence_auth(channel, &data);
        self.send(
            json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel_data": data, "channel": channel}}),
        )
        .await;
        self.expect("pusher_internal:subscription_succeeded").await
    }

    pub async fn signin(&mut self, user_data: &str) -> Value {
        let auth = signature::auth_token(&self.key, &self.secret, &signature::user_string(&self.socket_id, user_data));
        self.send(json!({"event": "pusher:signin", "data": {"auth": auth, "user_data": user_data}})).await;
        self.expect("pusher:signin_success").await
    }
}

/// The value of `name{app_id="test-app"}` in a Prometheus text exposition.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    let series = format!("{name}{{app_id=\"{APP_ID}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(series.as_str())).and_then(|v| v.trim().parse().ok())
}

/// Parses the string-typed `data` of a frame.
pub fn data(ev: &Value) -> Value {
    serde_json::from_str(ev["data"].as_str().expect("string data")).expect("json data")
}

pub struct Api {
    pub base: String,
    pub app_id: String,
    pub key: String,
    pub secret: String,
    pub http: reqwest::Client,
}

pub fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

impl Api {
    /// Signed query string for `method path` with `params` and `body`, like the SDKs build it.
    pub fn signed_query(&self, method: &str, path: &str, params: &[(&str, &str)], body: &[u8], ts: u64) -> String {
        let mut p: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        p.push(("auth_key".into(), self.key.clone()));
        p.push(("auth_timestamp".into(), ts.to_string()));
        p.push(("auth_version".into(), "1.0".into()));
        if !body.is_empty() {
            p.push(("body_md5".into(), signature::body_md5(body)));
        }
        let sig = signature::sign(&self.secret, &signature::rest_string(method, path, &p));
        p.push(("auth_signature".into(), sig));
        form_urlencoded::Serializer::new(String::new()).extend_pairs(p).finish()
    }

    pub async fn post(&self, sub: &str, body: &Value) -> (u16, Value) {
        let path = format!("/apps/{}{sub}", self.app_id);
        let body = body.to_string();
        let q = self.signed_query("POST", &path, &[], body.as_bytes(), now_secs());
        let r = self
            .http
            .post(format!("{}{path}?{q}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, sub: &str, params: &[(&str, &str)]) -> (u16, Value) {
        let path = format!("/apps/{}{sub}", self.app_id);
        let q = self.signed_query("GET", &path, params, b"", now_secs());
        let r = self.http.get(format!("{}{path}?{q}", self.base)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn trigger(&self, channel: &str, event: &str, data: &str) -> (u16, Value) {
        self.post("/events", &json!({"name": event, "channel": channel, "data": data})).await
    }
}

/// Polls `/metrics` until the exact series reaches `want` (a bounded wait for a condition).
pub async fn wait_series(s: &TestServer, series: &str, want: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = s.metrics().await;
        let v =
            text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse::<f64>().ok())).unwrap_or(0.0);
        if v >= want {
            assert_eq!(v, want, "{series}");
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{series} stayed at {v}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The value of the series `name{labels}` (labels as rendered, e.g. `reason="x"`), 0 if absent.
pub fn series(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
}

/// How many inputs were refused for `reason` (`herald_rejected_total`).
pub fn rejected(text: &str, reason: &str) -> f64 {
    series(text, "herald_rejected_total", &format!("reason=\"{reason}\""))
}

/// The value of an unlabelled series `name`, 0 if absent.
pub fn unlabelled(text: &str, name: &str) -> f64 {
    let prefix = format!("{name} ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.trim().parse().ok()).unwrap_or(0.0)
}
