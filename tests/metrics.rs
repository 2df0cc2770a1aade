//! The metrics listener: Prometheus text, health, readiness, bounded labels.

mod common;
use common::*;

#[tokio::test]
async fn metrics_health_and_ready() {
    let s = TestServer::default().await;
    let health = reqwest::get(format!("{}/health", s.metrics_base)).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{}/ready", s.metrics_base)).await.unwrap();
    assert_eq!(ready.status(), 200);

    let mut c = s.connect(KEY).await;
    c.subscribe("news").await;
    let text = s.metrics().await;
    assert!(text.contains(&format!("herald_connections{{app_id=\"{APP_ID}\"}} 1")), "{text}");
    assert!(text.contains(&format!("herald_channels{{app_id=\"{APP_ID}\"}} 1")), "{text}");
    assert!(text.contains("herald_ws_messages_total{app_id=\"test-app\",direction=\"in\"} 1"), "{text}");
}

#[tokio::test]
async fn unknown_keys_are_counted_without_a_series_per_key() {
    let s = TestServer::default().await;
    for key in ["nope-1", "nope-2"] {
        let mut c = s.connect_raw(key, "protocol=7").await;
        let err = c.expect("pusher:error").await;
        assert_eq!(err["data"]["code"], 4001);
        assert_eq!(c.expect_close().await, Some(4001));
    }
    let text = s.metrics().await;
    assert!(text.contains("herald_rejected_total{reason=\"unknown_app\"} 2"), "{text}");
    assert!(!text.contains("nope-1"), "{text}");
}
