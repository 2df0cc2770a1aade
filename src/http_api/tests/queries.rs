//! Channel queries, user termination, percent-encoded queries and the mount prefix.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::json;

use super::{ApiSettings, ID, app, call, frames, get, harness, harness_with, post, settings, signed_query, subscriber};
use crate::protocol::{ErrorCode, SocketId};

#[actix_web::test]
async fn channel_list() {
    let h = harness();
    let app = app!(h.deps);
    let (status, body) = call(&app, get("/channels", &[]).to_request()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"channels": {}})));
    let _a = subscriber(&h, (1, 1), &["presence-a", "presence-b", "news"], Some("u1"));
    let _b = subscriber(&h, (2, 2), &["presence-a"], Some("u2"));
    let (status, body) = call(&app, get("/channels", &[]).to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"channels": {"news": {}, "presence-a": {}, "presence-b": {}}}));
    let query = [("filter_by_prefix", "presence-"), ("info", "user_count")];
    let (status, body) = call(&app, get("/channels", &query).to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"channels": {"presence-a": {"user_count": 2}, "presence-b": {"user_count": 1}}}));
    let query = [("filter_by_prefix", "ne"), ("info", "subscription_count")];
    let (_, body) = call(&app, get("/channels", &query).to_request()).await;
    assert_eq!(body, json!({"channels": {"news": {"subscription_count": 1}}}));
}

#[actix_web::test]
async fn channel_show_and_users() {
    let h = harness();
    let app = app!(h.deps);
    let (_, body) =
        call(&app, get("/channels/presence-room", &[("info", "user_count,subscription_count")]).to_request()).await;
    assert_eq!(body, json!({"occupied": false}));
    let (_, body) = call(&app, get("/channels/presence-room/users", &[]).to_request()).await;
    assert_eq!(body, json!({"users": []}));
    let _a = subscriber(&h, (1, 1), &["presence-room", "news"], Some("2"));
    let _b = subscriber(&h, (2, 2), &["presence-room"], Some("1"));
    let _c = subscriber(&h, (3, 3), &["presence-room"], Some("1"));
    let (status, body) =
        call(&app, get("/channels/presence-room", &[("info", "user_count,subscription_count")]).to_request()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"occupied": true, "user_count": 2, "subscription_count": 3}));
    let (_, body) = call(&app, get("/channels/news", &[("info", "subscription_count,cache")]).to_request()).await;
    assert_eq!(body, json!({"occupied": true, "subscription_count": 1}));
    let (_, body) = call(&app, get("/channels/news", &[]).to_request()).await;
    assert_eq!(body, json!({"occupied": true}));
    let (_, body) = call(&app, get("/channels/presence-room/users", &[]).to_request()).await;
    assert_eq!(body, json!({"users": [{"id": "1"}, {"id": "2"}]}));
}

#[actix_web::test]
async fn percent_encoded_query_is_decoded_before_signing() {
    let h = harness();
    let app = app!(h.deps);
    let _a = subscriber(&h, (1, 1), &["presence-room"], Some("1"));
    let path = format!("/apps/{ID}/channels/presence-room");
    // Signed over the raw comma, sent the way Guzzle sends it.
    let q = signed_query("GET", &path, &[("info", "user_count,subscription_count")], "");
    let uri = format!("{path}?{}", q.replace(',', "%2C"));
    assert!(uri.contains("info=user_count%2Csubscription_count"));
    let (status, body) = call(&app, TestRequest::get().uri(&uri).to_request()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"occupied": true, "user_count": 1, "subscription_count": 1}));
}

#[actix_web::test]
async fn mount_prefix_is_stripped_before_verifying() {
    let h = harness_with(ApiSettings { path_prefix: "/pfx".into(), ..settings() });
    let app = app!(h.deps, "/pfx");
    let mut rx = subscriber(&h, (1, 1), &["news"], None);
    let body = r#"{"name":"e","data":"d","channel":"news"}"#;
    // The SDK signs `/apps/1/events` although the request goes to `/pfx/apps/1/events`.
    let q = signed_query("POST", "/apps/1/events", &[], body);
    let req = TestRequest::post().uri(&format!("/pfx/apps/1/events?{q}")).set_payload(body).to_request();
    assert_eq!(call(&app, req).await, (StatusCode::OK, json!({})));
    assert_eq!(frames(&mut rx).len(), 1);
    // Unknown routes under the prefix are still JSON 404s.
    let (status, _) = call(&app, TestRequest::get().uri("/pfx/apps/1/nope").to_request()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn terminate_connections_closes_signed_in_sockets_only() {
    let h = harness();
    let app = app!(h.deps);
    let signed_in = subscriber(&h, (1, 1), &[], None);
    let mut bystander = subscriber(&h, (2, 2), &["presence-room"], Some("42"));
    h.registry.namespace(ID).sign_in("42", &SocketId::from_parts(1, 1));
    let (status, body) = call(&app, post("/users/42/terminate_connections", "{}").to_request()).await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    assert_eq!(signed_in.close_requested().await, ErrorCode::Unauthorized);
    // The presence member with the same id who never signed in stays connected.
    let body = r#"{"name":"e","data":"d","channel":"presence-room"}"#;
    assert_eq!(call(&app, post("/events", body).to_request()).await.0, StatusCode::OK);
    assert_eq!(frames(&mut bystander).len(), 1);
}

#[actix_web::test]
async fn requests_are_counted_per_endpoint() {
    let h = harness();
    let app = app!(h.deps);
    call(&app, get("/channels", &[]).to_request()).await;
    call(&app, get("/channels/news", &[]).to_request()).await;
    call(&app, get("/channels/presence-x/users", &[]).to_request()).await;
    call(&app, post("/users/1/terminate_connections", "{}").to_request()).await;
    call(&app, TestRequest::get().uri("/apps/1/zzz").to_request()).await;
    let m = h.metrics.render();
    for endpoint in ["channels", "channel", "channel_users", "terminate_connections"] {
        let line = format!(r#"herald_api_requests_total{{endpoint="{endpoint}",status="200"}} 1"#);
        assert!(m.contains(&line), "{line} missing in {m}");
    }
    assert!(m.contains(r#"herald_api_requests_total{endpoint="unknown",status="404"} 1"#), "{m}");
}
