//! Giving back what a socket holds in the registry: one channel, the signed-in user, or all of
//! it when the connection is dropped; and the `subscription_count` announcements that follow.
//! Must not await: the drop guard runs it synchronously, so what needs the network (count
//! events, watchlist notices) is returned to the caller, or spawned when the caller is `Drop`.

use std::sync::Arc;

use bytestring::ByteString;
use tokio::time::{Duration, Instant};

use super::Connection;
use crate::adapter::Adapter;
use crate::apps::App;
use crate::protocol::server_event::{self, WatchlistStatus};
use crate::protocol::{ChannelKind, ChannelName, WebhookEvent, WebhookKind};
use crate::registry::{Channel, CountDue};
use crate::webhooks::Webhooks;

/// Channels with more subscribers than this get throttled `subscription_count` announcements.
const COUNT_THROTTLE_ABOVE: usize = 100;
/// At most one announcement (event and webhook) per this interval on such channels (Pusher's
/// cadence).
const COUNT_THROTTLE_EVERY: Duration = Duration::from_secs(5);

impl Connection {
    /// Leaves `channel` in the registry, counting and queueing its webhooks. Returns the
    /// `subscription_count` event to publish, if one is due.
    pub(super) fn release(&mut self, channel: &str) -> Option<(ChannelName, ByteString)> {
        let (name, _) = self.channels.remove_entry(channel)?;
        if name.kind() == ChannelKind::User {
            return None;
        }
        let left = self.me.ns.leave(name.as_str(), &self.me.socket_id);
        if !left.was_subscribed {
            return None;
        }
        if let Some(uid) = left.member_removed {
            self.me.metrics.presence_members.dec();
            self.webhook(WebhookEvent::member(WebhookKind::MemberRemoved, name.as_str(), &uid));
        }
        if left.vacated {
            self.me.metrics.channels.dec();
            self.webhook(WebhookEvent::channel(WebhookKind::ChannelVacated, name.as_str()));
        }
        let frame = self.count_announcement(&name, left.subscription_count)?;
        Some((name, frame))
    }

    /// Unbinds the signed-in user. Returns its id when this was its last socket on the node.
    pub(super) fn release_user(&mut self) -> Option<String> {
        let user = self.user.take()?;
        self.me.ns.unwatch(&self.me.socket_id, &user.watchlist);
        self.me.ns.sign_out(&user.id, &self.me.socket_id).then_some(user.id)
    }

    /// The `subscription_count` webhook and event for a non-presence channel at `count`
    /// subscribers. Above `COUNT_THROTTLE_ABOVE` subscribers both go out at most once per
    /// `COUNT_THROTTLE_EVERY`; a delayed one carries the count current when it goes out.
    /// Returns the event to publish now, if the app wants events.
    pub(super) fn count_announcement(&self, name: &ChannelName, count: usize) -> Option<ByteString> {
        let app = &self.me.app;
        let hook = app.wants_webhook(WebhookKind::SubscriptionCount, name.as_str());
        let event = app.features.subscription_count;
        if name.kind() == ChannelKind::Presence || count == 0 || !(hook || event) {
            return None;
        }
        if count > COUNT_THROTTLE_ABOVE
            && let Some(channel) = self.me.ns.channel(name.as_str())
        {
            match channel.count_due(Instant::now(), COUNT_THROTTLE_EVERY) {
                CountDue::Now => {}
                CountDue::Scheduled => return None,
                CountDue::Later(at) => {
                    let later = Later {
                        channel,
                        name: name.clone(),
                        app: app.clone(),
                        adapter: self.deps.adapter.clone(),
                        webhooks: self.deps.webhooks.clone(),
                    };
                    tokio::spawn(later.announce(at, hook, event));
                    return None;
                }
            }
        }
        if hook {
            self.webhook(count_webhook(name, count));
        }
        event.then(|| server_event::subscription_count(name.as_str(), count).into())
    }

    /// Releases whatever is still held: every channel, the user, the connection's slot.
    /// `close` leaves nothing for it but the slot; a cancelled or panicked session leaves all.
    pub(super) fn release_all(&mut self) {
        let names: Vec<ChannelName> = self.channels.keys().cloned().collect();
        let counts: Vec<(ChannelName, ByteString)> = names.iter().filter_map(|n| self.release(n.as_str())).collect();
        let offline = self.release_user();
        self.me.ns.remove_socket(&self.me.socket_id);
        self.me.metrics.connections.dec();
        self.me.metrics.disconnects.inc();
        if counts.is_empty() && offline.is_none() {
            return;
        }
        // Only a session that did not run `close` gets here: announce from a task of our own.
        let (adapter, app_id) = (self.deps.adapter.clone(), self.me.app.id.clone());
        let announce = async move {
            for (name, frame) in counts {
                publish(adapter.as_ref(), &app_id, &name, frame).await;
            }
            if let Some(user_id) = offline {
                notify_watchers(adapter.as_ref(), &app_id, &user_id, WatchlistStatus::Offline).await;
            }
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(announce);
        }
    }
}

/// Publishes a count announcement on `channel`; a failure is logged (nobody waits on it).
pub(super) async fn publish(adapter: &dyn Adapter, app_id: &str, channel: &ChannelName, frame: ByteString) {
    if let Err(e) = adapter.publish(app_id, channel.as_str(), frame, None).await {
        tracing::warn!(error = %e, "publish failed");
    }
}

/// Tells every socket watching `user_id` that it went online or offline.
pub(super) async fn notify_watchers(adapter: &dyn Adapter, app_id: &str, user_id: &str, status: WatchlistStatus) {
    if let Err(e) = adapter.watchlist_changed(app_id, user_id, status).await {
        tracing::warn!(error = %e, "watchlist notification failed");
    }
}

fn count_webhook(name: &ChannelName, count: usize) -> WebhookEvent {
    WebhookEvent {
        subscription_count: Some(count),
        ..WebhookEvent::channel(WebhookKind::SubscriptionCount, name.as_str())
    }
}

/// A throttled announcement, sent when its turn comes.
struct Later {
    channel: Arc<Channel>,
    name: ChannelName,
    app: Arc<App>,
    adapter: Arc<dyn Adapter>,
    webhooks: Webhooks,
}

impl Later {
    async fn announce(self, at: Instant, hook: bool, event: bool) {
        tokio::time::sleep_until(at).await;
        self.channel.count_sent(Instant::now());
        let count = self.channel.subscription_count();
        if count == 0 {
            return;
        }
        if hook {
            self.webhooks.emit(&self.app, count_webhook(&self.name, count));
        }
        if event {
            let frame = server_event::subscription_count(self.name.as_str(), count).into();
            publish(self.adapter.as_ref(), &self.app.id, &self.name, frame).await;
        }
    }
}
