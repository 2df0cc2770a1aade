//! `pusher:subscribe` / `pusher:unsubscribe`: authorization, presence join/leave, cache replay.
//! Must not write to the socket: replies go into the caller's buffer, broadcasts to the adapter.

use std::sync::Arc;

use bytestring::ByteString;
use tokio::time::Instant;

use super::Connection;
use crate::metrics::Rejection;
use crate::protocol::signature::{self, channel_string, presence_string};
use crate::protocol::{
    ChannelKind, ChannelName, PresenceMember, Subscribe, SubscriptionErrorKind, WebhookEvent, WebhookKind, server_event,
};
use crate::registry::{CountDue, Joined};

/// Channels with more subscribers than this get throttled `subscription_count` events.
const COUNT_THROTTLE_ABOVE: usize = 100;
/// At most one `subscription_count` event per this interval on such channels (Pusher's cadence).
const COUNT_THROTTLE_EVERY: tokio::time::Duration = tokio::time::Duration::from_secs(5);

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
enum SubscribeError {
    #[error("Invalid channel name")]
    BadName,
    #[error("Invalid signature")]
    BadSignature,
    #[error("Invalid channel_data: {0}")]
    BadChannelData(crate::protocol::ProtocolError),
    #[error("Presence channels require channel_data or a signed-in user")]
    NotSignedIn,
    #[error("Only the user's own connections may subscribe to its channel")]
    NotThisUser,
    #[error("The presence channel is full")]
    PresenceFull,
}

impl SubscribeError {
    fn kind(&self) -> (SubscriptionErrorKind, Rejection) {
        match self {
            Self::BadName | Self::BadChannelData(_) => {
                (SubscriptionErrorKind::BadRequest, Rejection::SubscriptionRefused)
            }
            Self::BadSignature | Self::NotSignedIn | Self::NotThisUser => {
                (SubscriptionErrorKind::AuthError, Rejection::SubscriptionRefused)
            }
            Self::PresenceFull => (SubscriptionErrorKind::LimitReached, Rejection::PresenceFull),
        }
    }
}

impl Connection {
    pub(super) async fn subscribe(&mut self, req: Subscribe, now: Instant, replies: &mut Vec<String>) {
        if let Err(e) = self.try_subscribe(&req, now, replies).await {
            let (kind, why) = e.kind();
            let message = e.to_string();
            self.refuse(kind.error_code(), why, &message, replies);
            if self.deps.settings.subscription_error_event {
                replies.push(server_event::subscription_error(&req.channel, kind, &message));
            }
        }
    }

    async fn try_subscribe(
        &mut self,
        req: &Subscribe,
        now: Instant,
        replies: &mut Vec<String>,
    ) -> Result<(), SubscribeError> {
        let limits = &self.me.app.limits;
        let name =
            ChannelName::parse(&req.channel, limits.max_channel_name_len).map_err(|_| SubscribeError::BadName)?;
        let member = self.authorize(&name, req)?;
        if name.kind() == ChannelKind::User {
            // Delivery to user channels follows the signin, not a channel roster.
            self.channels.insert(name.clone(), None);
            replies.push(server_event::subscription_succeeded(name.as_str()));
            return Ok(());
        }
        let user_id: Option<Arc<str>> = member.as_ref().map(|m| m.user_id.as_str().into());
        let max = limits.max_presence_members;
        match self.me.ns.join(&name, &self.me.outbound, member, max) {
            Joined::PresenceFull => return Err(SubscribeError::PresenceFull),
            Joined::Again { reply } => replies.push(reply),
            Joined::New { occupied, member_added, reply, subscription_count } => {
                replies.push(reply);
                self.channels.insert(name.clone(), user_id.clone());
                if name.kind().needs_auth() {
                    self.authorized = true;
                }
                if occupied {
                    self.me.metrics.channels.inc();
                    self.webhook(WebhookEvent::channel(WebhookKind::ChannelOccupied, name.as_str()));
                }
                if let (true, Some(uid)) = (member_added, user_id.as_deref()) {
                    self.me.metrics.presence_members.inc();
                    self.webhook(WebhookEvent::member(WebhookKind::MemberAdded, name.as_str(), uid));
                }
                self.replay_cache(&name, now, replies);
                self.announce_count(&name, subscription_count).await;
            }
        }
        Ok(())
    }

    /// Checks the signature for the channel's kind; returns the presence member, if any.
    fn authorize(&self, name: &ChannelName, req: &Subscribe) -> Result<Option<PresenceMember>, SubscribeError> {
        let app = &self.me.app;
        let sid = self.me.socket_id.as_str();
        let auth = req.auth.as_deref().unwrap_or("");
        let signed = |s: &str| signature::verify_auth(&app.key, app.secret.expose(), auth, s);
        match name.kind() {
            ChannelKind::Public => Ok(None),
            ChannelKind::Private | ChannelKind::PrivateEncrypted => {
                signed(&channel_string(sid, name.as_str())).then_some(None).ok_or(SubscribeError::BadSignature)
            }
            ChannelKind::Presence => match (&req.channel_data, &self.user) {
                (Some(data), _) => {
                    if !signed(&presence_string(sid, name.as_str(), data)) {
                        return Err(SubscribeError::BadSignature);
                    }
                    PresenceMember::from_channel_data(data, &app.limits)
                        .map(Some)
                        .map_err(SubscribeError::BadChannelData)
                }
                (None, Some(user)) if signed(&channel_string(sid, name.as_str())) => Ok(Some(user.as_member())),
                (None, Some(_)) => Err(SubscribeError::BadSignature),
                (None, None) => Err(SubscribeError::NotSignedIn),
            },
            ChannelKind::User => match &self.user {
                Some(u) if name.user_id() == Some(u.id.as_str()) => Ok(None),
                Some(_) | None => Err(SubscribeError::NotThisUser),
            },
        }
    }

    fn replay_cache(&self, name: &ChannelName, now: Instant, replies: &mut Vec<String>) {
        if !name.is_cache() {
            return;
        }
        match self.deps.registry.cache().get(&self.me.app.id, name.as_str(), now) {
            Some(hit) => replies.push(server_event::channel_event(&hit.event, name.as_str(), &hit.data)),
            None => {
                replies.push(server_event::cache_miss(name.as_str()));
                self.webhook(WebhookEvent::channel(WebhookKind::CacheMiss, name.as_str()));
            }
        }
    }

    /// Tells subscribers of a non-presence channel how many they are, when the app wants it.
    /// Above `COUNT_THROTTLE_ABOVE` subscribers, at most one announcement per
    /// `COUNT_THROTTLE_EVERY`; the delayed one carries the count current when it goes out.
    async fn announce_count(&self, name: &ChannelName, count: usize) {
        if name.kind() == ChannelKind::Presence || count == 0 {
            return;
        }
        let hook = WebhookEvent {
            subscription_count: Some(count),
            ..WebhookEvent::channel(WebhookKind::SubscriptionCount, name.as_str())
        };
        self.webhook(hook);
        if !self.me.app.features.subscription_count {
            return;
        }
        if count > COUNT_THROTTLE_ABOVE
            && let Some(channel) = self.me.ns.channel(name.as_str())
        {
            match channel.count_due(Instant::now(), COUNT_THROTTLE_EVERY) {
                CountDue::Now => {}
                CountDue::Scheduled => return,
                CountDue::Later(at) => {
                    let (adapter, app_id, name) = (self.deps.adapter.clone(), self.me.app.id.clone(), name.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep_until(at).await;
                        channel.count_sent(Instant::now());
                        let frame = server_event::subscription_count(name.as_str(), channel.subscription_count());
                        if let Err(e) = adapter.publish(&app_id, name.as_str(), frame.into(), None).await {
                            tracing::warn!(error = %e, "publish failed");
                        }
                    });
                    return;
                }
            }
        }
        let frame = server_event::subscription_count(name.as_str(), count);
        self.publish(name, frame, false).await;
    }

    /// Publishes on a channel this socket is part of, optionally not to itself.
    async fn publish(&self, name: &ChannelName, frame: String, except_me: bool) {
        let except = except_me.then_some(&self.me.socket_id);
        let res = self.deps.adapter.publish(&self.me.app.id, name.as_str(), ByteString::from(frame), except).await;
        if let Err(e) = res {
            tracing::warn!(error = %e, "publish failed");
        }
    }

    pub(super) async fn unsubscribe(&mut self, channel: &str) {
        let Some(name) = self.channels.keys().find(|c| c.as_str() == channel).cloned() else {
            return;
        };
        self.leave(&name).await;
    }

    /// Leaves one channel: roster, `member_removed`, counts.
    pub(super) async fn leave(&mut self, name: &ChannelName) {
        if self.channels.remove(name).is_none() || name.kind() == ChannelKind::User {
            return;
        }
        let left = self.me.ns.leave(name.as_str(), &self.me.socket_id);
        if !left.was_subscribed {
            return;
        }
        if let Some(uid) = left.member_removed {
            self.me.metrics.presence_members.dec();
            self.webhook(WebhookEvent::member(WebhookKind::MemberRemoved, name.as_str(), &uid));
        }
        if left.vacated {
            self.me.metrics.channels.dec();
            self.webhook(WebhookEvent::channel(WebhookKind::ChannelVacated, name.as_str()));
        }
        self.announce_count(name, left.subscription_count).await;
    }
}
