//! One upgraded stream (TCP, or TLS over it) as WebSocket messages, with no buffer held while the socket idles.
//! Must not know the Pusher protocol: it reads messages and writes frames, nothing else.
//!
//! Client frames are parsed by actix-http's `ws::Parser` (the codec actix-ws wraps); bytes are
//! kept only while a frame is incomplete. Server frames are written with one `writev` per batch,
//! straight from the shared encoded payloads; only a write the kernel did not take whole is
//! copied, and that copy is released once flushed.

use std::io::{self, IoSlice};
use std::task::{Context, Poll, ready};

use actix_http::ws::{OpCode, Parser, ProtocolError};
use bytes::{Buf, BytesMut};
use bytestring::ByteString;

use super::frame::{self, Control, MAX_HEADER, Op};
use crate::net::Socket;

/// Frames per `writev` (two slices each, far below `IOV_MAX`).
pub(super) const WRITE_BATCH: usize = 64;

/// Bytes of queued frames per batch: what the kernel does not take of a batch is copied and
/// held until it drains, so this bounds a slow socket's private backlog (its queue holds only
/// shared frames).
pub(super) const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// Bytes read per `read` call, into a stack buffer.
const READ_CHUNK: usize = 8 * 1024;

/// A whole client message.
#[derive(Debug)]
pub(super) enum Message {
    Text(ByteString),
    Binary,
    Ping(bytes::Bytes),
    Pong,
    /// The client's close code, if it sent one.
    Close(Option<u16>),
}

/// Why reading stopped.
#[derive(Debug)]
pub(super) enum ReadError {
    /// End of stream or an I/O error: the peer is gone.
    Gone,
    /// A frame, or fragments together, over the message limit (close 1009).
    TooBig,
    /// Broken framing (close 1002).
    Protocol(&'static str),
    /// A text message that is not UTF-8 (close 1007).
    NotUtf8,
}

/// A fragmented message being put together.
#[derive(Debug)]
struct Partial {
    text: bool,
    data: BytesMut,
}

/// The reading half: client frames in, whole messages out.
#[derive(Debug)]
pub(super) struct Reader {
    /// Bytes of an incomplete frame; empty and unallocated between frames.
    buf: BytesMut,
    partial: Option<Partial>,
    max: usize,
}

impl Reader {
    /// `early` holds bytes the client sent right behind its handshake.
    pub(super) fn new(early: BytesMut, max: usize) -> Self {
        Self { buf: early, partial: None, max }
    }

    /// The next whole message, as a poll: for a session that waits on its socket, its queue and
    /// its heartbeat in one `poll_fn` (see `Socket::poll_readable`). All progress is kept in `self`.
    pub(super) fn poll_recv(&mut self, io: &impl Socket, cx: &mut Context<'_>) -> Poll<Result<Message, ReadError>> {
        loop {
            if let Some(message) = self.next_buffered()? {
                return Poll::Ready(Ok(message));
            }
            if ready!(io.poll_readable(cx)).is_err() {
                return Poll::Ready(Err(ReadError::Gone));
            }
            self.fill(io)?;
        }
    }

    fn fill(&mut self, io: &impl Socket) -> Result<(), ReadError> {
        let mut chunk = [0u8; READ_CHUNK];
        match io.try_read(&mut chunk) {
            Ok(0) => Err(ReadError::Gone),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(_) => Err(ReadError::Gone),
        }
    }

    fn next_buffered(&mut self) -> Result<Option<Message>, ReadError> {
        if self.buf.is_empty() {
            // Between frames (the common case on a wake-up): nothing to parse, and no
            // allocation held while the socket idles.
            if self.buf.capacity() > 0 {
                self.buf = BytesMut::new();
            }
            return Ok(None);
        }
        loop {
            if declared_len(&self.buf).is_some_and(|len| len > self.max as u64) {
                return Err(ReadError::TooBig);
            }
            let parsed = Parser::parse(&mut self.buf, true, self.max).map_err(|e| match e {
                ProtocolError::Overflow => ReadError::TooBig,
                ProtocolError::UnmaskedFrame => ReadError::Protocol("unmasked client frame"),
                ProtocolError::InvalidLength(_) => ReadError::Protocol("control frame too long"),
                _ => ReadError::Protocol("malformed frame"),
            })?;
            let Some((fin, op, payload)) = parsed else {
                if self.buf.is_empty() {
                    // Between frames: hold no allocation while the socket idles.
                    self.buf = BytesMut::new();
                }
                return Ok(None);
            };
            let payload = payload.unwrap_or_default();
            match op {
                OpCode::Text | OpCode::Binary if self.partial.is_some() => {
                    return Err(ReadError::Protocol("new message inside a fragmented one"));
                }
                OpCode::Text | OpCode::Binary if fin => return whole(op == OpCode::Text, payload).map(Some),
                OpCode::Text | OpCode::Binary => {
                    self.partial = Some(Partial { text: op == OpCode::Text, data: payload })
                }
                OpCode::Continue => {
                    let Some(partial) = self.partial.as_mut() else {
                        return Err(ReadError::Protocol("continuation without a first fragment"));
                    };
                    if partial.data.len() + payload.len() > self.max {
                        return Err(ReadError::TooBig);
                    }
                    partial.data.extend_from_slice(&payload);
                    if fin {
                        let Partial { text, data } = self.partial.take().expect("checked above");
                        return whole(text, data).map(Some);
                    }
                }
                OpCode::Ping | OpCode::Pong | OpCode::Close if !fin => {
                    return Err(ReadError::Protocol("fragmented control frame"));
                }
                OpCode::Ping => return Ok(Some(Message::Ping(payload.freeze()))),
                OpCode::Pong => return Ok(Some(Message::Pong)),
                OpCode::Close => return close_message(&payload).map(Some),
                OpCode::Bad => return Err(ReadError::Protocol("unknown opcode")),
            }
        }
    }
}

/// A client's close frame (RFC 6455 §5.5.1, §7.4): empty, or a code a peer may send followed
/// by a UTF-8 reason.
fn close_message(payload: &[u8]) -> Result<Message, ReadError> {
    let Some((code, reason)) = payload.split_first_chunk::<2>() else {
        return if payload.is_empty() {
            Ok(Message::Close(None))
        } else {
            Err(ReadError::Protocol("one-byte close payload"))
        };
    };
    let code = u16::from_be_bytes(*code);
    if !may_be_sent(code) {
        return Err(ReadError::Protocol("a close code that may not be sent"));
    }
    std::str::from_utf8(reason).map_err(|_| ReadError::NotUtf8)?;
    Ok(Message::Close(Some(code)))
}

/// Close codes an endpoint may put in a close frame: the defined ones (not 1004, nor 1005,
/// 1006 and 1015, which only report a close without a frame), and the registered and private
/// ranges. 0–999 and unassigned 1xxx–2xxx codes may not be sent.
const fn may_be_sent(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn whole(text: bool, data: BytesMut) -> Result<Message, ReadError> {
    if !text {
        return Ok(Message::Binary);
    }
    ByteString::try_from(data.freeze()).map(Message::Text).map_err(|_| ReadError::NotUtf8)
}

/// The payload length a buffered frame header declares, once the header's length bytes are in.
/// Lets an oversized frame be refused before its payload is buffered.
fn declared_len(buf: &[u8]) -> Option<u64> {
    let short = buf.get(1)? & 0x7F;
    match short {
        126 => buf.get(2..4).map(|b| u64::from(u16::from_be_bytes([b[0], b[1]]))),
        127 => buf.get(2..10).map(|b| u64::from_be_bytes(b.try_into().expect("8 bytes"))),
        n => Some(u64::from(n)),
    }
}

/// The writing half: server frames out, in order.
#[derive(Debug, Default)]
pub(super) struct Writer {
    /// Bytes the kernel has not taken yet; empty and unallocated while writes keep up.
    pending: BytesMut,
}

impl Writer {
    /// A writer whose first write carries `head` (bytes already encoded, such as the 101 of
    /// the upgrade) before anything written through it.
    pub(super) fn with_pending(head: BytesMut) -> Self {
        Self { pending: head }
    }

    /// Starts writing text frames, whole and in order, without waiting: what the kernel does not
    /// take now is kept for `flush`, and goes out before anything written later.
    pub(super) fn start_texts(&mut self, io: &impl Socket, frames: &[ByteString]) -> io::Result<()> {
        for chunk in frames.chunks(WRITE_BATCH) {
            if self.pending.is_empty() {
                write_now(io, chunk, &mut self.pending)?;
            } else {
                for f in chunk {
                    append(&mut self.pending, Op::Text, f.as_bytes());
                }
            }
        }
        Ok(())
    }

    /// Starts writing one control frame (ping, pong, close) without waiting, like `start_texts`.
    pub(super) fn start_control(&mut self, io: &impl Socket, frame: &Control) -> io::Result<()> {
        let bytes = frame.bytes();
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(bytes);
            return Ok(());
        }
        let written = match io.try_write(bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        self.pending.extend_from_slice(&bytes[written..]);
        Ok(())
    }

    /// Whether everything started has reached the kernel.
    pub(super) fn is_flushed(&self, io: &impl Socket) -> bool {
        self.pending.is_empty() && !io.holds_output()
    }

    /// Writes text frames and waits until the kernel took them.
    pub(super) async fn texts(&mut self, io: &impl Socket, frames: &[ByteString]) -> io::Result<()> {
        self.start_texts(io, frames)?;
        self.flush(io).await
    }

    /// Writes one control frame and waits until the kernel took it.
    pub(super) async fn control(&mut self, io: &impl Socket, frame: &Control) -> io::Result<()> {
        self.start_control(io, frame)?;
        self.flush(io).await
    }

    /// Waits until the kernel took everything started. Cancel-safe: progress is kept in `self`.
    pub(super) async fn flush(&mut self, io: &impl Socket) -> io::Result<()> {
        while !self.pending.is_empty() {
            match io.try_write(&self.pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.pending.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.writable().await?,
                Err(e) => return Err(e),
            }
        }
        // What a layer between (TLS) took but the kernel did not yet.
        while !io.flush_held()? {
            io.writable().await?;
        }
        // Release the copy: a socket that caught up should not keep its backlog's capacity.
        self.pending = BytesMut::new();
        Ok(())
    }
}

/// One `writev` of up to `WRITE_BATCH` frames; what the kernel did not take goes to `rest`.
fn write_now(io: &impl Socket, frames: &[ByteString], rest: &mut BytesMut) -> io::Result<()> {
    if let [only] = frames {
        // One frame (a fan-out's usual wake-up): two slices, without setting up a whole batch.
        let mut header = [0u8; MAX_HEADER];
        let n = frame::header(Op::Text, only.len(), &mut header);
        return write_slices(io, &[IoSlice::new(&header[..n]), IoSlice::new(only.as_bytes())], rest);
    }
    let mut headers = [[0u8; MAX_HEADER]; WRITE_BATCH];
    let mut header_lens = [0usize; WRITE_BATCH];
    for (i, f) in frames.iter().enumerate() {
        header_lens[i] = frame::header(Op::Text, f.len(), &mut headers[i]);
    }
    let mut slices = [IoSlice::new(&[]); 2 * WRITE_BATCH];
    for (i, f) in frames.iter().enumerate() {
        slices[2 * i] = IoSlice::new(&headers[i][..header_lens[i]]);
        slices[2 * i + 1] = IoSlice::new(f.as_bytes());
    }
    write_slices(io, &slices[..2 * frames.len()], rest)
}

/// One `writev` of `slices`; what the kernel did not take is copied to `rest`.
fn write_slices(io: &impl Socket, slices: &[IoSlice<'_>], rest: &mut BytesMut) -> io::Result<()> {
    let total: usize = slices.iter().map(|s| s.len()).sum();
    let mut written = match io.try_write_vectored(slices) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => return Err(e),
    };
    if written == total {
        return Ok(());
    }
    rest.reserve(total - written);
    for slice in slices {
        let skip = written.min(slice.len());
        written -= skip;
        rest.extend_from_slice(&slice[skip..]);
    }
    Ok(())
}

fn append(buf: &mut BytesMut, op: Op, payload: &[u8]) {
    let mut header = [0u8; MAX_HEADER];
    let n = frame::header(op, payload.len(), &mut header);
    buf.extend_from_slice(&header[..n]);
    buf.extend_from_slice(payload);
}

/// Reads and discards until the peer closes or `deadline` passes, so that closing the stream
/// sends a FIN rather than a reset that could destroy the close frame in flight.
pub(super) async fn linger(io: &impl Socket, deadline: tokio::time::Instant) {
    let discard = async {
        loop {
            if io.readable().await.is_err() {
                return;
            }
            let mut chunk = [0u8; 1024];
            match io.try_read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout_at(deadline, discard).await;
}

/// Feeds `data` to a reader `chunk` bytes at a time, as reads would deliver it, until it is
/// used up or the reader refuses it; checks the reader's invariants on the way and returns
/// how many messages came out. For fuzz targets and their property-test twins.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn read_all(data: &[u8], chunk: usize, max: usize) -> usize {
    let mut reader = Reader::new(BytesMut::new(), max);
    let mut messages = 0;
    for piece in data.chunks(chunk.max(1)) {
        reader.buf.extend_from_slice(piece);
        loop {
            match reader.next_buffered() {
                Ok(Some(Message::Text(text))) => assert!(text.len() <= max, "a text message over the limit"),
                Ok(Some(Message::Ping(payload))) => assert!(payload.len() <= 125, "a control frame over 125 bytes"),
                Ok(Some(Message::Binary | Message::Pong | Message::Close(_))) => {}
                Ok(None) => break,
                Err(_) => return messages,
            }
            messages += 1;
        }
        // A frame announcing more than the limit is refused from its header, so what waits in
        // the buffer is at most one frame's header and payload within the limit, plus one read.
        assert!(reader.buf.len() <= max + MAX_HEADER + 4 + chunk.max(1), "buffered {}", reader.buf.len());
        assert!(reader.partial.as_ref().is_none_or(|p| p.data.len() <= max), "fragments over the limit");
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_payloads_are_checked() {
        let close = |code: u16, reason: &[u8]| {
            let mut p = code.to_be_bytes().to_vec();
            p.extend_from_slice(reason);
            close_message(&p)
        };
        assert!(matches!(close_message(&[]), Ok(Message::Close(None))));
        assert!(matches!(close_message(&[3]), Err(ReadError::Protocol(_))));
        for ok in [1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 3999, 4000, 4999] {
            assert!(matches!(close(ok, b"bye"), Ok(Message::Close(Some(c))) if c == ok), "{ok}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(matches!(close(bad, b""), Err(ReadError::Protocol(_))), "{bad}");
        }
        assert!(matches!(close(1000, &[0xff, 0xfe]), Err(ReadError::NotUtf8)));
    }

    #[test]
    fn declared_length_is_read_from_every_header_form() {
        assert_eq!(declared_len(&[0x81]), None);
        assert_eq!(declared_len(&[0x81, 0x85]), Some(5));
        assert_eq!(declared_len(&[0x81, 0xFE, 0x01]), None);
        assert_eq!(declared_len(&[0x81, 0xFE, 0x01, 0x00]), Some(256));
        let mut long = vec![0x81, 0xFF];
        long.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(declared_len(&long), Some(1 << 40));
    }
}
