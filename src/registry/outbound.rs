//! `Outbound`: the bounded queue of pre-encoded frames in front of one socket.
//! Must not block or await: producers `try_push`; a full queue asks the socket to close.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use bytestring::ByteString;
use tokio::sync::{Notify, mpsc};

use crate::protocol::{ErrorCode, SocketId};

/// The cloneable sending side of one socket's queue, held by the registry.
#[derive(Clone, Debug)]
pub struct Outbound {
    tx: mpsc::Sender<ByteString>,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    socket_id: SocketId,
    /// The first close requested (0 while none): later requests do not override it.
    close_code: AtomicU16,
    close_requested: Notify,
}

/// What happened to a pushed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// The queue was full: the socket was asked to close with 4100 (slow consumer).
    SlowConsumer,
    /// The socket is gone or closing; the frame was dropped.
    Closed,
}

/// The receiving side, owned by the socket's session task.
#[derive(Debug)]
pub struct OutboundRx {
    rx: mpsc::Receiver<ByteString>,
    shared: Arc<Shared>,
}

/// Creates a queue of `capacity` frames for `socket_id`.
pub fn outbound(socket_id: SocketId, capacity: usize) -> (Outbound, OutboundRx) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let shared = Arc::new(Shared { socket_id, close_code: AtomicU16::new(0), close_requested: Notify::new() });
    (Outbound { tx, shared: shared.clone() }, OutboundRx { rx, shared })
}

impl Outbound {
    /// The socket this queue feeds.
    pub fn socket_id(&self) -> &SocketId {
        &self.shared.socket_id
    }

    /// Queues a frame without waiting. A full queue marks the socket as a slow consumer.
    pub fn push(&self, frame: ByteString) -> Pushed {
        if self.shared.close_code.load(Ordering::Relaxed) != 0 {
            return Pushed::Closed;
        }
        match self.tx.try_send(frame) {
            Ok(()) => Pushed::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close(ErrorCode::OverCapacity);
                Pushed::SlowConsumer
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Pushed::Closed,
        }
    }

    /// Asks the session to send `pusher:error` with `code` and close with it. Only the first
    /// request counts.
    pub fn close(&self, code: ErrorCode) {
        let first =
            self.shared.close_code.compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Relaxed).is_ok();
        if first {
            self.shared.close_requested.notify_waiters();
        }
    }
}

impl OutboundRx {
    /// The next queued frame; `None` never happens while an `Outbound` is alive.
    pub async fn recv(&mut self) -> Option<ByteString> {
        self.rx.recv().await
    }

    /// Whether no frame is queued right now.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Moves up to `max` already-queued frames into `buf` without waiting.
    pub fn drain_ready(&mut self, buf: &mut Vec<ByteString>, max: usize) {
        while buf.len() < max {
            match self.rx.try_recv() {
                Ok(f) => buf.push(f),
                Err(_) => break,
            }
        }
    }

    /// Completes when someone asked this socket to close, with the code they asked for.
    pub async fn close_requested(&self) -> ErrorCode {
        self.close_signal().requested().await
    }

    /// A handle that waits for close requests independently of receiving frames.
    pub fn close_signal(&self) -> CloseSignal {
        CloseSignal { shared: self.shared.clone() }
    }
}

/// Waits for a close request on one socket.
#[derive(Debug)]
pub struct CloseSignal {
    shared: Arc<Shared>,
}

impl CloseSignal {
    /// Completes when someone asked this socket to close, with the code they asked for.
    /// Any number of waiters may wait at once (the session loop and a blocked write).
    pub async fn requested(&self) -> ErrorCode {
        loop {
            let mut notified = std::pin::pin!(self.shared.close_requested.notified());
            // Registered before the flag is checked, so a request in between is not missed.
            notified.as_mut().enable();
            if let Some(code) = ErrorCode::from_code(self.shared.close_code.load(Ordering::Acquire)) {
                return code;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_requests_close_4100() {
        let (tx, mut rx) = outbound(SocketId::from_parts(1, 1), 2);
        assert_eq!(tx.push("a".into()), Pushed::Queued);
        assert_eq!(tx.push("b".into()), Pushed::Queued);
        assert_eq!(tx.push("c".into()), Pushed::SlowConsumer);
        assert_eq!(tx.push("d".into()), Pushed::Closed);
        assert_eq!(rx.close_requested().await, ErrorCode::OverCapacity);
        tx.close(ErrorCode::ReconnectImmediately);
        assert_eq!(rx.close_requested().await, ErrorCode::OverCapacity, "first request wins");
        assert_eq!(rx.recv().await.as_deref(), Some("a"));
    }

    #[tokio::test]
    async fn every_waiter_sees_the_close_request() {
        let (tx, rx) = outbound(SocketId::from_parts(1, 2), 2);
        let (a, b) = (rx.close_signal(), rx.close_signal());
        let (wa, wb) = (a.requested(), b.requested());
        tokio::pin!(wa, wb);
        assert!(futures_util::poll!(wa.as_mut()).is_pending());
        assert!(futures_util::poll!(wb.as_mut()).is_pending());
        tx.close(ErrorCode::Unauthorized);
        let wait = std::time::Duration::from_secs(5);
        assert_eq!(tokio::time::timeout(wait, wa).await, Ok(ErrorCode::Unauthorized));
        assert_eq!(tokio::time::timeout(wait, wb).await, Ok(ErrorCode::Unauthorized));
    }
}
