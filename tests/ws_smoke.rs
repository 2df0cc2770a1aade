//! Smoke test: connect, subscribe, ping.
mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn connect_subscribe_and_receive() {
    let s = TestServer::default().await;
    let mut c = s.connect(KEY).await;
    assert!(herald::protocol::is_valid_socket_id(&c.socket_id));
    c.subscribe("orders").await;
    c.send(json!({"event":"pusher:ping","data":{}})).await;
    c.expect_next("pusher:pong").await;
}
