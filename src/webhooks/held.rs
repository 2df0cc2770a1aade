//! The vacate delay: `channel_vacated` and `member_removed` wait, and are cancelled (with the
//! re-add) when the channel or member comes back in time.
//! Must not read the clock: callers pass `now`.
//!
//! Every held event waits the same delay, so deadlines come in the order events are held: a
//! queue in that order plus a map by key make holding, cancelling and releasing O(1) each,
//! however many events a rolling deploy holds at once.

use std::collections::{HashMap, VecDeque};

use tokio::time::{Duration, Instant};

use super::Queued;
use crate::protocol::WebhookKind;

/// (app id, channel, user id for member events).
type Key = (String, String, Option<String>);

/// Events held back until their deadline.
#[derive(Debug, Default)]
pub(super) struct Held {
    /// The event held for each key, with the generation of its place in `order`.
    entries: HashMap<Key, (u64, Queued)>,
    /// Deadlines in the order they fall. A cancelled or replaced entry leaves its place behind,
    /// recognised by its stale generation and skipped when reached.
    order: VecDeque<(Instant, u64, Key)>,
    next_generation: u64,
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
            _ if q.due => Admit::Send(q),
            WebhookKind::ChannelVacated | WebhookKind::MemberRemoved if !delay.is_zero() => {
                let generation = self.next_generation;
                self.next_generation += 1;
                let k = key(&q);
                self.order.push_back((now + delay, generation, k.clone()));
                self.entries.insert(k, (generation, q));
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
    pub(super) fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_stale();
        self.order.front().map(|(t, _, _)| *t)
    }

    /// Removes and returns what is due at `now` (everything with `now = None`), oldest first.
    pub(super) fn release(&mut self, now: Option<Instant>) -> Vec<Queued> {
        let mut out = Vec::new();
        while let Some((t, _, _)) = self.order.front() {
            if now.is_some_and(|n| *t > n) {
                break;
            }
            let Some((_, generation, k)) = self.order.pop_front() else { break };
            if self.entries.get(&k).is_some_and(|(g, _)| *g == generation)
                && let Some((_, q)) = self.entries.remove(&k)
            {
                out.push(q);
            }
        }
        out
    }

    /// Drops places at the front that no longer hold an event.
    fn skip_stale(&mut self) {
        while let Some((_, generation, k)) = self.order.front() {
            if self.entries.get(k).is_some_and(|(g, _)| g == generation) {
                return;
            }
            self.order.pop_front();
        }
    }

    /// Events held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
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
        Queued { app, event, due: false }
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

    #[test]
    fn many_held_events_release_in_order_and_cancellations_leave_nothing() {
        let (t0, d) = (Instant::now(), Duration::from_secs(3));
        let mut h = Held::default();
        let names: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            let at = t0 + Duration::from_millis(i as u64 / 10);
            let q = Queued { event: WebhookEvent::channel(WebhookKind::ChannelVacated, name), ..q0() };
            assert!(matches!(h.admit(q, at, d), Admit::Held));
        }
        // Half come back in time.
        for name in names.iter().step_by(2) {
            let q = Queued { event: WebhookEvent::channel(WebhookKind::ChannelOccupied, name), ..q0() };
            assert!(matches!(h.admit(q, t0 + Duration::from_secs(1), d), Admit::Cancelled));
        }
        assert_eq!(h.len(), 5_000);
        assert_eq!(h.next_deadline(), Some(t0 + d), "c1 is first");
        let first = h.release(Some(t0 + d + Duration::from_millis(499)));
        assert_eq!(first.len(), 2_500);
        assert_eq!(first[0].event.channel, "c1");
        let rest = h.release(None);
        assert_eq!(rest.len(), 2_500);
        assert_eq!((h.len(), h.next_deadline()), (0, None));
        assert!(h.order.is_empty(), "no stale places left behind");
    }

    fn q0() -> Queued {
        q(WebhookKind::ChannelVacated, "x", None)
    }
}
