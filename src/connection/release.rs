//! Giving back what a socket holds in the cluster: one channel, the signed-in user, or all of it
//! (with the connection slot) when the socket ends; and the `subscription_count` announcements
//! that follow. One path for `close`, `pusher:unsubscribe` and the drop guard's own task.
//! Must not borrow the `Connection`: the drop guard runs it from a task after the connection is
//! gone, with only the socket's `Identity` and the shared dependencies.

use std::sync::Arc;

use bytestring::ByteString;
use tokio::time::{Duration, Instant};

use super::{ConnDeps, Connection, Identity};
use crate::apps::App;
use crate::cluster::Bus;
use crate::protocol::server_event::{self, WatchlistStatus};
use crate::protocol::{ChannelKind, ChannelName, UserData, WebhookEvent, WebhookKind};
use crate::registry::{Channel, CountDue};

/// Channels with more subscribers than this get throttled `subscription_count` announcements.
const COUNT_THROTTLE_ABOVE: usize = 100;
/// At most one announcement (event and webhook) per this interval on such channels (Pusher's
/// cadence).
const COUNT_THROTTLE_EVERY: Duration = Duration::from_secs(5);
/// Channels left between two yields of a release: leaving a thousand channels must not hold the
/// worker for the whole time.
const LEAVES_PER_YIELD: usize = 64;

/// What a connection still holds when it ends.
pub(super) struct Holdings {
    /// Subscribed channels.
    pub(super) channels: Vec<ChannelName>,
    /// The signed-in user.
    pub(super) user: Option<UserData>,
}

impl Connection {
    /// Leaves one channel (a no-op unless subscribed): roster, `member_removed`, counts.
    pub(super) async fn unsubscribe(&mut self, channel: &str) {
        if let Some((name, _)) = self.channels.remove_entry(channel) {
            self.debug_unsubscribed(name.as_str());
            leave(&self.me, &self.deps, &name).await;
        }
    }
}

/// Queues a webhook event for the socket's app (a no-op when no target wants it).
pub(super) fn webhook(me: &Identity, deps: &ConnDeps, event: WebhookEvent) {
    deps.webhooks.emit(&me.app, event);
}

/// Leaves `name` in the cluster, counting and queueing its webhooks and announcing the new
/// subscription count.
pub(super) async fn leave(me: &Identity, deps: &ConnDeps, name: &ChannelName) {
    if name.kind() == ChannelKind::User {
        return;
    }
    let left = deps.cluster.state.leave(&me.ns, name, &me.socket_id).await;
    if !left.was_subscribed {
        return;
    }
    let (here_vacated, here_member) = left.here;
    if here_member {
        me.metrics.presence_members.dec();
    }
    if here_vacated {
        me.metrics.channels.dec();
    }
    match left.held {
        None => {
            if let Some(uid) = &left.member_removed {
                webhook(me, deps, WebhookEvent::member(WebhookKind::MemberRemoved, name.as_str(), uid));
            }
            if left.vacated {
                webhook(me, deps, WebhookEvent::channel(WebhookKind::ChannelVacated, name.as_str()));
            }
        }
        Some(token) => {
            let user = left.member_removed.as_deref().map(str::to_owned);
            let held = Held { name: name.clone(), user, vacated: left.vacated, token };
            tokio::spawn(held.announce(me.app.clone(), deps.clone()));
        }
    }
    if let Some(frame) = count_announcement(me, deps, name, left.subscription_count) {
        publish(deps.cluster.bus.as_ref(), &me.app.id, name, frame);
    }
}

/// Unbinds the signed-in user; its last socket anywhere makes it go offline for its watchers.
pub(super) async fn sign_out(me: &Identity, deps: &ConnDeps, user: UserData) {
    if deps.cluster.state.sign_out(&me.ns, &user.id, &me.socket_id, &user.watchlist).await {
        notify_watchers(deps.cluster.bus.as_ref(), &me.app.id, &user.id, WatchlistStatus::Offline).await;
    }
}

/// Releases everything `held`, then the connection slot.
pub(super) async fn release_all(me: &Identity, deps: &ConnDeps, held: Holdings) {
    for (i, name) in held.channels.iter().enumerate() {
        if i > 0 && i % LEAVES_PER_YIELD == 0 {
            tokio::task::yield_now().await;
        }
        leave(me, deps, name).await;
    }
    if let Some(user) = held.user {
        sign_out(me, deps, user).await;
    }
    deps.cluster.state.disconnect(&me.ns, &me.socket_id).await;
    me.metrics.connections.dec();
    me.metrics.disconnects.inc();
}

/// The `subscription_count` webhook and event for a non-presence channel at `count`
/// subscribers. Above `COUNT_THROTTLE_ABOVE` subscribers both go out at most once per
/// `COUNT_THROTTLE_EVERY` from this node; a delayed one carries the count current when it goes
/// out. Returns the event to publish now, if the app wants events.
pub(super) fn count_announcement(
    me: &Identity,
    deps: &ConnDeps,
    name: &ChannelName,
    count: usize,
) -> Option<ByteString> {
    let app = &me.app;
    let hook = app.wants_webhook(WebhookKind::SubscriptionCount, name.as_str());
    let event = app.features.subscription_count;
    if name.kind() == ChannelKind::Presence || count == 0 || !(hook || event) {
        return None;
    }
    if count > COUNT_THROTTLE_ABOVE
        && let Some(channel) = me.ns.channel(name.as_str())
    {
        match channel.count_due(Instant::now(), COUNT_THROTTLE_EVERY) {
            CountDue::Now => {}
            CountDue::Scheduled => return None,
            CountDue::Later(at) => {
                let later = Later { channel, name: name.clone(), app: app.clone(), deps: deps.clone() };
                tokio::spawn(later.announce(at, hook, event));
                return None;
            }
        }
    }
    if hook {
        webhook(me, deps, count_webhook(name, count));
    }
    event.then(|| server_event::subscription_count(name.as_str(), count).into())
}

/// Queues a count announcement on `channel`; a failure is logged (nobody waits on it).
pub(super) fn publish(bus: &dyn Bus, app_id: &str, channel: &ChannelName, frame: ByteString) {
    if let Err(e) = bus.publish_queued(app_id, channel.as_str(), frame, None) {
        tracing::warn!(error = %e, "publish failed");
    }
}

/// Tells every socket watching `user_id` that it went online or offline.
pub(super) async fn notify_watchers(bus: &dyn Bus, app_id: &str, user_id: &str, status: WatchlistStatus) {
    if let Err(e) = bus.watchlist_changed(app_id, user_id, status).await {
        tracing::warn!(error = %e, "watchlist notification failed");
    }
}

fn count_webhook(name: &ChannelName, count: usize) -> WebhookEvent {
    WebhookEvent {
        subscription_count: Some(count),
        ..WebhookEvent::channel(WebhookKind::SubscriptionCount, name.as_str())
    }
}

/// A vacate and a removal the cluster holds for the vacate delay: announced after it, if no
/// join anywhere cancelled them.
struct Held {
    name: ChannelName,
    user: Option<String>,
    vacated: bool,
    token: u64,
}

impl Held {
    async fn announce(self, app: Arc<App>, deps: ConnDeps) {
        tokio::time::sleep(deps.settings.vacate_delay).await;
        let state = &deps.cluster.state;
        let channel = self.name.as_str();
        let (vacate, removal) =
            state.removal_stands(&app.id, channel, self.user.as_deref(), self.vacated, self.token).await;
        if let (true, Some(user)) = (removal, &self.user) {
            deps.webhooks.emit_now(&app, WebhookEvent::member(WebhookKind::MemberRemoved, channel, user));
        }
        if vacate {
            deps.webhooks.emit_now(&app, WebhookEvent::channel(WebhookKind::ChannelVacated, channel));
        }
        let cancelled = u64::from(self.vacated && !vacate) + u64::from(self.user.is_some() && !removal);
        if cancelled > 0 {
            deps.metrics.webhook_events(&app.id, "cancelled", cancelled);
        }
    }
}

/// A throttled announcement, sent when its turn comes.
struct Later {
    channel: Arc<Channel>,
    name: ChannelName,
    app: Arc<App>,
    deps: ConnDeps,
}

impl Later {
    async fn announce(self, at: Instant, hook: bool, event: bool) {
        tokio::time::sleep_until(at).await;
        self.channel.count_sent(Instant::now());
        let count = match self.deps.cluster.queries.channel(&self.app.id, self.name.as_str()).await {
            Ok(Some(stats)) => stats.subscription_count,
            Ok(None) => 0,
            Err(e) => return tracing::warn!(error = %e, "subscription count unavailable"),
        };
        if count == 0 {
            return;
        }
        if hook {
            self.deps.webhooks.emit(&self.app, count_webhook(&self.name, count));
        }
        if event {
            let frame = server_event::subscription_count(self.name.as_str(), count).into();
            publish(self.deps.cluster.bus.as_ref(), &self.app.id, &self.name, frame);
        }
    }
}
