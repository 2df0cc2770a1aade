//! TLS on the main port: wss:// and https:// with a certificate the test makes (rcgen), the
//! certificate reloaded while sockets stay open, and bad or slow handshakes refused alone.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::{MaybeTlsStream, client_async};

/// A fresh certificate for localhost and 127.0.0.1, written where the server reads it.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(sans).unwrap();
    // Written beside, then renamed over: a reload sees the old pair or the new one.
    std::fs::write(dir.join("tls.key.new"), signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("tls.crt.new"), cert.pem()).unwrap();
    std::fs::rename(dir.join("tls.key.new"), dir.join("tls.key")).unwrap();
    std::fs::rename(dir.join("tls.crt.new"), dir.join("tls.crt")).unwrap();
    cert.der().clone()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tls_config(dir: &Path) -> herald::config::Config {
    let mut c = config();
    c.server.tls.cert_file = dir.join("tls.crt").display().to_string();
    c.server.tls.key_file = dir.join("tls.key").display().to_string();
    c.server.tls.reload_interval_secs = 1;
    c.server.tls.handshake_timeout_ms = 500;
    c
}

/// A client that trusts exactly `roots`, offering `alpn`.
fn connector(roots: &[&CertificateDer<'static>], alpn: &[&[u8]]) -> TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add((*r).clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(cfg))
}

async fn handshake(s: &TestServer, connector: &TlsConnector) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(s.addr()).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, connector.connect(name, tcp)).await.expect("handshake in time")
}

/// The certificate the server presented.
fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().expect("a certificate")[0].clone().into_owned()
}

/// A Pusher client over wss://, after `connection_established`.
async fn wss(s: &TestServer, connector: &TlsConnector) -> Client {
    let stream = handshake(s, connector).await.expect("handshake");
    let url = format!("wss://localhost:{}/app/{KEY}?protocol=7&client=js&version=8.4.0", s.addr().port());
    let (ws, _) = tokio::time::timeout(WAIT, client_async(url, MaybeTlsStream::Rustls(stream)))
        .await
        .expect("upgrade in time")
        .expect("upgrade");
    let mut c = Client { ws, socket_id: String::new(), key: KEY.into(), secret: SECRET.into() };
    c.established().await;
    c
}

/// A signed REST publish over https://, answered on a connection of its own.
async fn https_trigger(s: &TestServer, connector: &TlsConnector, channel: &str, event: &str) -> String {
    let body = json!({"name": event, "channel": channel, "data": "{}"}).to_string();
    https_post(s, connector, "/events", &body).await
}

async fn https_post(s: &TestServer, connector: &TlsConnector, sub: &str, body: &str) -> String {
    let mut stream = handshake(s, connector).await.expect("handshake");
    let path = format!("/apps/{APP_ID}{sub}");
    let query = s.api().signed_query("POST", &path, &[], body.as_bytes(), now_secs());
    let request = format!(
        "POST {path}?{query} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut answer)).await.expect("answer in time").ok();
    answer
}

/// Waits (bounded) until the exact series is above `floor`.
async fn wait_above(s: &TestServer, name: &str, floor: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while series(s, name).await <= floor {
        assert!(tokio::time::Instant::now() < deadline, "{name} stayed at {floor}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn series(s: &TestServer, series: &str) -> f64 {
    let text = s.metrics().await;
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test]
async fn wss_and_https_share_the_port_and_a_reload_keeps_open_sockets() {
    let dir = temp_dir("reload");
    let first = write_cert(&dir);
    let s = TestServer::start(tls_config(&dir)).await;
    let trusts_first = connector(&[&first], &[b"http/1.1"]);

    let mut old = wss(&s, &trusts_first).await;
    old.subscribe("news").await;
    let answer = https_trigger(&s, &trusts_first, "news", "before").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(old.expect("before").await["channel"], "news");

    // A renewal: new handshakes get the new certificate; the open socket keeps its session.
    let second = write_cert(&dir);
    wait_above(&s, "herald_tls_certificate_reloads_total{outcome=\"loaded\"} ", 1.0).await;
    let trusts_both = connector(&[&first, &second], &[b"http/1.1"]);
    let fresh = handshake(&s, &trusts_both).await.expect("handshake");
    assert_eq!(presented(&fresh), second, "a new handshake gets the renewed certificate");
    // A new client (one with no session ticket to resume) sees only the new certificate.
    let only_first = connector(&[&first], &[b"http/1.1"]);
    assert!(handshake(&s, &only_first).await.is_err(), "the old certificate is no longer served");
    let trusts_second = connector(&[&second], &[b"http/1.1"]);
    let answer = https_trigger(&s, &trusts_second, "news", "after").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(old.expect("after").await["channel"], "news", "the socket opened before the reload still delivers");
    let mut new = wss(&s, &trusts_second).await;
    new.subscribe("news").await;

    // A broken renewal (a key that is not the certificate's) keeps the certificate in use.
    let failed = "herald_tls_certificate_reloads_total{outcome=\"failed\"} ";
    let before = series(&s, failed).await;
    std::fs::write(dir.join("tls.key"), rcgen::KeyPair::generate().unwrap().serialize_pem()).unwrap();
    wait_above(&s, failed, before).await;
    let still = handshake(&s, &trusts_second).await.expect("the previous certificate still serves");
    assert_eq!(presented(&still), second);
    assert!(https_trigger(&s, &trusts_second, "news", "still").await.starts_with("HTTP/1.1 200"));
    assert_eq!(old.expect("still").await["event"], "still");
    assert_eq!(new.expect("still").await["event"], "still");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn batches_larger_than_a_record_arrive_whole_and_in_order() {
    let dir = temp_dir("batches");
    let cert = write_cert(&dir);
    let s = TestServer::start(tls_config(&dir)).await;
    let trusted = connector(&[&cert], &[b"http/1.1"]);
    let mut sub = wss(&s, &trusted).await;
    sub.subscribe("bulk").await;
    let big = "x".repeat(9_000);
    for round in 0..20 {
        let batch: Vec<_> =
            (0..10).map(|i| json!({"name": format!("e{}", round * 10 + i), "channel": "bulk", "data": big})).collect();
        let answer = https_post(&s, &trusted, "/batch_events", &json!({ "batch": batch }).to_string()).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    for n in 0..200 {
        let ev = sub.expect_next(&format!("e{n}")).await;
        assert_eq!(ev["data"].as_str().map(str::len), Some(big.len()), "event {n} whole");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn alpn_offers_http1_only() {
    let dir = temp_dir("alpn");
    let cert = write_cert(&dir);
    let s = TestServer::start(tls_config(&dir)).await;
    let stream = handshake(&s, &connector(&[&cert], &[b"h2", b"http/1.1"])).await.expect("handshake");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(handshake(&s, &connector(&[&cert], &[b"h2"])).await.is_err(), "h2 alone is refused");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_and_stalled_handshakes_are_closed_and_counted_alone() {
    let dir = temp_dir("bad");
    let cert = write_cert(&dir);
    let s = TestServer::start(tls_config(&dir)).await;
    let trusted = connector(&[&cert], &[b"http/1.1"]);
    let mut bystander = wss(&s, &trusted).await;
    bystander.subscribe("news").await;

    // Plain HTTP on the TLS port: not a ClientHello.
    let mut plain = TcpStream::connect(s.addr()).await.unwrap();
    plain.write_all(b"GET /apps HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, plain.read_to_end(&mut rest)).await.expect("closed in time").ok();
    wait_above(&s, "herald_tls_handshakes_total{outcome=\"failed\"} ", 0.0).await;

    // A connection that never says hello is closed after the handshake timeout.
    let mut silent = TcpStream::connect(s.addr()).await.unwrap();
    let read = tokio::time::timeout(WAIT, silent.read(&mut [0u8; 16])).await.expect("closed in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    wait_above(&s, "herald_tls_handshakes_total{outcome=\"timeout\"} ", 0.0).await;

    // A client that does not trust the certificate gives up; the server counts a failure.
    let elsewhere = temp_dir("stranger");
    let stranger = write_cert(&elsewhere);
    assert!(handshake(&s, &connector(&[&stranger], &[b"http/1.1"])).await.is_err());
    let _ = std::fs::remove_dir_all(&elsewhere);

    assert!(https_trigger(&s, &trusted, "news", "fine").await.starts_with("HTTP/1.1 200"));
    assert_eq!(bystander.expect("fine").await["event"], "fine", "other sockets are unaffected");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_missing_certificate_stops_the_start() {
    let dir = temp_dir("missing");
    let err = herald::server::start(tls_config(&dir)).await.err().expect("refused");
    assert!(err.to_string().contains("tls.crt"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
