//! Server-side WebSocket frame headers (RFC 6455 §5.2): unmasked, always final.
//! Must not parse client frames: that is actix-http's `ws::Parser`, used by `socket.rs`.

/// Largest header a server frame needs: 2 bytes plus a 64-bit length.
pub(super) const MAX_HEADER: usize = 10;

/// Opcodes the server sends.
#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    Text = 0x1,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

/// Writes the header of a final, unmasked frame of `len` payload bytes; returns its length.
pub(super) fn header(op: Op, len: usize, out: &mut [u8; MAX_HEADER]) -> usize {
    out[0] = 0x80 | op as u8;
    if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

/// A control frame (ping, pong, close) with at most 125 payload bytes, whole.
pub(super) struct Control {
    buf: [u8; 2 + 125],
    len: usize,
}

impl Control {
    /// `payload` is cut to 125 bytes, the most a control frame may carry (RFC 6455 §5.5).
    pub(super) fn new(op: Op, payload: &[u8]) -> Self {
        let payload = &payload[..payload.len().min(125)];
        let mut buf = [0; 127];
        buf[0] = 0x80 | op as u8;
        buf[1] = payload.len() as u8;
        buf[2..2 + payload.len()].copy_from_slice(payload);
        Self { buf, len: 2 + payload.len() }
    }

    /// A close frame: the code, then as much of `reason` as fits on a character boundary.
    pub(super) fn close(code: u16, reason: &str) -> Self {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut payload = [0; 125];
        payload[..2].copy_from_slice(&code.to_be_bytes());
        payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
        Self::new(Op::Close, &payload[..2 + end])
    }

    /// The encoded frame.
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_http::ws::{OpCode, Parser};
    use bytes::BytesMut;

    fn parse(bytes: &[u8]) -> (OpCode, Vec<u8>) {
        let mut buf = BytesMut::from(bytes);
        let (fin, op, payload) = Parser::parse(&mut buf, false, usize::MAX).unwrap().unwrap();
        assert!(fin);
        assert!(buf.is_empty(), "one whole frame");
        (op, payload.map(|p| p.to_vec()).unwrap_or_default())
    }

    fn text_frame(len: usize) -> Vec<u8> {
        let mut h = [0; MAX_HEADER];
        let n = header(Op::Text, len, &mut h);
        let mut frame = h[..n].to_vec();
        frame.extend(std::iter::repeat_n(b'x', len));
        frame
    }

    #[test]
    fn text_headers_round_trip_at_every_length_boundary() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let (op, payload) = parse(&text_frame(len));
            assert_eq!(op, OpCode::Text);
            assert_eq!(payload.len(), len, "length {len}");
        }
        assert_eq!(text_frame(125).len() - 125, 2);
        assert_eq!(text_frame(126).len() - 126, 4);
        assert_eq!(text_frame(65_536).len() - 65_536, 10);
    }

    #[test]
    fn control_frames_round_trip() {
        assert_eq!(parse(Control::new(Op::Ping, b"").bytes()), (OpCode::Ping, vec![]));
        assert_eq!(parse(Control::new(Op::Pong, b"abc").bytes()), (OpCode::Pong, b"abc".to_vec()));
        let (op, payload) = parse(Control::close(4100, "too slow").bytes());
        assert_eq!(op, OpCode::Close);
        assert_eq!(&payload[..2], &4100u16.to_be_bytes());
        assert_eq!(&payload[2..], b"too slow");
    }

    #[test]
    fn long_close_reasons_are_cut_on_a_character_boundary() {
        let reason = "é".repeat(100);
        let (_, payload) = parse(Control::close(1000, &reason).bytes());
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        let long_ping = [7u8; 300];
        assert_eq!(parse(Control::new(Op::Ping, &long_ping).bytes()).1.len(), 125);
    }
}
