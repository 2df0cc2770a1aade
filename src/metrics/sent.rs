//! What an app's sockets sent (`herald_ws_messages_total` / `herald_ws_bytes_total`
//! `{direction="out"}`), counted per thread and summed when `/metrics` is rendered.
//! Must not be read anywhere but `Metrics::render`: between renders the exported counters lag.
//!
//! Every delivery bumps its app's out-counters from whichever worker runs the socket: one
//! shared atomic per app moves its cache line between the workers on every delivery (it was
//! the costliest instruction of the session's write path in `perf annotate`). Each thread adds
//! to a shard of its own instead, and a render folds the shards into the exported counters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use prometheus::IntCounter;

/// Shards per app: workers beyond this share them (still correct, only contended).
const SHARDS: usize = 4;

/// One thread's running totals, on a cache line pair of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    messages: AtomicU64,
    bytes: AtomicU64,
}

/// An app's sent messages and bytes.
#[derive(Debug)]
pub struct Sent {
    shards: [Shard; SHARDS],
    messages: IntCounter,
    bytes: IntCounter,
    /// The totals already added to the exported counters.
    exported: Mutex<(u64, u64)>,
}

/// Which shard the calling thread adds to: threads take them in turn.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    MINE.with(|s| *s)
}

impl Sent {
    pub(super) fn new(messages: IntCounter, bytes: IntCounter) -> Self {
        Self { shards: Default::default(), messages, bytes, exported: Mutex::new((0, 0)) }
    }

    /// Counts `messages` sent, `bytes` of payload in all.
    pub fn add(&self, messages: u64, bytes: u64) {
        let shard = &self.shards[shard()];
        shard.messages.fetch_add(messages, Ordering::Relaxed);
        shard.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Brings the exported counters up to the shards' totals.
    pub(super) fn export(&self) {
        let mut exported = self.exported.lock();
        let sum = |f: fn(&Shard) -> &AtomicU64| self.shards.iter().map(|s| f(s).load(Ordering::Relaxed)).sum::<u64>();
        let (messages, bytes) = (sum(|s| &s.messages), sum(|s| &s.bytes));
        self.messages.inc_by(messages - exported.0);
        self.bytes.inc_by(bytes - exported.1);
        *exported = (messages, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_counts_and_a_render_sees_the_sum() {
        let sent = std::sync::Arc::new(Sent::new(
            IntCounter::new("m", "messages").unwrap(),
            IntCounter::new("b", "bytes").unwrap(),
        ));
        let threads: Vec<_> = (0..2 * SHARDS)
            .map(|_| {
                let sent = sent.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        sent.add(1, 10);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(sent.messages.get(), 0, "exported only when rendered");
        sent.export();
        assert_eq!((sent.messages.get(), sent.bytes.get()), (8000, 80_000));
        sent.add(2, 5);
        sent.export();
        sent.export();
        assert_eq!((sent.messages.get(), sent.bytes.get()), (8002, 80_005), "each addition exported once");
    }
}
