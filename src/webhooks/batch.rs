//! One app's batch of webhook events: collected for a short window, then sent as one request.
//! Must not send anything: the dispatcher takes full or due batches to delivery.

use std::sync::Arc;

use tokio::time::Instant;

use crate::apps::App;
use crate::protocol::{WebhookEvent, WebhookKind};

/// Events of one app waiting to go out together.
#[derive(Debug)]
pub(super) struct Batch {
    pub(super) app: Arc<App>,
    pub(super) events: Vec<WebhookEvent>,
    /// When the first event arrived; the batch is due one window later.
    pub(super) started: Instant,
}

impl Batch {
    pub(super) fn new(app: Arc<App>, now: Instant) -> Self {
        Self { app, events: Vec::new(), started: now }
    }

    /// Adds an event. A newer `subscription_count` of a channel replaces the older one, and a
    /// second `cache_miss` of a channel is dropped (Pusher de-duplicates it).
    pub(super) fn push(&mut self, event: WebhookEvent) {
        let same = |e: &WebhookEvent| e.kind == event.kind && e.channel == event.channel;
        match event.kind {
            WebhookKind::SubscriptionCount => match self.events.iter_mut().find(|e| same(e)) {
                Some(old) => *old = event,
                None => self.events.push(event),
            },
            WebhookKind::CacheMiss if self.events.iter().any(same) => {}
            WebhookKind::CacheMiss
            | WebhookKind::ChannelOccupied
            | WebhookKind::ChannelVacated
            | WebhookKind::MemberAdded
            | WebhookKind::MemberRemoved
            | WebhookKind::ClientEvent => self.events.push(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_counts_and_dedupes_cache_misses() {
        let app = Arc::new(App::from(&crate::config::AppConfig::development()));
        let mut b = Batch::new(app, Instant::now());
        let count = |n| WebhookEvent {
            subscription_count: Some(n),
            ..WebhookEvent::channel(WebhookKind::SubscriptionCount, "a")
        };
        b.push(count(1));
        b.push(WebhookEvent::channel(WebhookKind::CacheMiss, "c"));
        b.push(count(2));
        b.push(WebhookEvent::channel(WebhookKind::CacheMiss, "c"));
        b.push(WebhookEvent::channel(WebhookKind::ChannelOccupied, "a"));
        assert_eq!(b.events.len(), 3);
        assert_eq!(b.events[0].subscription_count, Some(2));
    }
}
