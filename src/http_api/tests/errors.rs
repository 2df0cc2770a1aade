//! Every refusal: its status, its JSON error body, its metrics, and that nothing went out.

use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt, stream};
use serde_json::{Value, json};

use super::{
    ID, app, call, frames, get, harness, harness_with, now, post, settings, signed_query, signed_query_as, subscriber,
};

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_else(|| panic!("no error field: {body}"))
}

const GOOD: &str = r#"{"name":"e","data":"d","channel":"news"}"#;

#[actix_web::test]
async fn refused_triggers_publish_nothing() {
    let h = harness();
    let app = app!(h.deps);
    let mut rx = subscriber(&h, (1, 1), &["news", "presence-x"], Some("1"));
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let item = json!({"name": "e", "data": "d", "channel": "news"});
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (json!({"name":"e","data":"d","channels":many}).to_string(), StatusCode::BAD_REQUEST, "101 channels"),
        (r#"{"name":"e","data":"d","channels":["news","bad name"]}"#.into(), StatusCode::BAD_REQUEST, "channel #1"),
        (r#"{"name":"e","data":"d","channel":"news","socket_id":"12"}"#.into(), StatusCode::BAD_REQUEST, "socket_id"),
        (
            json!({"name":"e","data":"x".repeat(10 * 1024 + 1),"channel":"news"}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "The data content of this event exceeds the allowed maximum (10240 bytes)",
        ),
        (r#"{"name":"e","data":"d","channel":"news""#.into(), StatusCode::BAD_REQUEST, "invalid JSON"),
        (r#"{"data":"d","channel":"news"}"#.into(), StatusCode::BAD_REQUEST, "`name`"),
        (r#"{"name":"e","channel":"news"}"#.into(), StatusCode::BAD_REQUEST, "`data`"),
        (r#"{"name":"e","data":"d"}"#.into(), StatusCode::BAD_REQUEST, "channel"),
    ];
    for (body, status, needle) in &cases {
        let (got, reply) = call(&app, post("/events", body).to_request()).await;
        assert_eq!(got, *status, "{body}");
        assert!(error_of(&reply).contains(needle), "{reply} lacks {needle}");
    }
    let batch_cases: Vec<(Value, StatusCode, &str)> = vec![
        (json!({"batch": vec![item.clone(); 11]}), StatusCode::BAD_REQUEST, "Batch too large (11 > 10)"),
        (
            json!({"batch": [item.clone(), {"name": "e", "data": "d", "channel": "a b"}]}),
            StatusCode::BAD_REQUEST,
            "batch event #1",
        ),
        (
            json!({"batch": [item.clone(), {"name": "e", "data": "x".repeat(10241), "channel": "a"}]}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "#1: The data content of this event exceeds",
        ),
        (json!({"batch": [item.clone(), {"data": "d", "channel": "a"}]}), StatusCode::BAD_REQUEST, "`name`"),
        (json!({"batch": [item.clone(), 3]}), StatusCode::BAD_REQUEST, "#1"),
        (json!({"batch": "x"}), StatusCode::BAD_REQUEST, "batch"),
        (json!({"nope": []}), StatusCode::BAD_REQUEST, "`batch`"),
    ];
    for (body, status, needle) in &batch_cases {
        let (got, reply) = call(&app, post("/batch_events", &body.to_string()).to_request()).await;
        assert_eq!(got, *status, "{body}");
        assert!(error_of(&reply).contains(needle), "{reply} lacks {needle}");
    }
    assert!(frames(&mut rx).is_empty(), "a refused request published something");
    let metrics = h.metrics.render();
    assert!(metrics.contains(r#"herald_rejected_total{reason="api_bad_request"} 15"#), "{metrics}");
    assert!(metrics.contains(r#"herald_api_requests_total{endpoint="events",status="400"} 7"#), "{metrics}");
    assert!(metrics.contains(r#"herald_api_requests_total{endpoint="batch_events",status="413"} 1"#), "{metrics}");
}

#[actix_web::test]
async fn authentication_failures_are_401_and_publish_nothing() {
    let h = harness();
    let app = app!(h.deps);
    let mut rx = subscriber(&h, (1, 1), &["news"], None);
    let path = format!("/apps/{ID}/events");
    let good = signed_query("POST", &path, &[], GOOD);
    let uri = |q: &str| format!("{path}?{q}");
    let send = |q: String, body: &'static str| TestRequest::post().uri(&uri(&q)).set_payload(body).to_request();
    let wrong_key = signed_query_as("key-2", super::SECRET, now(), "POST", &path, &[], GOOD);
    let wrong_secret = signed_query_as(super::KEY, "guess", now(), "POST", &path, &[], GOOD);
    let stale = signed_query_as(super::KEY, super::SECRET, now() - 601, "POST", &path, &[], GOOD);
    let other_path = signed_query("POST", "/apps/1/batch_events", &[], GOOD);
    let cases = [
        (send(wrong_secret, GOOD), "invalid auth_signature"),
        (send(wrong_key, GOOD), "auth_key"),
        (send(stale, GOOD), "window"),
        (send(good.clone(), r#"{"name":"e","data":"X","channel":"news"}"#), "body_md5"),
        (send(other_path, GOOD), "invalid auth_signature"),
        (send(good.replace("auth_timestamp", "x_timestamp"), GOOD), "auth_timestamp"),
        (send(good.split("&auth_signature").next().unwrap().to_owned(), GOOD), "auth_signature"),
    ];
    for (req, needle) in cases {
        let (status, reply) = call(&app, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
        assert!(error_of(&reply).contains(needle), "{reply} lacks {needle}");
        assert!(!reply.to_string().contains(&good[good.len() - 64..]), "never echo a signature");
    }
    assert!(frames(&mut rx).is_empty());
    let metrics = h.metrics.render();
    assert!(metrics.contains(r#"herald_rejected_total{reason="api_unauthorized"} 7"#), "{metrics}");
    // The untouched request still works.
    assert_eq!(call(&app, send(good, GOOD)).await, (StatusCode::OK, json!({})));
    assert_eq!(frames(&mut rx).len(), 1);
}

#[actix_web::test]
async fn unknown_and_disabled_apps() {
    let h = harness();
    let app = app!(h.deps);
    let q = signed_query("POST", "/apps/9/events", &[], GOOD);
    let req = TestRequest::post().uri(&format!("/apps/9/events?{q}")).set_payload(GOOD).to_request();
    let (status, reply) = call(&app, req).await;
    assert_eq!((status, error_of(&reply)), (StatusCode::NOT_FOUND, "unknown app"));
    let q = signed_query_as("key-2", "secret-2", now(), "POST", "/apps/2/events", &[], GOOD);
    let req = TestRequest::post().uri(&format!("/apps/2/events?{q}")).set_payload(GOOD).to_request();
    let (status, reply) = call(&app, req).await;
    assert_eq!((status, error_of(&reply)), (StatusCode::FORBIDDEN, "app is disabled"));
}

#[actix_web::test]
async fn unknown_routes_and_methods_are_json() {
    let h = harness();
    let app = app!(h.deps);
    for uri in ["/apps", "/apps/1", "/apps/1/nope", "/apps/1/channels/a/b/c"] {
        let (status, reply) = call(&app, TestRequest::get().uri(uri).to_request()).await;
        assert_eq!((status, error_of(&reply)), (StatusCode::NOT_FOUND, "not found"), "{uri}");
    }
    let (status, reply) = call(&app, TestRequest::get().uri("/apps/1/events").to_request()).await;
    assert_eq!((status, error_of(&reply)), (StatusCode::METHOD_NOT_ALLOWED, "method not allowed"));
    let resp = actix_web::test::call_service(&app, TestRequest::get().uri("/app/key-1").to_request()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "outside /apps nothing is claimed");
}

#[actix_web::test]
async fn query_rules() {
    let h = harness();
    let app = app!(h.deps);
    let (status, reply) = call(&app, get("/channels/news", &[("info", "user_count")]).to_request()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_of(&reply).contains("presence channel"));
    let (status, _) = call(&app, get("/channels", &[("info", "user_count")]).to_request()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) =
        call(&app, get("/channels", &[("info", "user_count"), ("filter_by_prefix", "private-")]).to_request()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&app, get("/channels/news/users", &[]).to_request()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(&app, get("/channels/bad*name", &[]).to_request()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let path = format!("/apps/{ID}/channels");
    let q = signed_query("GET", &path, &[("info", "a"), ("INFO", "b")], "");
    let (status, reply) = call(&app, TestRequest::get().uri(&format!("{path}?{q}")).to_request()).await;
    assert_eq!((status, error_of(&reply)), (StatusCode::BAD_REQUEST, "duplicate query parameter `info`"));
}

type Stalled = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

#[actix_web::test]
async fn body_limits() {
    let mut s = settings();
    s.max_body_bytes = 100;
    s.body_timeout = Duration::from_millis(100);
    let h = harness_with(s);
    let app = app!(h.deps);
    let big = format!(r#"{{"name":"e","data":"{}","channel":"news"}}"#, "x".repeat(100));
    let (status, _) = call(&app, post("/events", &big).to_request()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // A body that starts and then stalls is dropped after the body timeout.
    let mut req = post("/events", GOOD).to_request();
    let stalled: Stalled = Box::pin(stream::once(async { Ok(Bytes::from_static(b"{")) }).chain(stream::pending()));
    *req.payload() = Payload::from(stalled);
    let (status, reply) = call(&app, req).await;
    assert_eq!((status, error_of(&reply)), (StatusCode::REQUEST_TIMEOUT, "request body was not received in time"));
}
