//! The vacate delay: `channel_vacated` and `member_removed` wait, and are cancelled (with the
//! re-add) when the channel or member comes back in time.
//! Must not read the clock: callers pass `now`.

use std::collections::HashMap;

use tokio::time::{Duration, Instant};

use super::Queued;
use crate::protocol::WebhookKind;

/// (app id, channel, user id for member events).
type Key = (String, String, Option<String>);

/// Events held back until their deadline.
#[derive(Debug, Default)]
pub(super) struct Held {
    entries: HashMap<Key, (Instant, Queued)>,
}

/// What to do with an incoming event.
#[derive(Debug)]
pub(super) enum Admit {
    /// Send it (batch it).
    Send(Queued),
    /// Held back until its deadline.
    Held,
    /// It cancelled a held removal: send neither.
    Cancelled,
}

fn key(q: &Queued) -> Key {
    (q.app.id.clone(), q.event.channel.clone(), q.event.user_id.clone())
}

impl Held {
    /// Holds removals, cancels a held removal when its re-add arrives, passes the rest.
    pub(super) fn admit(&mut self, q: Queued, now: Instant, delay: Duration) -> Admit {
        match q.event.kind {
            WebhookKind::ChannelVacated | WebhookKind::MemberRemoved if !delay.is_zero() => {
                self.entries.insert(key(&q), (now + delay, q));
                Admit::Held
            }
            WebhookKind::ChannelOccupied | WebhookKind::MemberAdded => match self.entries.remove(&key(&q)) {
                Some(_) => Admit::Cancelled,
                None => Admit::Send(q),
            },
            WebhookKind::ChannelVacated
            | WebhookKind::MemberRemoved
            | WebhookKind::ClientEvent
            | WebhookKind::CacheMiss
            | WebhookKind::SubscriptionCount => Admit::Send(q),
        }
    }

    /// The earliest deadline, if anything is held.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.entries.values().map(|(t, _)| *t).min()
    }

    /// Removes and returns what is due at `now` (everything with `now = None`), oldest first.
    pub(super) fn release(&mut self, now: Option<Instant>) -> Vec<Queued> {
        let due: Vec<Key> =
            self.entries.iter().filter(|(_, (t, _))| now.is_none_or(|n| *t <= n)).map(|(k, _)| k.clone()).collect();
        let mut out: Vec<(Instant, Queued)> = due.iter().filter_map(|k| self.entries.remove(k)).collect();
        out.sort_by_key(|(t, _)| *t);
        out.into_iter().map(|(_, q)| q).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::protocol::WebhookEvent;

    fn q(kind: WebhookKind, channel: &str, user: Option<&str>) -> Queued {
        let app = Arc::new(crate::apps::App::from(&crate::config::AppConfig::development()));
        let event = match user {
            Some(u) => WebhookEvent::member(kind, channel, u),
            None => WebhookEvent::channel(kind, channel),
        };
        Queued { app, event }
    }

    #[test]
    fn removals_wait_and_re_adds_cancel_them() {
        let (t0, d) = (Instant::now(), Duration::from_secs(3));
        let mut h = Held::default();
        assert!(matches!(h.admit(q(WebhookKind::ChannelVacated, "a", None), t0, d), Admit::Held));
        assert!(matches!(h.admit(q(WebhookKind::MemberRemoved, "p", Some("1")), t0, d), Admit::Held));
        assert!(matches!(h.admit(q(WebhookKind::ChannelOccupied, "a", None), t0, d), Admit::Cancelled));
        assert!(matches!(h.admit(q(WebhookKind::MemberAdded, "p", Some("2")), t0, d), Admit::Send(_)));
        assert_eq!(h.next_deadline(), Some(t0 + d));
        assert!(h.release(Some(t0 + Duration::from_secs(2))).is_empty());
        let out = h.release(Some(t0 + d));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].event.user_id.as_deref(), Some("1"));
        assert!(matches!(h.admit(q(WebhookKind::ChannelVacated, "a", None), t0, Duration::ZERO), Admit::Send(_)));
    }
}
