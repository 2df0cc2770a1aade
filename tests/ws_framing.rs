//! WebSocket framing at the edges (RFC 6455): what the transport does with frames a browser
//! would never send, and with bytes that arrive early or in pieces.

mod common;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Frames sent before the 101 arrives are read, not lost.
#[tokio::test]
async fn frames_sent_right_behind_the_upgrade_request_are_handled() {
    let s = TestServer::default().await;
    let ping = masked_frame(true, 0x1, br#"{"event":"pusher:ping","data":{}}"#);
    let path = format!("{}/app/{KEY}?protocol=7", s.path_prefix());
    let mut raw = RawClient::connect_with(s.addr(), &path, None, &ping).await;
    raw.expect_event("pusher:pong").await;
}

/// A header announcing more than the limit is refused at once: the server does not buffer a
/// payload it would refuse anyway (nor wait for it).
#[tokio::test]
async fn a_frame_announcing_more_than_the_limit_is_refused_before_its_payload() {
    let mut cfg = config();
    cfg.websocket.max_message_bytes = 1024;
    let s = TestServer::start(cfg).await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    let mut header = vec![0x81, 0x80 | 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    raw.tcp.write_all(&header).await.unwrap();
    assert_eq!(raw.next_frame().await, Frame::Close(Some(1009)));
    assert!(s.metrics().await.contains(r#"reason="message_too_big""#));
}

#[tokio::test]
async fn unmasked_client_frames_close_with_1002() {
    let s = TestServer::default().await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    let text = br#"{"event":"pusher:ping","data":{}}"#;
    let mut frame = vec![0x81, text.len() as u8];
    frame.extend_from_slice(text);
    raw.tcp.write_all(&frame).await.unwrap();
    assert_eq!(raw.next_frame().await, Frame::Close(Some(1002)));
    // The server then waits for the client's half of the closing handshake, and ends the TCP
    // connection once it arrives.
    raw.send_frame(true, 0x8, &1002u16.to_be_bytes()).await;
    raw.tcp.shutdown().await.unwrap();
    assert_eq!(raw.next_frame().await, Frame::Eof);
}

#[tokio::test]
async fn a_continuation_without_a_first_fragment_closes_with_1002() {
    let s = TestServer::default().await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    raw.send_frame(true, 0x0, b"orphan").await;
    assert_eq!(raw.next_frame().await, Frame::Close(Some(1002)));
}

#[tokio::test]
async fn a_new_message_inside_a_fragmented_one_closes_with_1002() {
    let s = TestServer::default().await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    raw.send_frame(false, 0x1, b"{\"event\":").await;
    raw.send_frame(true, 0x1, b"{}").await;
    assert_eq!(raw.next_frame().await, Frame::Close(Some(1002)));
}

#[tokio::test]
async fn text_that_is_not_utf8_closes_with_1007() {
    let s = TestServer::default().await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    raw.send_frame(true, 0x1, &[0xff, 0xfe, 0x00]).await;
    assert_eq!(raw.next_frame().await, Frame::Close(Some(1007)));
    assert!(s.metrics().await.contains(r#"reason="malformed_message""#));
}

/// Control frames may arrive between the fragments of a message (RFC 6455 §5.4).
#[tokio::test]
async fn a_ping_between_fragments_is_answered_and_the_message_still_assembles() {
    let s = TestServer::default().await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    raw.send_frame(false, 0x1, br#"{"event":"pusher:ping","#).await;
    raw.send_frame(true, 0x9, b"probe").await;
    raw.send_frame(true, 0x0, br#""data":{}}"#).await;
    assert_eq!(raw.next_frame().await, Frame::Pong(b"probe".to_vec()));
    raw.expect_event("pusher:pong").await;
}

/// A message split across TCP writes at every byte is still one message.
#[tokio::test]
async fn a_frame_arriving_byte_by_byte_is_assembled() {
    let s = TestServer::default().await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    raw.tcp.set_nodelay(true).unwrap();
    for byte in masked_frame(true, 0x1, br#"{"event":"pusher:ping","data":{}}"#) {
        raw.tcp.write_all(&[byte]).await.unwrap();
    }
    raw.expect_event("pusher:pong").await;
}

/// Sends a raw HTTP request and returns the status line and the whole response.
async fn http(s: &TestServer, request: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response)).await.expect("response in time").unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn an_upgrade_to_another_path_gets_404_and_the_connection_closes() {
    let s = TestServer::default().await;
    let response = http(
        &s,
        "GET /nope/app/x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
}

#[tokio::test]
async fn an_upgrade_with_a_bad_handshake_gets_400() {
    let s = TestServer::default().await;
    let response = http(
        &s,
        &format!(
            "GET /app/{KEY} HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        ),
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
}

#[tokio::test]
async fn a_plain_get_of_the_socket_path_gets_400_and_other_routes_still_work() {
    let s = TestServer::default().await;
    let response = http(&s, &format!("GET /app/{KEY} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    let (status, _) = s.api().get("/channels", &[]).await;
    assert_eq!(status, 200);
}

/// RFC 6455 §7.4: codes that only report a close (1005, 1006, 1015), unassigned or reserved
/// ones, and anything below 1000 may not be sent; a close carrying one is answered with 1002.
#[tokio::test]
async fn close_codes_that_may_not_be_sent_are_answered_with_1002() {
    let s = TestServer::default().await;
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000] {
        let mut raw = s.connect_tcp(KEY, "protocol=7").await;
        raw.send_frame(true, 0x8, &code.to_be_bytes()).await;
        assert_eq!(raw.next_frame().await, Frame::Close(Some(1002)), "close code {code}");
    }
    for code in [1000u16, 1001, 3000, 4999] {
        let mut raw = s.connect_tcp(KEY, "protocol=7").await;
        raw.send_frame(true, 0x8, &code.to_be_bytes()).await;
        assert_eq!(raw.next_frame().await, Frame::Close(Some(code)), "close code {code} is echoed");
    }
}

#[tokio::test]
async fn a_one_byte_close_payload_is_answered_with_1002() {
    let s = TestServer::default().await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    raw.send_frame(true, 0x8, &[0x03]).await;
    assert_eq!(raw.next_frame().await, Frame::Close(Some(1002)));
}

#[tokio::test]
async fn a_close_reason_that_is_not_utf8_is_answered_with_1007() {
    let s = TestServer::default().await;
    let mut raw = s.connect_tcp(KEY, "protocol=7").await;
    raw.send_frame(true, 0x8, &[0x03, 0xe8, 0xff, 0xfe]).await;
    assert_eq!(raw.next_frame().await, Frame::Close(Some(1007)));
}

/// Control frames must not be fragmented (RFC 6455 §5.5).
#[tokio::test]
async fn fragmented_control_frames_close_with_1002() {
    let s = TestServer::default().await;
    for opcode in [0x9u8, 0xA, 0x8] {
        let mut raw = s.connect_tcp(KEY, "protocol=7").await;
        raw.send_frame(false, opcode, b"").await;
        assert_eq!(raw.next_frame().await, Frame::Close(Some(1002)), "opcode {opcode:#x}");
        assert!(rejected(&s.metrics().await, "malformed_message") >= 1.0);
    }
}
