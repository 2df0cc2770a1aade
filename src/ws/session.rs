//! The per-socket task: the only code that reads the socket's stream or writes its session.
//! Must not decide protocol outcomes: frames go to `Connection`, close requests come from it.

use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Closed, MessageStream, ProtocolError, Session};
use bytestring::ByteString;
use std::task::Poll;

use tokio::time::{Duration, Instant, sleep_until, timeout};

use super::WsSettings;
use crate::connection::{After, Beat, Connection, Heartbeat};
use crate::metrics::Rejection;
use crate::protocol::{CLOSE_MESSAGE_TOO_BIG, ErrorCode, server_event};
use crate::registry::{CloseSignal, OutboundRx};

/// How the loop ended.
enum End {
    /// The client vanished; nothing more to send.
    Gone,
    /// The client started the closing handshake; answer with its close code (RFC 6455 §5.5.1).
    ClientClosed(Option<CloseReason>),
    /// Close with a Pusher code, after a `pusher:error` carrying it.
    Pusher(ErrorCode),
    /// Close with a plain WebSocket code (no Pusher meaning).
    Ws(u16, &'static str),
}

/// Frames written per wake-up before checking the socket again.
const WRITE_BATCH: usize = 64;

/// Runs one socket until it closes, then cleans its state up.
pub(super) async fn run(
    mut conn: Connection,
    mut session: Session,
    stream: MessageStream,
    mut rx: OutboundRx,
    settings: WsSettings,
) {
    let max = settings.max_message_bytes;
    let mut stream = stream.max_frame_size(max).aggregate_continuations().max_continuation_size(max);
    let metrics = conn.metrics().clone();
    metrics.connects.inc();
    metrics.connections.inc();
    let span = tracing::debug_span!("socket", socket_id = %conn.socket_id());
    let _enter = span.enter();

    let hello = server_event::connection_established(conn.socket_id(), settings.activity_timeout.as_secs());
    let closer = rx.close_signal();
    let mut writer = Writer { session: &mut session, closer: &closer, limit: settings.pong_timeout, metrics: &metrics };
    let mut end = writer.send(hello.into()).await.err();

    let now = Instant::now();
    let mut hb = Heartbeat::new(now, settings.activity_timeout, settings.pong_timeout, conn.auth_timeout());
    let first_beat = match hb.poll(now) {
        Beat::Wait(t) | Beat::Ping(t) => t,
        Beat::PongTimeout | Beat::Unauthorized => now,
    };
    // One timer for the socket's life, moved only when the heartbeat asks: re-arming a timer on
    // every frame would cost a timer-wheel update per message.
    let beat = sleep_until(first_beat);
    tokio::pin!(beat);
    // Likewise one close waiter for the socket's life, not a fresh one per wake-up.
    let close_requested = closer.requested();
    tokio::pin!(close_requested);
    let mut replies = Vec::new();
    // Grows on first use: idle sockets should not carry a write batch.
    let mut batch = Vec::new();

    while end.is_none() {
        tokio::select! {
            biased;
            code = &mut close_requested => end = Some(End::Pusher(code)),
            msg = stream.recv() => {
                let now = Instant::now();
                end = match msg {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        hb.seen(now);
                        metrics.messages_in.inc();
                        metrics.bytes_in.inc_by(text.len() as u64);
                        // Boxed: the protocol handling is large and only lives while a frame is
                        // handled, so it should not sit in every idle socket's task.
                        if Box::pin(conn.handle_text(&text, now, &mut replies)).await == After::Authorized {
                            hb.authorized();
                        }
                        writer.send_all(replies.drain(..).map(ByteString::from)).await.err()
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        hb.seen(now);
                        conn.metrics_reject(Rejection::MalformedMessage);
                        let err = server_event::error(None, "Binary frames are not supported");
                        writer.send(err.into()).await.err()
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        hb.seen(now);
                        bounded(writer.session.pong(&bytes), &closer, settings.pong_timeout).await.err()
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {
                        hb.seen(now);
                        None
                    }
                    Some(Ok(AggregatedMessage::Close(reason))) => Some(End::ClientClosed(reason)),
                    None => Some(End::Gone),
                    Some(Err(e)) if is_too_big(&e) => {
                        conn.metrics_reject(Rejection::MessageTooBig);
                        Some(End::Ws(CLOSE_MESSAGE_TOO_BIG, "Message too big"))
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "websocket protocol error");
                        Some(End::Gone)
                    }
                };
            }
            Some(frame) = rx.recv() => {
                batch.push(frame);
                rx.drain_ready(&mut batch, WRITE_BATCH);
                end = writer.send_all(batch.drain(..)).await.err();
            }
            () = &mut beat => {
                let now = Instant::now();
                match hb.poll(now) {
                    Beat::Wait(t) => beat.as_mut().reset(t),
                    Beat::Ping(t) => {
                        beat.as_mut().reset(t);
                        // A WebSocket ping (browsers answer it themselves) and a `pusher:ping`
                        // (for SDKs that only speak the protocol-level ping): either answer counts.
                        end = match bounded(writer.session.ping(b""), &closer, settings.pong_timeout).await {
                            Ok(()) => writer.send(server_event::ping().into()).await.err(),
                            Err(e) => Some(e),
                        };
                    }
                    Beat::PongTimeout => end = Some(End::Pusher(ErrorCode::PongNotReceived)),
                    Beat::Unauthorized => end = Some(End::Pusher(ErrorCode::Unauthorized)),
                }
            }
        }
    }

    let end = end.unwrap_or(End::Gone);
    if let End::Pusher(ErrorCode::OverCapacity) = end {
        metrics.slow_consumers.inc();
    }
    conn.close().await;
    metrics.connections.dec();
    metrics.disconnects.inc();
    close(session, end, &settings).await;
}

/// Whether the stream refused a message for its size: one frame over the limit, or fragments
/// adding up to more (actix-ws reports that case only as an I/O error carrying this text).
fn is_too_big(e: &ProtocolError) -> bool {
    match e {
        ProtocolError::Overflow => true,
        ProtocolError::Io(io) => io.to_string() == "Exceeded maximum continuation size",
        _ => false,
    }
}

/// Sends the closing `pusher:error` and close frame, bounded in time.
async fn close(mut session: Session, end: End, settings: &WsSettings) {
    let reason = match end {
        End::Gone => return,
        End::ClientClosed(reason) => {
            let echo = reason.map(|r| CloseReason { code: r.code, description: None });
            let _ = timeout(settings.pong_timeout, session.close(echo)).await;
            return;
        }
        End::Pusher(code) => {
            let message = close_message(code);
            let frame = server_event::error(Some(code), message);
            let _ = timeout(settings.pong_timeout, session.text(frame)).await;
            CloseReason { code: CloseCode::Other(code.code()), description: Some(message.into()) }
        }
        End::Ws(code, message) => CloseReason { code: CloseCode::from(code), description: Some(message.into()) },
    };
    let _ = timeout(settings.pong_timeout, session.close(Some(reason))).await;
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

/// Runs one write to the session within `limit`, and gives it up as soon as the socket is asked
/// to close: a client that stopped reading fills its buffers, the write waits, and meanwhile its
/// queue overflows and asks for 4100. Without the race that request is never seen.
///
/// A write that completes at once (the common case) costs no timer.
async fn bounded(
    write: impl Future<Output = Result<(), Closed>>,
    closer: &CloseSignal,
    limit: Duration,
) -> Result<(), End> {
    let mut write = std::pin::pin!(write);
    if let Poll::Ready(done) = futures_util::poll!(write.as_mut()) {
        return done.map_err(|Closed| End::Gone);
    }
    tokio::select! {
        biased;
        code = closer.requested() => Err(End::Pusher(code)),
        written = timeout(limit, write) => match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Closed)) | Err(_) => Err(End::Gone),
        },
    }
}

/// Writes text frames through `bounded`, counting what went out.
struct Writer<'a> {
    session: &'a mut Session,
    closer: &'a CloseSignal,
    limit: Duration,
    metrics: &'a crate::metrics::AppMetrics,
}

impl Writer<'_> {
    async fn send(&mut self, frame: ByteString) -> Result<(), End> {
        self.send_all(std::iter::once(frame)).await
    }

    /// Writes every frame; the counters are bumped once per call, not once per frame, since
    /// they are shared by every socket of the app.
    async fn send_all(&mut self, frames: impl Iterator<Item = ByteString>) -> Result<(), End> {
        let (mut count, mut bytes) = (0, 0);
        let mut result = Ok(());
        for f in frames {
            let len = f.len() as u64;
            result = bounded(self.session.text(f), self.closer, self.limit).await;
            if result.is_err() {
                break;
            }
            count += 1;
            bytes += len;
        }
        self.metrics.messages_out.inc_by(count);
        self.metrics.bytes_out.inc_by(bytes);
        result
    }
}
