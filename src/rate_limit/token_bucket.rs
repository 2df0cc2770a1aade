//! A token bucket: `rate` tokens per second, bursts up to `rate`.
//! Must not allocate or lock: it lives inside one connection's state.

use tokio::time::Instant;

/// Allows `rate` events per second on average, with bursts of up to `rate`.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `per_second`.
    pub fn new(per_second: u32, now: Instant) -> Self {
        let rate = f64::from(per_second.max(1));
        Self { rate, tokens: rate, updated: now }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
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
}
