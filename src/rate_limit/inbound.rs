//! The inbound budget of one connection: every message a client sends (text, ping, pong,
//! binary) spends a token; messages over budget are refused, and a client that keeps sending
//! over budget is closed.
//! Must not decide what goes on the wire: the transport maps each verdict to frames.

use tokio::time::Instant;

use super::TokenBucket;

/// The inbound budget's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InboundLimits {
    /// Messages per second a connection may send on average.
    pub per_second: u32,
    /// Messages a connection may send at once (a page subscribing to all its channels at connect).
    pub burst: u32,
    /// Refused messages tolerated, forgiven over `FORGIVE_SECS`; one more closes the socket.
    pub refused_before_close: u32,
}

/// Seconds over which a connection's refused messages are forgiven.
const FORGIVE_SECS: f32 = 10.0;

/// What to do with one inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within budget: handle it.
    Admit,
    /// Over budget: drop it (and tell the client).
    Refuse,
    /// Over budget for too long: close the connection (reconnect later).
    Close,
}

/// One connection's budget.
#[derive(Clone, Debug)]
pub struct InboundBudget {
    messages: TokenBucket,
    refusals: TokenBucket,
}

impl InboundBudget {
    /// A full budget at `now`.
    pub fn new(limits: InboundLimits, now: Instant) -> Self {
        let refused = limits.refused_before_close as f32;
        Self {
            messages: TokenBucket::with_burst(limits.per_second as f32, limits.burst as f32, now),
            refusals: TokenBucket::with_burst(refused / FORGIVE_SECS, refused, now),
        }
    }

    /// Spends one message at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.messages.try_take(now) {
            Verdict::Admit
        } else if self.refusals.try_take(now) {
            Verdict::Refuse
        } else {
            Verdict::Close
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Duration;

    #[test]
    fn burst_then_rate_then_refusals_then_close() {
        let t0 = Instant::now();
        let limits = InboundLimits { per_second: 10, burst: 100, refused_before_close: 5 };
        let mut b = InboundBudget::new(limits, t0);
        assert!((0..100).all(|_| b.check(t0) == Verdict::Admit));
        assert!((0..5).all(|_| b.check(t0) == Verdict::Refuse));
        assert_eq!(b.check(t0), Verdict::Close);
        // A second later: ten more admitted, and half a refusal forgiven (5 per 10 s).
        let t1 = t0 + Duration::from_secs(1);
        assert!((0..10).all(|_| b.check(t1) == Verdict::Admit));
        assert_eq!(b.check(t1 + Duration::from_secs(2)), Verdict::Admit);
    }

    #[test]
    fn a_client_within_its_rate_is_never_refused() {
        let t0 = Instant::now();
        let limits = InboundLimits { per_second: 10, burst: 10, refused_before_close: 1 };
        let mut b = InboundBudget::new(limits, t0);
        for i in 0..10_000u64 {
            assert_eq!(b.check(t0 + Duration::from_millis(100 * i)), Verdict::Admit, "message {i}");
        }
    }
}
