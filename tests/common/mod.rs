//! Test harness: a real Herald on 127.0.0.1 port 0, a real WebSocket client, a signing REST client.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use herald::config::{AppConfig, Config};
use herald::protocol::signature;
use herald::server::{self, Running};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

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
    async fn established(&mut self) {
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

    /// The next text frame or the close, within `WAIT`. Pings are answered by tungstenite.
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
                Some(Ok(Message::Text(t))) => return Some(Next::Event(serde_json::from_str(&t).expect("json frame"))),
                Some(Ok(Message::Close(f))) => return Some(Next::Closed(f.map(|f: CloseFrame| u16::from(f.code)))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Some(Next::Closed(None)),
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
