//! The per-socket task: the only code that reads or writes an accepted socket.
//! Must not decide protocol outcomes: frames go to `Connection`, close requests come from it.

use std::future::poll_fn;

use bytestring::ByteString;
use tokio::time::{Duration, Instant, sleep_until, timeout, timeout_at};

use super::WsSettings;
use super::frame::{Control, Op};
use super::socket::{self, Message, ReadError, Reader, WRITE_BATCH, WRITE_BATCH_BYTES};
use super::wait::{self, Waits};
use crate::admission::Permit;
use crate::connection::{After, Beat, Connection, Heartbeat};
use crate::metrics::{AppMetrics, Rejection};
use crate::net::Socket;
use crate::protocol::{CLOSE_MESSAGE_TOO_BIG, ErrorCode, server_event};
use crate::rate_limit::{InboundBudget, Verdict};
use crate::registry::{CloseSignal, Next, OutboundRx};

/// How the loop ended.
enum End {
    /// The client vanished; nothing more to send.
    Gone,
    /// The client started the closing handshake; answer with its close code (RFC 6455 §5.5.1).
    ClientClosed(Option<u16>),
    /// Close with a Pusher code, after a `pusher:error` carrying it.
    Pusher(ErrorCode),
    /// Close with a plain WebSocket code (no Pusher meaning).
    Ws(u16, &'static str),
    /// The client kept sending over its inbound budget: close with 4100 (reconnect later).
    Flooded,
}

/// What woke the loop.
type Wake = wait::Wake<Next, Result<Message, ReadError>>;

/// Everything one socket keeps between wake-ups. The loop below awaits only small futures and
/// boxes every rare wait, because the task's size is what each idle socket costs.
struct Session<S> {
    conn: Connection,
    io: S,
    reader: Reader,
    rx: OutboundRx,
    out: socket::Writer,
    hb: Heartbeat,
    inbound: InboundBudget,
    metrics: AppMetrics,
    limit: Duration,
    /// The socket's place in node-wide admission, given back when the session ends.
    permit: Permit,
}

/// Runs one socket until it closes, then cleans its state up.
///
/// Not an `async fn`: its arguments would stay in the task beside the `Session` made of them.
pub(super) fn run<S: Socket>(
    conn: Connection,
    io: S,
    out: socket::Writer,
    reader: Reader,
    rx: OutboundRx,
    permit: Permit,
    settings: &WsSettings,
) -> impl Future<Output = ()> + use<S> {
    let metrics = conn.metrics().clone();
    let now = Instant::now();
    let hb = Heartbeat::new(now, settings.activity_timeout, settings.pong_timeout, conn.auth_timeout());
    let inbound = InboundBudget::new(settings.inbound, now);
    let hello = server_event::connection_established(conn.socket_id(), settings.activity_timeout.as_secs());
    let limit = settings.pong_timeout;
    Session { conn, io, reader, rx, out, hb, inbound, metrics, limit, permit }.run(hello.into())
}

impl<S: Socket> Session<S> {
    /// The socket's loop. Not an `async fn`: one taking `self` by value keeps a second copy of
    /// the session in the task (the argument beside the local it is moved into), and the task's
    /// size is what each idle socket costs. The async block holds the only copy.
    fn run(self, hello: ByteString) -> impl Future<Output = ()> + use<S> {
        let mut session = self;
        async move {
            let mut end = session.send(std::slice::from_ref(&hello)).await.err();
            drop(hello);
            let now = Instant::now();
            let first_beat = match session.hb.poll(now) {
                Beat::Wait(t) | Beat::Ping(t) => t,
                Beat::PongTimeout | Beat::Unauthorized => now,
            };
            // One timer for the socket's life, moved only when the heartbeat asks: re-arming a timer
            // on every frame would cost a timer-wheel update per message.
            let beat = sleep_until(first_beat);
            tokio::pin!(beat);

            let mut waits = Waits::default();
            while end.is_none() {
                // Each wake-up spends from the task's cooperative budget, and the task yields when
                // it is spent: a socket with an endless supply of buffered frames (or of queued ones)
                // cannot keep its worker from the other sockets.
                tokio::task::consume_budget().await;
                let wake = poll_fn(|cx| {
                    let Session { rx, reader, io, .. } = &mut session;
                    waits.poll(cx, |cx| rx.poll_next(cx), |cx| reader.poll_recv(io, cx), &mut beat.as_mut())
                })
                .await;
                end = match wake {
                    Wake::Queue(Next::Frame(frame)) => session.on_frame(frame).await.err(),
                    Wake::Queue(Next::Close(code)) => Some(End::Pusher(code)),
                    // Every sender gone: the connection state holds one, so not while it lives.
                    Wake::Queue(Next::Ended) => Some(End::Gone),
                    Wake::Read(msg) => session.on_read(msg).await.err(),
                    Wake::Beat => match session.hb.poll(Instant::now()) {
                        Beat::Wait(t) => {
                            waits.reset_beat(&mut beat.as_mut(), t);
                            None
                        }
                        Beat::Ping(t) => {
                            waits.reset_beat(&mut beat.as_mut(), t);
                            session.ping().await.err()
                        }
                        Beat::PongTimeout => Some(End::Pusher(ErrorCode::PongNotReceived)),
                        Beat::Unauthorized => Some(End::Pusher(ErrorCode::Unauthorized)),
                    },
                };
            }
            // Boxed, like every rare wait: the task's size is what each idle socket costs.
            Box::pin(session.finish(end.unwrap_or(End::Gone))).await;
        }
    }

    /// One client message (or the end of the stream).
    async fn on_read(&mut self, msg: Result<Message, ReadError>) -> Result<(), End> {
        if !matches!(msg, Err(ReadError::Gone)) {
            let now = Instant::now();
            self.hb.seen(now);
            if let Ok(m) = &msg
                && !matches!(m, Message::Close(_))
            {
                match self.inbound.check(now) {
                    Verdict::Admit => {}
                    Verdict::Refuse => return Box::pin(self.over_budget(m)).await,
                    Verdict::Close => {
                        self.conn.metrics_reject(Rejection::InboundFlood);
                        return Err(End::Flooded);
                    }
                }
            }
        }
        match msg {
            Ok(Message::Text(text)) => Box::pin(self.on_text(text)).await,
            Ok(Message::Binary) => {
                self.conn.metrics_reject(Rejection::MalformedMessage);
                let err = server_event::error(None, "Binary frames are not supported");
                self.send(&[err.into()]).await
            }
            Ok(Message::Ping(bytes)) => {
                self.out.start_control(&self.io, &Control::new(Op::Pong, &bytes)).map_err(|_| End::Gone)?;
                drop(bytes);
                self.flushed().await
            }
            Ok(Message::Pong) => Ok(()),
            Ok(Message::Close(code)) => Err(End::ClientClosed(code)),
            Err(ReadError::Gone) => Err(End::Gone),
            Err(ReadError::TooBig) => {
                self.conn.metrics_reject(Rejection::MessageTooBig);
                Err(End::Ws(CLOSE_MESSAGE_TOO_BIG, "Message too big"))
            }
            Err(ReadError::NotUtf8) => {
                self.conn.metrics_reject(Rejection::MalformedMessage);
                Err(End::Ws(CLOSE_INVALID_PAYLOAD, "Text message is not UTF-8"))
            }
            Err(ReadError::Protocol(why)) => {
                tracing::debug!(why, "websocket protocol error");
                self.conn.metrics_reject(Rejection::MalformedMessage);
                Err(End::Ws(CLOSE_PROTOCOL_ERROR, "WebSocket protocol error"))
            }
        }
    }

    /// A message over the inbound budget: dropped; a text message is answered with 4301.
    async fn over_budget(&mut self, msg: &Message) -> Result<(), End> {
        self.conn.metrics_reject(Rejection::InboundRateLimited);
        if !matches!(msg, Message::Text(_)) {
            return Ok(());
        }
        let message = "Too many messages: over this connection's rate limit; the message was dropped";
        let err = server_event::error(Some(ErrorCode::ClientEventRejected), message);
        self.send(&[err.into()]).await
    }

    /// A Pusher message: the connection decides, the replies go out.
    async fn on_text(&mut self, text: ByteString) -> Result<(), End> {
        self.metrics.messages_in.inc();
        self.metrics.bytes_in.inc_by(text.len() as u64);
        let mut replies = Vec::new();
        if self.conn.handle_text(&text, Instant::now(), &mut replies).await == After::Authorized {
            self.hb.authorized();
        }
        self.send(&replies).await
    }

    /// A queued frame, with whatever else is queued behind it, in one write.
    async fn on_frame(&mut self, frame: ByteString) -> Result<(), End> {
        if self.rx.is_empty() {
            return self.send(std::slice::from_ref(&frame)).await;
        }
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        batch.push(frame);
        self.rx.drain_bytes(&mut batch, WRITE_BATCH, WRITE_BATCH_BYTES);
        self.send(&batch).await
    }

    /// A WebSocket ping (browsers answer it themselves) and a `pusher:ping` (for SDKs that only
    /// speak the protocol-level ping): either answer counts.
    async fn ping(&mut self) -> Result<(), End> {
        self.out.start_control(&self.io, &Control::new(Op::Ping, b"")).map_err(|_| End::Gone)?;
        self.flushed().await?;
        self.send(&[server_event::ping().into()]).await
    }

    /// Writes text frames; the counters are bumped once per call, not once per frame, since they
    /// are shared by every socket of the app. A write the kernel takes whole (the common case)
    /// does not wait.
    async fn send(&mut self, frames: &[ByteString]) -> Result<(), End> {
        if frames.is_empty() {
            return Ok(());
        }
        self.out.start_texts(&self.io, frames).map_err(|_| End::Gone)?;
        self.flushed().await?;
        self.metrics.out.add(frames.len() as u64, frames.iter().map(|f| f.len() as u64).sum());
        Ok(())
    }

    /// Waits (boxed, since it is rare) until the kernel took everything written.
    async fn flushed(&mut self) -> Result<(), End> {
        if self.out.is_flushed(&self.io) {
            return Ok(());
        }
        let closer = self.rx.close_signal();
        Box::pin(bounded(self.out.flush(&self.io), &closer, self.limit)).await
    }

    /// Leaves every channel, then closes the socket as `end` says.
    async fn finish(self, end: End) {
        // `permit` is held to the end of the close, then given back.
        let Self { conn, io, reader, rx, mut out, hb: _, inbound: _, metrics, limit, permit: _permit } = self;
        // What is still queued will never be sent: give it back now, not after the close.
        drop((rx, reader));
        let slow = matches!(end, End::Pusher(ErrorCode::OverCapacity));
        if slow {
            metrics.slow_consumers.inc();
        }
        conn.close().await;
        // A slow consumer gets a short goodbye: it is not reading, and until the close is done
        // the socket keeps what the kernel did not take of its last batch.
        let deadline = Instant::now() + if slow { SLOW_CLOSE_LIMIT } else { limit };
        close(&io, &mut out, end, deadline).await;
    }
}

/// The whole close of a slow consumer (its last batch, `pusher:error` 4100, the close frame,
/// the client's half of the close) must be done within this, or the TCP stream is dropped.
const SLOW_CLOSE_LIMIT: Duration = Duration::from_secs(2);

/// RFC 6455 §7.4.1: the endpoint received data inconsistent with the message type.
const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// RFC 6455 §7.4.1: the endpoint received a frame that breaks the framing rules.
const CLOSE_PROTOCOL_ERROR: u16 = 1002;

/// Closes the socket as `end` says, all of it by `deadline`.
async fn close(io: &impl Socket, out: &mut socket::Writer, end: End, deadline: Instant) {
    match end {
        End::Gone => {}
        // Echo the client's code (RFC 6455 §5.5.1); a close without one is answered without one.
        End::ClientClosed(code) => {
            let frame = code.map_or_else(|| Control::new(Op::Close, b""), |c| Control::close(c, ""));
            close_frame(io, out, &frame, deadline).await;
        }
        End::Pusher(code) => close_with_error(io, out, code, close_message(code), deadline).await,
        End::Ws(code, message) => close_frame(io, out, &Control::close(code, message), deadline).await,
        End::Flooded => {
            let message = "Too many messages; reconnect later";
            close_with_error(io, out, ErrorCode::OverCapacity, message, deadline).await;
        }
    }
}

/// Sends `pusher:error` with `code`, then a close frame with the same code, then lets the
/// client close, all by `deadline`. Also used for connections refused at the handshake.
pub(super) async fn close_with_error(
    io: &impl Socket,
    out: &mut socket::Writer,
    code: ErrorCode,
    message: &str,
    deadline: Instant,
) {
    let text = ByteString::from(server_event::error(Some(code), message));
    if matches!(timeout_at(deadline, out.texts(io, std::slice::from_ref(&text))).await, Ok(Ok(()))) {
        close_frame(io, out, &Control::close(code.code(), message), deadline).await;
    }
}

/// Sends a close frame, then waits (until `deadline`) for the client's side of the close.
async fn close_frame(io: &impl Socket, out: &mut socket::Writer, frame: &Control, deadline: Instant) {
    if matches!(timeout_at(deadline, out.control(io, frame)).await, Ok(Ok(()))) {
        io.close_notify();
        socket::linger(io, deadline).await;
    }
}

fn close_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::OverCapacity => "Connection is too slow to keep up; reconnect later",
        ErrorCode::ReconnectImmediately => "Server is restarting; reconnect",
        ErrorCode::PongNotReceived => "Pong reply not received",
        ErrorCode::Unauthorized => "Connection unauthorized: not signed in in time, or terminated by the application",
        ErrorCode::ClosedAfterInactivity => "Closed after inactivity",
        ErrorCode::TlsOnly
        | ErrorCode::AppNotFound
        | ErrorCode::AppDisabled
        | ErrorCode::OverConnectionQuota
        | ErrorCode::PathNotFound
        | ErrorCode::InvalidVersionFormat
        | ErrorCode::UnsupportedProtocol
        | ErrorCode::NoProtocol
        | ErrorCode::ClientEventRejected
        | ErrorCode::WatchlistLimitExceeded => "Connection closed",
    }
}

/// Runs one write within `limit`, and gives it up as soon as the socket is asked to close: a
/// client that stopped reading fills its buffers, the write waits, and meanwhile its queue
/// overflows and asks for 4100. Without the race that request is never seen.
async fn bounded(
    write: impl Future<Output = std::io::Result<()>>,
    closer: &CloseSignal,
    limit: Duration,
) -> Result<(), End> {
    tokio::select! {
        biased;
        code = closer.requested() => Err(End::Pusher(code)),
        written = timeout(limit, write) => match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(End::Gone),
        },
    }
}
