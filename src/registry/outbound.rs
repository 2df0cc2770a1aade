//! `Outbound`: the bounded queue of pre-encoded frames in front of one socket.
//! Must not block or await: producers `push`; a full queue asks the socket to close.
//!
//! Hand-written rather than a channel: every socket has one, so its idle size is per-socket
//! memory. A tokio `mpsc` channel allocates about 1.6 KB up front (a cache-padded channel plus
//! a first block of 32 slots); this queue is one small allocation, and its buffer exists only
//! while frames wait.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytestring::ByteString;
use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use super::wake::{self, Wakes};
use crate::protocol::{ErrorCode, SocketId};

/// Buffer capacity a drained queue may keep; a burst's larger buffer is released.
const KEEP_CAPACITY: usize = 8;

/// The cloneable sending side of one socket's queue, held by the registry.
#[derive(Debug)]
pub struct Outbound {
    shared: Arc<Shared>,
}

/// In declaration order (`repr(C)`), what a push and a wake-up touch first and together: the
/// publishing thread writes these lines and the session's thread reads them on every delivery,
/// so the fewer lines they span, the fewer cache misses a delivery costs.
#[derive(Debug)]
#[repr(C)]
struct Shared {
    /// The first close requested (0 while none): later requests do not override it.
    close_code: AtomicU16,
    rx_gone: AtomicBool,
    /// The worker whose thread made the queue (where its session runs), for batched wakes.
    worker: u16,
    /// How many frames `frames` holds, written under its lock and read without it: the session
    /// looks at an empty queue on every wake-up, and a lock there would cost one more
    /// cache-line transfer from the publishing thread per delivery.
    queued: AtomicUsize,
    frames: Mutex<Frames>,
    /// The session task, woken when a frame arrives or the last sender goes.
    rx_waker: AtomicWaker,
    senders: AtomicUsize,
    capacity: usize,
    socket_id: SocketId,
    close_requested: Notify,
}

impl Shared {
    fn frames(&self) -> MutexGuard<'_, Frames> {
        // A panic while holding the lock leaves the deque intact: keep using it.
        self.frames.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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
    shared: Arc<Shared>,
}

/// Creates a queue of `capacity` frames for `socket_id`.
pub fn outbound(socket_id: SocketId, capacity: usize) -> (Outbound, OutboundRx) {
    let shared = Arc::new(Shared {
        socket_id,
        capacity: capacity.max(1),
        worker: wake::current(),
        frames: Mutex::new(Frames::default()),
        queued: AtomicUsize::new(0),
        rx_waker: AtomicWaker::new(),
        senders: AtomicUsize::new(1),
        rx_gone: AtomicBool::new(false),
        close_code: AtomicU16::new(0),
        close_requested: Notify::new(),
    });
    (Outbound { shared: shared.clone() }, OutboundRx { shared })
}

impl Clone for Outbound {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Self { shared: self.shared.clone() }
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.rx_waker.wake();
        }
    }
}

impl Outbound {
    /// The socket this queue feeds.
    pub fn socket_id(&self) -> &SocketId {
        &self.shared.socket_id
    }

    /// Queues a frame without waiting. A full queue marks the socket as a slow consumer.
    pub fn push(&self, frame: ByteString) -> Pushed {
        let pushed = self.enqueue(frame);
        if pushed == Pushed::Queued {
            self.shared.rx_waker.wake();
        }
        pushed
    }

    /// As `push`, one of a fan-out's: the session is woken through `fanout`, which hands the
    /// wakes of other workers' sockets over in one batch per worker and gives them a copy of
    /// the frame of their own.
    pub fn push_batched(&self, frame: &ByteString, fanout: &mut Fanout) -> Pushed {
        let pushed = self.enqueue(fanout.frame_for(self.shared.worker, frame));
        if pushed == Pushed::Queued
            && let Some(waker) = self.shared.rx_waker.take()
        {
            fanout.wakes.wake(self.shared.worker, waker);
        }
        pushed
    }

    fn enqueue(&self, frame: ByteString) -> Pushed {
        let shared = &self.shared;
        if shared.close_code.load(Ordering::Relaxed) != 0 || shared.rx_gone.load(Ordering::Relaxed) {
            return Pushed::Closed;
        }
        let mut frames = shared.frames();
        if frames.len() >= shared.capacity {
            drop(frames);
            self.close(ErrorCode::OverCapacity);
            return Pushed::SlowConsumer;
        }
        frames.push_back(frame);
        shared.queued.store(frames.len(), Ordering::Release);
        Pushed::Queued
    }

    /// Asks the session to send `pusher:error` with `code` and close with it. Only the first
    /// request counts.
    pub fn close(&self, code: ErrorCode) {
        let first =
            self.shared.close_code.compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Relaxed).is_ok();
        if first {
            self.shared.close_requested.notify_waiters();
            self.shared.rx_waker.wake();
        }
    }
}

impl Drop for OutboundRx {
    fn drop(&mut self) {
        self.shared.rx_gone.store(true, Ordering::Relaxed);
        *self.shared.frames() = Frames::default();
        self.shared.queued.store(0, Ordering::Release);
    }
}

/// One fan-out's batch: its wakes ([`Wakes`]) and one copy of the frame per other worker.
///
/// Every queued clone of a frame shares its reference count, and each session drops its
/// clone once written: with one copy for all, the workers take that count's cache line from
/// each other on every delivery. With a copy per worker (a few hundred bytes copied once per
/// worker and publish) each worker's sessions count on their own.
#[derive(Default)]
pub struct Fanout {
    wakes: Wakes,
    copies: Vec<(u16, ByteString)>,
}

impl Fanout {
    fn frame_for(&mut self, worker: u16, frame: &ByteString) -> ByteString {
        if worker == self.wakes.here() || worker == wake::NO_WORKER {
            return frame.clone();
        }
        if let Some((_, copy)) = self.copies.iter().find(|(w, _)| *w == worker) {
            return copy.clone();
        }
        let copy = ByteString::from(String::from(&**frame));
        self.copies.push((worker, copy.clone()));
        copy
    }
}

/// What the session should do next, from its queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Write this frame.
    Frame(ByteString),
    /// Someone asked the socket to close with this code; it takes precedence over queued frames.
    Close(ErrorCode),
    /// Every `Outbound` is gone and nothing is queued.
    Ended,
}

impl OutboundRx {
    /// The next thing to do: a close request first, then queued frames in order.
    ///
    /// Frames and close requests wake the same waker, so the session waits on one future
    /// rather than on a queue and a separate close notification.
    pub async fn next(&mut self) -> Next {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// `next` as a poll, for a session that waits on several sources in one `poll_fn`.
    /// An empty queue costs two atomic loads and the waker's registration, no lock.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        if let Some(next) = self.try_next() {
            return Poll::Ready(next);
        }
        self.shared.rx_waker.register(cx.waker());
        // Checked again after registering, so a push or close in between is not missed.
        self.try_next().map_or(Poll::Pending, Poll::Ready)
    }

    fn try_next(&self) -> Option<Next> {
        if let Some(code) = ErrorCode::from_code(self.shared.close_code.load(Ordering::Acquire)) {
            return Some(Next::Close(code));
        }
        if !self.is_empty()
            && let Some(frame) = self.pop()
        {
            return Some(Next::Frame(frame));
        }
        (self.shared.senders.load(Ordering::Acquire) == 0).then_some(Next::Ended)
    }

    fn pop(&self) -> Option<ByteString> {
        let mut frames = self.shared.frames();
        let frame = frames.pop_front();
        self.shared.queued.store(frames.len(), Ordering::Release);
        frames.release_if_drained();
        frame
    }

    /// Whether no frame is queued right now.
    pub fn is_empty(&self) -> bool {
        self.shared.queued.load(Ordering::Acquire) == 0
    }

    /// Moves already-queued frames into `buf` without waiting, until it holds `max` frames.
    pub fn drain_ready(&mut self, buf: &mut Vec<ByteString>, max: usize) {
        self.drain_bytes(buf, max, usize::MAX);
    }

    /// Like `drain_ready`, and also stops before the frames in `buf` would pass `max_bytes`
    /// (at least one frame is taken): what the kernel does not take of one batch is copied,
    /// so the batch's size bounds what a socket holds beyond its queue.
    pub fn drain_bytes(&mut self, buf: &mut Vec<ByteString>, max: usize, max_bytes: usize) {
        let mut frames = self.shared.frames();
        let mut bytes: usize = buf.iter().map(|f| f.len()).sum();
        while buf.len() < max {
            let Some(next) = frames.front() else { break };
            if !buf.is_empty() && bytes + next.len() > max_bytes {
                break;
            }
            bytes += next.len();
            buf.extend(frames.pop_front());
        }
        self.shared.queued.store(frames.len(), Ordering::Release);
        frames.release_if_drained();
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

/// The queued frames: the next one inline, beside the lock and the counters, so a wake-up that
/// finds one frame reads no other cache line than theirs; the rest behind it.
#[derive(Debug, Default)]
struct Frames {
    /// `None` only while `rest` is empty too.
    head: Option<ByteString>,
    rest: VecDeque<ByteString>,
}

impl Frames {
    fn len(&self) -> usize {
        usize::from(self.head.is_some()) + self.rest.len()
    }

    fn front(&self) -> Option<&ByteString> {
        self.head.as_ref()
    }

    fn push_back(&mut self, frame: ByteString) {
        match self.head {
            None => self.head = Some(frame),
            Some(_) => self.rest.push_back(frame),
        }
    }

    fn pop_front(&mut self) -> Option<ByteString> {
        let frame = self.head.take();
        self.head = self.rest.pop_front();
        frame
    }

    /// A drained queue keeps a small buffer for the next burst, not the largest one it saw.
    fn release_if_drained(&mut self) {
        if self.rest.is_empty() && self.rest.capacity() > KEEP_CAPACITY {
            self.rest = VecDeque::new();
        }
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.rest.capacity()
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
        let (tx, rx) = outbound(SocketId::from_parts(1, 1), 2);
        assert_eq!(tx.push("a".into()), Pushed::Queued);
        assert_eq!(tx.push("b".into()), Pushed::Queued);
        assert_eq!(tx.push("c".into()), Pushed::SlowConsumer);
        assert_eq!(tx.push("d".into()), Pushed::Closed);
        assert_eq!(rx.close_requested().await, ErrorCode::OverCapacity);
        tx.close(ErrorCode::ReconnectImmediately);
        assert_eq!(rx.close_requested().await, ErrorCode::OverCapacity, "first request wins");
        assert_eq!(rx.pop().as_deref(), Some("a"), "queued frames stay until the session stops");
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

    #[tokio::test]
    async fn frames_arrive_in_order_and_wake_the_receiver() {
        let (tx, mut rx) = outbound(SocketId::from_parts(1, 3), 8);
        let receiver = tokio::spawn(async move { (rx.next().await, rx.next().await) });
        tokio::task::yield_now().await;
        assert_eq!(tx.push("a".into()), Pushed::Queued);
        assert_eq!(tx.push("b".into()), Pushed::Queued);
        let wait = std::time::Duration::from_secs(5);
        let (a, b) = tokio::time::timeout(wait, receiver).await.expect("woken").expect("no panic");
        assert_eq!((a, b), (Next::Frame("a".into()), Next::Frame("b".into())));
    }

    #[tokio::test]
    async fn next_ends_once_every_sender_is_gone() {
        let (tx, mut rx) = outbound(SocketId::from_parts(1, 4), 8);
        let other = tx.clone();
        drop(tx);
        assert_eq!(other.push("last".into()), Pushed::Queued);
        drop(other);
        assert_eq!(rx.next().await, Next::Frame("last".into()));
        assert_eq!(rx.next().await, Next::Ended);
    }

    #[test]
    fn a_drained_queue_releases_its_burst_buffer() {
        let (tx, mut rx) = outbound(SocketId::from_parts(1, 5), 1000);
        for _ in 0..100 {
            tx.push("x".into());
        }
        let mut batch = Vec::new();
        rx.drain_ready(&mut batch, 60);
        assert_eq!(batch.len(), 60);
        assert!(rx.shared.frames().capacity() >= 40, "frames still queued keep their buffer");
        rx.drain_ready(&mut batch, 100);
        assert_eq!(batch.len(), 100);
        assert!(rx.is_empty());
        assert!(rx.shared.frames().capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn batches_stop_at_a_byte_budget() {
        let (tx, mut rx) = outbound(SocketId::from_parts(1, 9), 100);
        for _ in 0..10 {
            tx.push(ByteString::from("x".repeat(100)));
        }
        let mut batch = Vec::new();
        rx.drain_bytes(&mut batch, 64, 350);
        assert_eq!(batch.len(), 3, "300 bytes fit, 400 would not");
        let mut big = vec![ByteString::from("y".repeat(1000))];
        rx.drain_bytes(&mut big, 64, 350);
        assert_eq!(big.len(), 1, "a batch already over budget takes nothing more");
        let mut one = Vec::new();
        tx.push(ByteString::from("z".repeat(1000)));
        rx.drain_bytes(&mut one, 64, 10);
        assert_eq!(one.len(), 1, "at least one frame, however large");
    }

    #[test]
    fn pushes_after_the_receiver_is_gone_are_dropped() {
        let (tx, rx) = outbound(SocketId::from_parts(1, 6), 8);
        tx.push("queued".into());
        drop(rx);
        assert_eq!(tx.push("late".into()), Pushed::Closed);
        assert!(tx.shared.frames().len() == 0, "frames die with the receiver");
    }

    #[tokio::test]
    async fn next_puts_a_close_request_before_queued_frames() {
        let (tx, mut rx) = outbound(SocketId::from_parts(1, 7), 8);
        let waiting = tokio::spawn(async move {
            let first = rx.next().await;
            (first, rx)
        });
        tokio::task::yield_now().await;
        tx.close(ErrorCode::ReconnectImmediately);
        let wait = std::time::Duration::from_secs(5);
        let (first, mut rx) = tokio::time::timeout(wait, waiting).await.expect("woken").expect("no panic");
        assert_eq!(first, Next::Close(ErrorCode::ReconnectImmediately));
        assert_eq!(rx.next().await, Next::Close(ErrorCode::ReconnectImmediately), "the request stays");
        drop(tx);
        let (tx, mut rx) = outbound(SocketId::from_parts(1, 8), 8);
        tx.push("a".into());
        assert_eq!(rx.next().await, Next::Frame("a".into()));
        drop(tx);
        assert_eq!(rx.next().await, Next::Ended);
    }
}
