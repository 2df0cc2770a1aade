//! Last event of each cache channel, with a time to live.
//! Must not read the clock itself: callers pass `now`, so expiry is testable.

use dashmap::DashMap;
use tokio::time::{Duration, Instant};

/// A cached channel event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedEvent {
    /// Event name.
    pub event: String,
    /// Event data, verbatim.
    pub data: String,
    /// When it stops being served.
    pub expires_at: Instant,
}

impl CachedEvent {
    /// Seconds left at `now`, rounded up.
    pub fn ttl_secs(&self, now: Instant) -> u64 {
        let left = self.expires_at.saturating_duration_since(now);
        left.as_secs() + u64::from(left.subsec_nanos() > 0)
    }
}

/// Cache channel → last event, per app.
#[derive(Debug, Default)]
pub struct EventCache {
    entries: DashMap<(String, String), CachedEvent>,
}

impl EventCache {
    /// Stores the last event of `channel` for `ttl`.
    pub fn put(&self, app: &str, channel: &str, event: &str, data: &str, now: Instant, ttl: Duration) {
        let value = CachedEvent { event: event.to_owned(), data: data.to_owned(), expires_at: now + ttl };
        self.entries.insert((app.to_owned(), channel.to_owned()), value);
    }

    /// The live cached event of `channel`, if any.
    pub fn get(&self, app: &str, channel: &str, now: Instant) -> Option<CachedEvent> {
        let key = (app.to_owned(), channel.to_owned());
        let hit = self.entries.get(&key).map(|e| e.value().clone())?;
        if hit.expires_at > now {
            Some(hit)
        } else {
            self.entries.remove_if(&key, |_, v| v.expires_at <= now);
            None
        }
    }

    /// Drops every expired entry (run periodically so unread channels do not pile up).
    pub fn sweep(&self, now: Instant) {
        self.entries.retain(|_, v| v.expires_at > now);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires() {
        let c = EventCache::default();
        let t0 = Instant::now();
        c.put("a", "cache-x", "e", "d", t0, Duration::from_secs(10));
        assert_eq!(c.get("a", "cache-x", t0).unwrap().ttl_secs(t0), 10);
        assert!(c.get("b", "cache-x", t0).is_none());
        assert!(c.get("a", "cache-x", t0 + Duration::from_secs(10)).is_none());
        c.put("a", "cache-y", "e", "d", t0, Duration::from_secs(1));
        c.sweep(t0 + Duration::from_secs(2));
        assert!(c.is_empty());
    }
}
