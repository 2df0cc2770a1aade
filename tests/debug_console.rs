//! The debug console's data: the page and its event stream on the metrics listener only,
//! behind the admin token; what a socket, a REST publish and a webhook show; the budget.

mod common;

use common::*;
use herald::config::{Config, WebhookConfig};
use herald::protocol::WebhookKind;
use serde_json::{Value, json};

const TOKEN: &str = "a-debug-console-token";

fn console_config() -> Config {
    let mut c = config();
    c.app_store.admin_token = TOKEN.into();
    c.apps.push(app("other-app", "other-key", "other-secret"));
    c
}

/// One open console: the event stream of an app, read with the token.
struct Console {
    res: reqwest::Response,
    buf: String,
}

impl Console {
    async fn open(s: &TestServer, app: &str) -> Self {
        let url = format!("{}/admin/debug/apps/{app}/events", s.metrics_base);
        let res = reqwest::Client::new().get(url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        let mut c = Self { res, buf: String::new() };
        let (event, _) = c.next().await;
        assert_eq!(event, "ready");
        c
    }

    /// The next server-sent event: its `event:` name (`message` when none) and data.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                let mut event = "message".to_owned();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        event = e.into();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment or the retry hint
                }
                return (event, serde_json::from_str(&data).unwrap());
            }
            let chunk = tokio::time::timeout(WAIT, self.res.chunk()).await.expect("an event in time").unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk.expect("the stream stays open")).unwrap());
        }
    }

    /// The next event of `kind`, skipping others.
    async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let (event, data) = self.next().await;
            if event == "message" && data["type"] == kind {
                return data;
            }
        }
    }
}

async fn get(url: String, token: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn the_page_is_on_the_metrics_listener_and_its_data_needs_the_token() {
    let s = TestServer::start(console_config()).await;
    let (status, page) = get(format!("{}/debug", s.metrics_base), None).await;
    assert_eq!(status, 200);
    assert!(page.contains("Herald debug console") && page.contains("/debug/console.js"));
    let res = reqwest::get(format!("{}/debug", s.metrics_base)).await.unwrap();
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("script-src 'self'"));
    assert_eq!(get(format!("{}/debug/console.js", s.metrics_base), None).await.0, 200);
    for path in ["/admin/debug/apps", "/admin/debug/apps/test-app/events", "/admin/debug/apps/test-app/channels"] {
        assert_eq!(get(format!("{}{path}", s.metrics_base), None).await.0, 401, "{path}");
        assert_eq!(get(format!("{}{path}", s.metrics_base), Some("wrong-token-wrong")).await.0, 401, "{path}");
    }
    let (status, apps) = get(format!("{}/admin/debug/apps", s.metrics_base), Some(TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&apps).unwrap()["apps"], json!(["test-app", "other-app"]));
    // Never on the public port.
    assert_eq!(get(format!("{}/debug", s.http_base), None).await.0, 404);
    assert_eq!(get(format!("{}/admin/debug/apps", s.http_base), Some(TOKEN)).await.0, 404);

    // Without an admin token there is no console at all.
    let plain = TestServer::default().await;
    assert_eq!(get(format!("{}/debug", plain.metrics_base), None).await.0, 404);
}

#[tokio::test]
async fn a_console_shows_its_apps_sockets_publishes_client_events_and_webhooks() {
    let hooks = hooks::receiver(0, 200).await;
    let mut c = console_config();
    c.apps[0].webhooks = vec![WebhookConfig {
        url: hooks.url.clone(),
        events: vec![WebhookKind::ChannelOccupied],
        ..Default::default()
    }];
    let s = TestServer::start(c).await;
    let mut console = Console::open(&s, "test-app").await;

    let mut other = s.connect("other-key").await;
    other.subscribe("elsewhere").await;
    let mut a = s.connect_from(KEY, "https://app.example.com").await;
    a.established().await;
    let opened = console.expect("connection").await;
    assert_eq!(opened["socket_id"], a.socket_id.as_str(), "the other app's socket is not shown");
    assert_eq!(
        (opened["transport"].as_str(), opened["origin"].as_str()),
        (Some("pusher"), Some("https://app.example.com"))
    );

    a.subscribe("private-orders").await;
    let sub = console.expect("subscribed").await;
    assert_eq!(sub["channel"], "private-orders");
    let hook = console.expect("webhook").await;
    assert_eq!((hook["outcome"].as_str(), hook["events"][0].as_str()), (Some("sent"), Some("channel_occupied")));
    assert_eq!(hook["target"], "127.0.0.1");

    a.send(json!({"event": "pusher:subscribe", "data": {"channel": "private-nope", "auth": "k:bad"}})).await;
    let refused = console.expect("refused").await;
    assert_eq!((refused["channel"].as_str(), refused["what"].as_str()), (Some("private-nope"), Some("subscription")));
    assert!(refused["code"].as_u64().is_some() && refused["reason"] == "subscription_refused", "{refused}");

    let mut b = s.connect(KEY).await;
    b.subscribe("private-orders").await;
    assert_eq!(s.api().trigger("private-orders", "order.shipped", r#"{"id":7}"#).await.0, 200);
    let published = console.expect("api_message").await;
    assert_eq!(published["event"], "order.shipped");
    assert_eq!(published["channels"], json!(["private-orders"]));
    assert_eq!(published["bytes"], 8);
    assert!(published["preview"].is_null(), "payloads are not shown unless enabled");

    a.client_event("private-orders", "client-typing", json!({"who": "ann"})).await;
    let whisper = console.expect("client_event").await;
    assert_eq!(
        (whisper["event"].as_str(), whisper["socket_id"].as_str()),
        (Some("client-typing"), Some(a.socket_id.as_str()))
    );

    let (status, channels) = get(format!("{}/admin/debug/apps/test-app/channels", s.metrics_base), Some(TOKEN)).await;
    assert_eq!(status, 200);
    let channels: Value = serde_json::from_str(&channels).unwrap();
    assert_eq!(channels["channels"], json!([{"name": "private-orders", "subscription_count": 2, "user_count": 0}]));

    a.close().await;
    let closed = console.expect("disconnection").await;
    assert_eq!(closed["socket_id"], a.socket_id.as_str());
    drop(hooks);
}

#[tokio::test]
async fn presence_members_are_listed_and_previews_show_when_enabled() {
    let mut c = console_config();
    c.debug.payload_preview_bytes = 4;
    let s = TestServer::start(c).await;
    let mut console = Console::open(&s, "test-app").await;
    let mut ann = s.connect(KEY).await;
    ann.join("presence-room", "ann", json!({"name": "Ann"})).await;
    let joined = console.expect("subscribed").await;
    assert_eq!(joined["user_id"], "ann");
    let (_, channels) = get(format!("{}/admin/debug/apps/test-app/channels", s.metrics_base), Some(TOKEN)).await;
    let channels: Value = serde_json::from_str(&channels).unwrap();
    assert_eq!(
        channels["channels"],
        json!([{"name": "presence-room", "subscription_count": 1, "user_count": 1, "users": ["ann"]}])
    );
    s.api().trigger("presence-room", "hello", "héllo world").await;
    assert_eq!(console.expect("api_message").await["preview"], "hél", "cut at a character boundary");
}

#[tokio::test]
async fn over_the_budget_events_are_shed_and_the_console_is_told_how_many() {
    let mut c = console_config();
    c.debug.max_events_per_second = 3;
    let s = TestServer::start(c).await;
    let mut console = Console::open(&s, "test-app").await;
    for i in 0..12 {
        assert_eq!(s.api().trigger("news", &format!("e{i}"), "{}").await.0, 200);
    }
    let (mut shown, mut missed) = (0, 0);
    while shown + missed < 12 {
        match console.next().await {
            (event, data) if event == "missed" => missed += data["count"].as_u64().unwrap(),
            (_, data) if data["type"] == "api_message" => shown += 1,
            _ => {}
        }
    }
    assert_eq!(shown + missed, 12, "every publish is shown or counted as missed");
    assert!(missed >= 6 && shown <= 6, "three a second at most: {shown} shown, {missed} missed");
    let m = s.metrics().await;
    let shed = m.lines().find_map(|l| l.strip_prefix("herald_debug_events_total{outcome=\"shed\"} "));
    assert_eq!(shed.map(|v| v.parse::<u64>().unwrap()), Some(missed));
}
