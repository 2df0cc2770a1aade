//! What the session serves next: its queue, its socket or its heartbeat, in one poll.
//! Must not read, write or decide anything: it only says which source is ready, fairly.
//!
//! One poll over the three rather than `select!` over three futures: those are made anew on
//! every turn of the loop, and a read future joins and leaves the socket's waiter list each time
//! (two locks and a waker clone per delivery). Polled here, the socket keeps the task's waker in
//! its own slot (`Socket::poll_readable`), and the heartbeat's timer, once polled, keeps it until
//! it fires, so an armed timer is not polled again.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::{Instant, Sleep};

/// Turns in a row that found work before the sources are looked at in reverse order.
const FAIR_TURNS: u8 = 8;

/// The heartbeat's timer, as `Waits` polls it.
pub(super) trait Timer {
    /// Whether the timer fired since it was last polled.
    fn fired(&self) -> bool;

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    fn reset_timer(&mut self, at: Instant);
}

impl Timer for Pin<&mut Sleep> {
    fn fired(&self) -> bool {
        self.is_elapsed()
    }

    fn poll_timer(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.as_mut().poll(cx)
    }

    fn reset_timer(&mut self, at: Instant) {
        self.as_mut().reset(at);
    }
}

/// What woke the loop.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Wake<Q, R> {
    Queue(Q),
    Read(R),
    Beat,
}

/// The loop's bookkeeping between turns.
#[derive(Debug, Default)]
pub(super) struct Waits {
    /// Whether the heartbeat's timer has been polled since it was last set.
    beat_armed: bool,
    /// Turns in a row that found work without every source being looked at.
    busy_turns: u8,
}

impl Waits {
    /// Sets the heartbeat's timer to `at`; it is polled again on the next turn.
    pub(super) fn reset_beat(&mut self, beat: &mut impl Timer, at: Instant) {
        beat.reset_timer(at);
        self.beat_armed = false;
    }

    /// The queue first (a fan-out's wake-up), then the socket, then the heartbeat. After a run of
    /// busy turns the order is reversed once, so neither a queue that never empties nor a stream
    /// of buffered client frames keeps the others from being served.
    ///
    /// An armed timer is polled again only once it fired: it holds the waker of the task that
    /// polled it, and the session's task is the only one that polls it.
    pub(super) fn poll<Q, R>(
        &mut self,
        cx: &mut Context<'_>,
        mut queue: impl FnMut(&mut Context<'_>) -> Poll<Q>,
        read: impl FnOnce(&mut Context<'_>) -> Poll<R>,
        beat: &mut impl Timer,
    ) -> Poll<Wake<Q, R>> {
        let reversed = self.busy_turns >= FAIR_TURNS;
        if reversed {
            self.busy_turns = 0;
        } else if let Poll::Ready(next) = queue(cx) {
            self.busy_turns += 1;
            return Poll::Ready(Wake::Queue(next));
        }
        if let Poll::Ready(msg) = read(cx) {
            self.busy_turns += 1;
            return Poll::Ready(Wake::Read(msg));
        }
        if !self.beat_armed || beat.fired() {
            if beat.poll_timer(cx).is_ready() {
                return Poll::Ready(Wake::Beat);
            }
            self.beat_armed = true;
        }
        if reversed && let Poll::Ready(next) = queue(cx) {
            self.busy_turns += 1;
            return Poll::Ready(Wake::Queue(next));
        }
        self.busy_turns = 0;
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::task::Waker;

    use super::*;

    /// Sources that are ready as told; counts how often each was polled.
    #[derive(Default)]
    struct Sources {
        queue: Cell<bool>,
        read: Cell<bool>,
        beat: Cell<bool>,
        beat_polls: Cell<u32>,
    }

    fn ready(on: bool) -> Poll<()> {
        if on { Poll::Ready(()) } else { Poll::Pending }
    }

    impl Timer for &Sources {
        fn fired(&self) -> bool {
            self.beat.get()
        }

        fn poll_timer(&mut self, _: &mut Context<'_>) -> Poll<()> {
            self.beat_polls.set(self.beat_polls.get() + 1);
            ready(self.beat.get())
        }

        fn reset_timer(&mut self, _: Instant) {}
    }

    impl Sources {
        fn turn(&self, waits: &mut Waits) -> Poll<Wake<(), ()>> {
            let mut cx = Context::from_waker(Waker::noop());
            let mut beat = self;
            waits.poll(&mut cx, |_| ready(self.queue.get()), |_| ready(self.read.get()), &mut beat)
        }
    }

    #[test]
    fn a_queue_that_never_empties_does_not_starve_reads_or_the_heartbeat() {
        let s = Sources::default();
        s.queue.set(true);
        s.read.set(true);
        let mut waits = Waits::default();
        let turns: Vec<_> = (0..2 * (FAIR_TURNS as usize + 1)).map(|_| s.turn(&mut waits)).collect();
        let reads = turns.iter().filter(|t| **t == Poll::Ready(Wake::Read(()))).count();
        assert_eq!(reads, 2, "{turns:?}");
        assert_eq!(turns[FAIR_TURNS as usize], Poll::Ready(Wake::Read(())));

        s.read.set(false);
        s.beat.set(true);
        let turns: Vec<_> = (0..=FAIR_TURNS).map(|_| s.turn(&mut waits)).collect();
        assert!(turns.contains(&Poll::Ready(Wake::Beat)), "{turns:?}");
    }

    #[test]
    fn a_stream_of_client_frames_does_not_starve_the_queue() {
        let s = Sources::default();
        s.read.set(true);
        let mut waits = Waits::default();
        for _ in 0..3 * FAIR_TURNS {
            assert_eq!(s.turn(&mut waits), Poll::Ready(Wake::Read(())));
        }
        s.queue.set(true);
        let turns: Vec<_> = (0..=FAIR_TURNS).map(|_| s.turn(&mut waits)).collect();
        let queued = turns.iter().filter(|t| **t == Poll::Ready(Wake::Queue(()))).count();
        // One turn in every FAIR_TURNS busy ones looks at the socket first.
        assert_eq!(queued, FAIR_TURNS as usize - 1, "{turns:?}");
    }

    #[test]
    fn an_armed_timer_is_polled_again_only_once_it_fired_or_was_reset() {
        let s = Sources::default();
        let mut waits = Waits::default();
        assert_eq!(s.turn(&mut waits), Poll::Pending);
        assert_eq!(s.turn(&mut waits), Poll::Pending);
        assert_eq!(s.beat_polls.get(), 1, "armed after the first poll");
        waits.reset_beat(&mut &s, Instant::now());
        assert_eq!(s.turn(&mut waits), Poll::Pending);
        assert_eq!(s.beat_polls.get(), 2, "a reset timer is polled again");
        s.beat.set(true);
        assert_eq!(s.turn(&mut waits), Poll::Ready(Wake::Beat));
        assert_eq!(s.beat_polls.get(), 3, "a fired timer is polled");
    }
}
