//! A WebSocket client written by hand over TCP: it answers nothing on its own (no pongs), and
//! it can stop reading altogether, which is what a dead or slow peer looks like to the server.

use std::net::SocketAddr;

use herald::protocol::signature;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{KEY, SECRET, WAIT};

/// One frame from the server (servers never fragment Herald's frames).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The close frame's status code, if it carried one.
    Close(Option<u16>),
    /// The server closed the TCP connection.
    Eof,
}

pub struct RawClient {
    pub tcp: TcpStream,
    buf: Vec<u8>,
    pub socket_id: String,
}

impl RawClient {
    /// Upgrades `path` (e.g. `/app/key?protocol=7`) and reads `connection_established`.
    /// `recv_buffer` shrinks the socket's receive buffer, so a client that stops reading backs
    /// the server up quickly.
    pub async fn connect(addr: SocketAddr, path: &str, recv_buffer: Option<u32>) -> Self {
        Self::connect_with(addr, path, recv_buffer, &[]).await
    }

    /// Like `connect`, and `early` goes out in the same write as the upgrade request, as a
    /// client that does not wait for the 101 sends it.
    pub async fn connect_with(addr: SocketAddr, path: &str, recv_buffer: Option<u32>, early: &[u8]) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let tcp = tokio::time::timeout(WAIT, socket.connect(addr)).await.expect("connect in time").expect("connect");
        let mut c = Self { tcp, buf: Vec::new(), socket_id: String::new() };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(early);
        c.tcp.write_all(&bytes).await.expect("write upgrade");
        let head_end = loop {
            if let Some(i) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            assert!(c.fill().await, "connection closed during the upgrade");
        };
        let head = String::from_utf8_lossy(&c.buf[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        c.buf.drain(..head_end);
        let hello = c.expect_event("pusher:connection_established").await;
        let data: Value = serde_json::from_str(hello["data"].as_str().expect("string data")).expect("json data");
        c.socket_id = data["socket_id"].as_str().expect("socket_id").to_owned();
        c
    }

    /// Reads more bytes into the buffer; `false` at end of stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(WAIT, self.tcp.read(&mut chunk)).await.expect("bytes in time").unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// The next frame, within `WAIT`.
    pub async fn next_frame(&mut self) -> Frame {
        loop {
            if let Some(frame) = self.parse() {
                return frame;
            }
            if !self.fill().await {
                return Frame::Eof;
            }
        }
    }

    /// Decodes one complete frame from the buffer, if there is one.
    fn parse(&mut self) -> Option<Frame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames must not be masked");
        let (len, start) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (usize::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize, 10),
            126 | 127 => return None,
            n => (usize::from(n), 2),
        };
        if b.len() < start + len {
            return None;
        }
        assert_ne!(b[0] & 0x80, 0, "server frames are never fragmented");
        let opcode = b[0] & 0x0f;
        let payload: Vec<u8> = self.buf.drain(..start + len).skip(start).collect();
        Some(match opcode {
            0x1 => Frame::Text(String::from_utf8(payload).expect("utf-8 text frame")),
            0x2 => Frame::Binary(payload),
            0x8 => Frame::Close((payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))),
            0x9 => Frame::Ping(payload),
            0xa => Frame::Pong(payload),
            other => panic!("unexpected opcode {other:#x}"),
        })
    }

    /// Skips pings until a text frame with `event == name`; panics on a close.
    pub async fn expect_event(&mut self, name: &str) -> Value {
        loop {
            match self.next_frame().await {
                Frame::Text(t) => {
                    let ev: Value = serde_json::from_str(&t).expect("json frame");
                    if ev["event"] == name {
                        return ev;
                    }
                }
                Frame::Ping(_) | Frame::Pong(_) | Frame::Binary(_) => {}
                f @ (Frame::Close(_) | Frame::Eof) => panic!("{f:?} while waiting for {name}"),
            }
        }
    }

    /// Sends a masked text frame, as clients must.
    pub async fn send_text(&mut self, text: &str) {
        self.send_frame(true, 0x1, text.as_bytes()).await;
    }

    /// Sends one text message split into `parts` (a text frame, then continuation frames).
    pub async fn send_fragmented_text(&mut self, parts: &[&str]) {
        for (i, part) in parts.iter().enumerate() {
            let opcode = if i == 0 { 0x1 } else { 0x0 };
            self.send_frame(i + 1 == parts.len(), opcode, part.as_bytes()).await;
        }
    }

    /// Sends one masked frame.
    pub async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let frame = masked_frame(fin, opcode, payload);
        self.tcp.write_all(&frame).await.expect("write frame");
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    /// Subscribes to a public or private channel and waits for the success.
    pub async fn subscribe(&mut self, channel: &str) {
        let auth = if channel.starts_with("private-") {
            signature::auth_token(KEY, SECRET, &signature::channel_string(&self.socket_id, channel))
        } else {
            String::new()
        };
        self.send(json!({"event": "pusher:subscribe", "data": {"auth": auth, "channel": channel}})).await;
        let ok = self.expect_event("pusher_internal:subscription_succeeded").await;
        assert_eq!(ok["channel"], channel);
    }
}

/// One masked client frame.
pub fn masked_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![if fin { 0x80 | opcode } else { opcode }];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}
