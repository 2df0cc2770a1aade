//! CORS on the REST API is configurable, and never gets in the way of WebSocket upgrades.

mod common;
use common::*;

async fn preflight(s: &TestServer, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/apps/{APP_ID}/events", s.http_base))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap()
}

fn allow_origin(r: &reqwest::Response) -> Option<String> {
    r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_owned())
}

/// The REST API is server-to-server: no CORS headers unless configured.
#[tokio::test]
async fn off_by_default() {
    let s = TestServer::default().await;
    let r = preflight(&s, "https://app.example.com").await;
    assert_eq!(allow_origin(&r), None);
    let (status, _) = s.api().trigger("a", "e", "x").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn any_origin_when_asked() {
    let mut cfg = config();
    cfg.http_api.cors_allowed_origins = vec!["*".into()];
    let s = TestServer::start(cfg).await;
    let r = preflight(&s, "https://app.example.com").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert!(allow_origin(&r).is_some());
}

#[tokio::test]
async fn listed_origins_only() {
    let mut cfg = config();
    cfg.http_api.cors_allowed_origins = vec!["https://app.example.com".into()];
    let s = TestServer::start(cfg).await;
    let ok = preflight(&s, "https://app.example.com").await;
    assert_eq!(allow_origin(&ok).as_deref(), Some("https://app.example.com"));
    let other = preflight(&s, "https://evil.example.com").await;
    assert_eq!(allow_origin(&other), None);
    // Browsers send Origin on WebSocket upgrades too: CORS must not refuse them.
    let req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
        "{}/app/{KEY}?protocol=7",
        s.ws_base
    ))
    .map(|mut r| {
        r.headers_mut().insert("Origin", "https://evil.example.com".parse().unwrap());
        r
    })
    .unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("upgrade with any Origin");
    drop(ws);
}

#[tokio::test]
async fn no_cors_headers_when_disabled() {
    let mut cfg = config();
    cfg.http_api.cors_allowed_origins = vec![];
    let s = TestServer::start(cfg).await;
    let (status, _) = s.api().trigger("a", "e", "x").await;
    assert_eq!(status, 200);
    let r = preflight(&s, "https://app.example.com").await;
    assert_eq!(allow_origin(&r), None);
}
