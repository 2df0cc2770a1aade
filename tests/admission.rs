//! Node-wide admission over real sockets: the open-socket limit, the new-connection rate and
//! the per-address limit refuse upgrades with HTTP 503 / 429 before any handshake work, and
//! give the place back when a socket ends.

mod common;
use common::*;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Sends an upgrade request by hand; returns the status and body of a refusal (`None` when the
/// upgrade was accepted). A refusal ends the connection, so it is read to its end.
async fn refused_status(s: &TestServer, forwarded_for: Option<&str>) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let forwarded = forwarded_for.map(|ip| format!("X-Forwarded-For: {ip}\r\n")).unwrap_or_default();
    let request = format!(
        "GET /app/{KEY}?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{forwarded}\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(WAIT, tcp.read(&mut chunk)).await.expect("an answer in time").unwrap_or(0);
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response);
        if text.starts_with("HTTP/1.1 101") {
            return None;
        }
        if n == 0 {
            let (head, body) = text.split_once("\r\n\r\n").expect("a whole response");
            let status = head[9..12].parse().unwrap();
            assert!(head.to_ascii_lowercase().contains("retry-after: 1"), "{head}");
            return Some((status, body.to_owned()));
        }
    }
}

#[tokio::test]
async fn over_max_connections_upgrades_get_503_until_a_socket_closes() {
    let mut cfg = config();
    cfg.server.max_connections = 2;
    let s = TestServer::start(cfg).await;
    let a = s.connect(KEY).await;
    let _b = s.connect(KEY).await;
    let (status, body) = refused_status(&s, None).await.expect("refused");
    assert_eq!(status, 503);
    assert!(body.contains("connection limit"), "{body}");
    let m = s.metrics().await;
    assert_eq!(rejected(&m, "node_full"), 1.0);
    assert_eq!(unlabelled(&m, "herald_open_sockets"), 2.0, "a refused upgrade holds no place");
    drop(a);
    // The place comes back once the socket's task has ended.
    let deadline = tokio::time::Instant::now() + WAIT;
    while unlabelled(&s.metrics().await, "herald_open_sockets") > 1.0 {
        assert!(tokio::time::Instant::now() < deadline, "the closed socket's place never came back");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(refused_status(&s, None).await, None, "admitted again");
}

#[tokio::test]
async fn new_connections_over_the_rate_get_503() {
    let mut cfg = config();
    cfg.server.max_connections_per_second = 1;
    cfg.server.connections_burst = 3;
    let s = TestServer::start(cfg).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(s.connect(KEY).await);
    }
    let (status, body) = refused_status(&s, None).await.expect("the fourth at once is refused");
    assert_eq!(status, 503);
    assert!(body.contains("too many new connections"), "{body}");
    assert_eq!(rejected(&s.metrics().await, "connect_rate"), 1.0);
    // Open sockets are untouched by the refusal.
    for c in &mut held {
        c.expect_quiet().await;
    }
}

#[tokio::test]
async fn per_address_limit_uses_the_forwarded_address_only_behind_a_trusted_proxy() {
    let mut cfg = config();
    cfg.server.max_connections_per_ip = 1;
    let s = TestServer::start(cfg.clone()).await;
    let _a = s.connect(KEY).await;
    // Not a trusted proxy: the header is ignored, the TCP peer (127.0.0.1) already holds one.
    let (status, body) = refused_status(&s, Some("198.51.100.1")).await.expect("refused");
    assert_eq!(status, 429);
    assert!(body.contains("from this address"), "{body}");
    assert_eq!(rejected(&s.metrics().await, "address_limit"), 1.0);
    drop(s);

    cfg.server.trusted_proxies = vec!["127.0.0.0/8".into()];
    let s = TestServer::start(cfg).await;
    // Behind a trusted proxy, each forwarded address has its own allowance.
    let mut held = Vec::new();
    for client in ["198.51.100.1", "198.51.100.2"] {
        let mut req = format!("{}/app/{KEY}?protocol=7", s.ws_base).into_client_request().unwrap();
        req.headers_mut().insert("x-forwarded-for", client.parse().unwrap());
        held.push(connect_async(req).await.expect("the first from an address is admitted"));
        let again = refused_status(&s, Some(client)).await;
        assert_eq!(again.map(|(status, _)| status), Some(429), "{client} holds one already");
    }
}
