//! `pusher:subscribe` / `pusher:unsubscribe`: authorization, presence join/leave, cache replay.
//! Must not write to the socket: replies go into the caller's buffer, broadcasts to the bus.
//!
//! Two ways in, one set of rules: a Pusher socket proves its right with a signature; a
//! socket.io socket's transport asked the app's auth endpoint first (as laravel-echo-server
//! does) and brings its answer as a `Grant::Endpoint`.

use std::sync::Arc;

use bytestring::ByteString;

use super::{Connection, release};
use crate::metrics::Rejection;
use crate::protocol::signature::{self, channel_string, presence_string};
use crate::protocol::{
    ChannelKind, ChannelName, PresenceMember, Subscribe, SubscriptionErrorKind, WebhookEvent, WebhookKind, server_event,
};
use crate::registry::Joined;

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
enum SubscribeError {
    #[error("Invalid channel name")]
    BadName,
    #[error("Invalid signature")]
    BadSignature,
    #[error("{0}")]
    BadChannelData(crate::protocol::ProtocolError),
    #[error("Presence channels require channel_data or a signed-in user")]
    NotSignedIn,
    #[error("Only the user's own connections may subscribe to its channel")]
    NotThisUser,
    #[error("The presence channel is full")]
    PresenceFull,
    #[error("Too many channels on this connection (the limit is {0})")]
    TooManyChannels(usize),
    #[error("The subscription could not be completed; try again")]
    Unavailable(crate::cluster::ClusterError),
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
            Self::TooManyChannels(_) => (SubscriptionErrorKind::LimitReached, Rejection::SubscriptionLimit),
            Self::Unavailable(_) => (SubscriptionErrorKind::Unavailable, Rejection::ClusterUnavailable),
        }
    }
}

/// How a subscription is authorized.
enum Grant<'a> {
    /// By the signature in `pusher:subscribe`.
    Signed(&'a Subscribe),
    /// By the app's auth endpoint, already asked: presence brings the member it answered.
    Endpoint(Option<PresenceMember>),
}

impl Connection {
    /// Subscribes to `channel` after the app's auth endpoint allowed it (the socket.io
    /// transport's server-side authorization; public channels need no answer). A refusal is
    /// counted and returned as its `subscription_error` status; nothing else is sent for it.
    ///
    /// # Errors
    /// The refusal's status (400, 401, 4100 for limits, 503).
    pub async fn subscribe_authorized(
        &mut self,
        channel: &str,
        member: Option<PresenceMember>,
        replies: &mut Vec<ByteString>,
    ) -> Result<(), u16> {
        let done = self.try_subscribe(channel, Grant::Endpoint(member), replies).await.map_err(|e| {
            let (kind, why) = e.kind();
            tracing::debug!(reason = why.as_str(), error = %e, "subscription refused");
            self.deps.metrics.reject(why);
            self.debug_refused(Some(channel), kind.status(), why, &e.to_string());
            kind.status()
        });
        if done.is_ok() {
            self.debug_subscribed(channel);
        }
        done
    }

    /// Leaves `channel` if subscribed (the socket.io transport's `unsubscribe`).
    pub async fn leave_channel(&mut self, channel: &str) {
        self.unsubscribe(channel).await;
    }

    /// Whether this socket is subscribed to `channel`.
    pub fn is_subscribed(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    pub(super) async fn subscribe(&mut self, req: Subscribe, replies: &mut Vec<ByteString>) {
        if let Err(e) = self.try_subscribe(&req.channel, Grant::Signed(&req), replies).await {
            let (kind, why) = e.kind();
            let message = e.to_string();
            self.refuse_on(Some(&req.channel), kind.error_code(), why, &message, replies);
            if self.deps.settings.subscription_error_event {
                replies.push(server_event::subscription_error(&req.channel, kind, &message).into());
            }
        } else {
            self.debug_subscribed(&req.channel);
        }
    }

    async fn try_subscribe(
        &mut self,
        channel: &str,
        grant: Grant<'_>,
        replies: &mut Vec<ByteString>,
    ) -> Result<(), SubscribeError> {
        let limits = &self.me.app.limits;
        let name = ChannelName::parse(channel, limits.max_channel_name_len).map_err(|_| SubscribeError::BadName)?;
        let max = limits.max_subscriptions_per_connection;
        if self.channels.len() >= max && !self.channels.contains_key(name.as_str()) {
            return Err(SubscribeError::TooManyChannels(max));
        }
        let member = match grant {
            Grant::Signed(req) => self.authorize(&name, req)?,
            Grant::Endpoint(member) => Self::granted(&name, member)?,
        };
        if name.kind() == ChannelKind::User {
            // Delivery to user channels follows the signin, not a channel roster.
            self.channels.insert(name.clone(), None);
            replies.push(server_event::subscription_succeeded(name.as_str()).into());
            return Ok(());
        }
        let user_id: Option<Arc<str>> = member.as_ref().map(|m| m.user_id.as_str().into());
        let max = limits.max_presence_members;
        let joined = self.deps.cluster.state.join(&self.me.ns, &name, &self.me.outbound, member, max).await;
        match joined.map_err(SubscribeError::Unavailable)? {
            Joined::PresenceFull => return Err(SubscribeError::PresenceFull),
            Joined::Again { reply } => replies.push(reply),
            Joined::New {
                occupied,
                member_added,
                reply,
                subscription_count,
                cancels_vacate,
                cancels_removal,
                here: (here_occupied, here_member),
            } => {
                replies.push(reply);
                self.channels.insert(name.clone(), user_id.clone());
                if name.kind().needs_auth() {
                    self.authorized = true;
                }
                // A join that cancelled a removal still held by the vacate delay (on any node)
                // announces nothing: neither webhook of the pair goes out.
                // The gauges count this node's channels and members; webhooks the cluster's.
                if here_occupied {
                    self.me.metrics.channels.inc();
                }
                if here_member {
                    self.me.metrics.presence_members.inc();
                }
                if occupied && !cancels_vacate {
                    self.webhook(WebhookEvent::channel(WebhookKind::ChannelOccupied, name.as_str()));
                }
                if let (true, false, Some(uid)) = (member_added, cancels_removal, user_id.as_deref()) {
                    self.webhook(WebhookEvent::member(WebhookKind::MemberAdded, name.as_str(), uid));
                }
                self.replay_cache(&name, replies).await;
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

    /// What an auth endpoint's answer allows: any private channel, a presence channel with the
    /// member it named; never a user channel (socket.io sockets do not sign in).
    fn granted(name: &ChannelName, member: Option<PresenceMember>) -> Result<Option<PresenceMember>, SubscribeError> {
        match (name.kind(), member) {
            (ChannelKind::Public | ChannelKind::Private | ChannelKind::PrivateEncrypted, _) => Ok(None),
            (ChannelKind::Presence, Some(member)) => Ok(Some(member)),
            (ChannelKind::Presence, None) => Err(SubscribeError::NotSignedIn),
            (ChannelKind::User, _) => Err(SubscribeError::NotThisUser),
        }
    }

    async fn replay_cache(&self, name: &ChannelName, replies: &mut Vec<ByteString>) {
        if !name.is_cache() {
            return;
        }
        match self.deps.cluster.state.cache_get(&self.me.app.id, name.as_str()).await {
            Ok(Some(hit)) => replies.push(server_event::channel_event(&hit.event, name.as_str(), &hit.data).into()),
            Ok(None) => {
                replies.push(server_event::cache_miss(name.as_str()).into());
                self.webhook(WebhookEvent::channel(WebhookKind::CacheMiss, name.as_str()));
            }
            Err(e) => tracing::warn!(error = %e, "cache lookup failed"),
        }
    }

    /// Announces a non-presence channel's new subscription count: the `subscription_count`
    /// webhook and, when the app wants it, the event to its subscribers.
    pub(super) async fn announce_count(&self, name: &ChannelName, count: usize) {
        if let Some(frame) = release::count_announcement(&self.me, &self.deps, name, count) {
            release::publish(self.deps.cluster.bus.as_ref(), &self.me.app.id, name, frame);
        }
    }
}
