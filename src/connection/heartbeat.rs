//! Liveness decisions for one socket: when to probe a silent client, when to give up.
//! Must not touch the socket or read the clock: it takes `now` and returns a decision.

use tokio::time::{Duration, Instant};

/// What the session should do when the heartbeat deadline passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Beat {
    /// Nothing due yet; sleep until this instant.
    Wait(Instant),
    /// The client was silent for the activity timeout: send a WebSocket ping, then wait.
    Ping(Instant),
    /// A ping went unanswered for the pong timeout: close with 4201.
    PongTimeout,
    /// The app requires signin and the connection never authorized in time: close with 4009.
    Unauthorized,
}

/// Tracks the last inbound frame and an outstanding ping.
///
/// Any inbound frame (text, ping or pong) proves liveness. Outbound traffic does not: a
/// receive-only client on a busy channel is probed with a ping, which browsers answer on their
/// own, so it is never dropped merely for being quiet.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    last_seen: Instant,
    ping_sent: Option<Instant>,
    activity_timeout: Duration,
    pong_timeout: Duration,
    auth_deadline: Option<Instant>,
}

impl Heartbeat {
    /// Starts at `now`; `auth_timeout` is set when the app requires user authentication.
    pub fn new(
        now: Instant,
        activity_timeout: Duration,
        pong_timeout: Duration,
        auth_timeout: Option<Duration>,
    ) -> Self {
        Self {
            last_seen: now,
            ping_sent: None,
            activity_timeout,
            pong_timeout,
            auth_deadline: auth_timeout.map(|t| now + t),
        }
    }

    /// Records an inbound frame.
    pub fn seen(&mut self, now: Instant) {
        self.last_seen = now;
        self.ping_sent = None;
    }

    /// The connection authorized itself (signin, or a private/presence subscription).
    pub fn authorized(&mut self) {
        self.auth_deadline = None;
    }

    /// Decides what is due at `now`.
    pub fn poll(&mut self, now: Instant) -> Beat {
        if self.auth_deadline.is_some_and(|d| now >= d) {
            return Beat::Unauthorized;
        }
        let next = match self.ping_sent {
            Some(sent) if now >= sent + self.pong_timeout => return Beat::PongTimeout,
            Some(sent) => sent + self.pong_timeout,
            None if now >= self.last_seen + self.activity_timeout => {
                self.ping_sent = Some(now);
                return Beat::Ping(self.earliest(now + self.pong_timeout));
            }
            None => self.last_seen + self.activity_timeout,
        };
        Beat::Wait(self.earliest(next))
    }

    fn earliest(&self, t: Instant) -> Instant {
        self.auth_deadline.map_or(t, |d| d.min(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn pings_after_silence_then_times_out() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, 120 * S, 30 * S, None);
        assert_eq!(hb.poll(t0), Beat::Wait(t0 + 120 * S));
        assert_eq!(hb.poll(t0 + 120 * S), Beat::Ping(t0 + 150 * S));
        assert_eq!(hb.poll(t0 + 140 * S), Beat::Wait(t0 + 150 * S));
        assert_eq!(hb.poll(t0 + 150 * S), Beat::PongTimeout);
    }

    #[test]
    fn any_inbound_frame_answers_the_ping() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, 120 * S, 30 * S, None);
        assert!(matches!(hb.poll(t0 + 120 * S), Beat::Ping(_)));
        hb.seen(t0 + 121 * S);
        assert_eq!(hb.poll(t0 + 150 * S), Beat::Wait(t0 + 241 * S));
    }

    #[test]
    fn activity_resets_the_idle_clock() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, 10 * S, 5 * S, None);
        hb.seen(t0 + 9 * S);
        assert_eq!(hb.poll(t0 + 10 * S), Beat::Wait(t0 + 19 * S));
    }

    #[test]
    fn unauthorized_connections_are_closed_at_the_deadline() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, 120 * S, 30 * S, Some(30 * S));
        assert_eq!(hb.poll(t0), Beat::Wait(t0 + 30 * S));
        assert_eq!(hb.poll(t0 + 30 * S), Beat::Unauthorized);
        let mut hb = Heartbeat::new(t0, 120 * S, 30 * S, Some(30 * S));
        hb.authorized();
        assert_eq!(hb.poll(t0 + 30 * S), Beat::Wait(t0 + 120 * S));
    }
}
