//! A token bucket: `rate` tokens per second, bursts up to `burst`.
//! Must not allocate or lock: it lives inside one connection's state.

use tokio::time::Instant;

/// Allows `rate` events per second on average, with bursts of up to `burst`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f32,
    burst: f32,
    tokens: f32,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `per_second`, holding at most `per_second` tokens.
    pub fn new(per_second: u32, now: Instant) -> Self {
        Self::with_burst(per_second as f32, per_second as f32, now)
    }

    /// A full bucket of `burst` tokens refilling at `per_second` (both at least one).
    pub fn with_burst(per_second: f32, burst: f32, now: Instant) -> Self {
        let burst = burst.max(1.0);
        Self { rate: per_second.max(f32::MIN_POSITIVE), burst, tokens: burst, updated: now }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f32();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Duration;

    #[test]
    fn allows_rate_per_second() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, t0);
        assert_eq!((0..15).filter(|_| b.try_take(t0)).count(), 10);
        assert!(!b.try_take(t0 + Duration::from_millis(50)));
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert_eq!((0..15).filter(|_| b.try_take(t0 + Duration::from_secs(5))).count(), 10);
    }

    #[test]
    fn burst_is_separate_from_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::with_burst(2.0, 50.0, t0);
        assert_eq!((0..60).filter(|_| b.try_take(t0)).count(), 50);
        assert!(!b.try_take(t0 + Duration::from_millis(400)));
        assert!(b.try_take(t0 + Duration::from_millis(500)));
        assert_eq!((0..60).filter(|_| b.try_take(t0 + Duration::from_secs(100))).count(), 50);
    }
}
