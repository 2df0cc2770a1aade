//! Graceful shutdown: `/ready` fails, upgrades get 503, open sockets get 4200.

mod common;
use common::*;

#[tokio::test]
async fn drain_refuses_new_sockets_and_closes_open_ones_with_4200() {
    let mut cfg = config();
    cfg.shutdown.ready_grace_secs = 2;
    cfg.shutdown.drain_secs = 1;
    let s = TestServer::start(cfg).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = s.connect(KEY).await;
        c.subscribe("news").await;
        clients.push(c);
    }
    let ready = reqwest::get(format!("{}/ready", s.metrics_base)).await.unwrap();
    assert_eq!(ready.status(), 200);

    s.running.as_ref().unwrap().shutdown();

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let st = reqwest::get(format!("{}/ready", s.metrics_base)).await.unwrap().status();
        if st == 503 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "/ready never failed");
        tokio::task::yield_now().await;
    }
    let url = format!("{}/app/{KEY}?protocol=7", s.ws_base);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected HTTP 503 while draining, got {other:?}"),
    }

    for c in &mut clients {
        let err = c.expect("pusher:error").await;
        assert_eq!(err["data"]["code"], 4200);
        assert_eq!(c.expect_close().await, Some(4200));
    }
    s.stop().await;
}
