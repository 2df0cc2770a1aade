//! Announcing what the cluster decided with no socket of this node involved (a dead node's
//! subscribers removed by the reaper here, leaves recorded late after a Redis outage): the
//! webhooks and `subscription_count` event a socket's leave would have sent.
//! Must not decide anything: the cluster driver reports, this only announces.

use std::sync::Arc;

use crate::apps::AppStore;
use crate::cluster::{Bus, Transitions};
use crate::protocol::{WebhookEvent, WebhookKind, server_event};
use crate::webhooks::Webhooks;

/// The announcer handed to a cluster driver.
pub struct Announcer {
    apps: Arc<dyn AppStore>,
    webhooks: Webhooks,
    bus: Arc<dyn Bus>,
}

impl Announcer {
    /// Announces through `webhooks` and `bus`, for the apps of `apps`.
    pub fn new(apps: Arc<dyn AppStore>, webhooks: Webhooks, bus: Arc<dyn Bus>) -> Self {
        Self { apps, webhooks, bus }
    }
}

#[async_trait::async_trait]
impl Transitions for Announcer {
    async fn left(&self, app_id: &str, channel: &str, removed: &[String], vacated: bool, subscription_count: usize) {
        let app = match self.apps.find_by_id(app_id).await {
            Ok(Some(app)) => app,
            Ok(None) => return,
            Err(e) => return tracing::warn!(error = %e, "app unavailable; its webhooks are not sent"),
        };
        for user in removed {
            self.webhooks.emit(&app, WebhookEvent::member(WebhookKind::MemberRemoved, channel, user));
        }
        if vacated {
            self.webhooks.emit(&app, WebhookEvent::channel(WebhookKind::ChannelVacated, channel));
            return;
        }
        if channel.starts_with("presence-") || subscription_count == 0 {
            return;
        }
        if app.wants_webhook(WebhookKind::SubscriptionCount, channel) {
            let event = WebhookEvent {
                subscription_count: Some(subscription_count),
                ..WebhookEvent::channel(WebhookKind::SubscriptionCount, channel)
            };
            self.webhooks.emit(&app, event);
        }
        if app.features.subscription_count {
            let frame = server_event::subscription_count(channel, subscription_count).into();
            if let Err(e) = self.bus.publish_queued(app_id, channel, frame, None) {
                tracing::warn!(error = %e, "subscription count not published");
            }
        }
    }
}
