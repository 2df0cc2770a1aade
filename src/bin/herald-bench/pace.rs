//! Open-loop pacing: a worker's k-th action is due at `start + k / rate`, so a slow server
//! shows up as lag and latency instead of as a silently lower offered rate.
//! Must not do the action itself; callers loop on [`Pace::next`].

use tokio::time::{Duration, Instant};

/// The schedule of one worker among `stride` workers sharing one total `rate`.
pub(crate) struct Pace {
    start: Instant,
    end: Instant,
    /// Actions per second over all workers; 0 means as fast as the worker can go.
    rate: f64,
    next: u64,
    stride: u64,
    /// The furthest this worker fell behind its schedule.
    pub(crate) max_lag: Duration,
}

impl Pace {
    /// Worker `first` of `stride` workers, running from `start` until `end`.
    pub(crate) fn new(start: Instant, end: Instant, rate: f64, first: u64, stride: u64) -> Self {
        Self { start, end, rate, next: first, stride: stride.max(1), max_lag: Duration::ZERO }
    }

    /// Waits until the next action is due and returns its global index; `None` once the
    /// schedule ran past `end`.
    pub(crate) async fn next(&mut self) -> Option<u64> {
        let k = self.next;
        let now = Instant::now();
        if now >= self.end {
            return None;
        }
        if self.rate > 0.0 {
            let due = self.start + Duration::from_secs_f64(k as f64 / self.rate);
            if due >= self.end {
                return None;
            }
            if due > now {
                tokio::time::sleep_until(due).await;
            } else {
                self.max_lag = self.max_lag.max(now - due);
            }
        }
        self.next += self.stride;
        Some(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workers_share_the_rate_and_stop_at_the_end() {
        let start = Instant::now();
        let end = start + Duration::from_millis(100);
        let mut a = Pace::new(start, end, 100.0, 0, 2);
        let mut b = Pace::new(start, end, 100.0, 1, 2);
        let mut got = Vec::new();
        while let Some(k) = a.next().await {
            got.push(k);
        }
        while let Some(k) = b.next().await {
            got.push(k);
        }
        got.sort_unstable();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert!(Instant::now() >= start + Duration::from_millis(80));
        assert!(b.max_lag > Duration::ZERO, "b ran after a, behind its schedule");
    }
}
