//! `client-*` events: who may send them, where, how often, and how they are relayed.
//! Must not echo to the sender or relay anything it has not checked.

use bytestring::ByteString;
use tokio::time::Instant;

use super::Connection;
use crate::metrics::Rejection;
use crate::protocol::{ChannelName, ClientMessage, ErrorCode, WebhookEvent, WebhookKind, server_event};

/// Why a client event was refused (each is a non-closing `pusher:error` 4301).
#[derive(Debug, thiserror::Error)]
enum ClientEventError {
    #[error("Client events are not enabled for this app")]
    Disabled,
    #[error("Client events are only allowed on private and presence channels")]
    WrongChannel,
    #[error("Client events require a subscription to the channel")]
    NotSubscribed,
    #[error("Client event name is too long")]
    NameTooLong,
    #[error("Client event data is too large")]
    TooLarge,
    #[error("Client event rate limit exceeded")]
    RateLimited,
    #[error("The app's daily message quota is reached")]
    QuotaReached,
}

impl ClientEventError {
    fn rejection(&self) -> Rejection {
        match self {
            Self::RateLimited => Rejection::ClientEventRateLimited,
            Self::QuotaReached => Rejection::MessageQuota,
            Self::Disabled | Self::WrongChannel | Self::NotSubscribed | Self::NameTooLong | Self::TooLarge => {
                Rejection::ClientEventRefused
            }
        }
    }
}

impl Connection {
    /// Relays a `client-*` event (or refuses it: a `pusher:error` in `replies`, counted).
    pub async fn client_event(&mut self, msg: ClientMessage, now: Instant, replies: &mut Vec<ByteString>) {
        match self.check_client_event(&msg, now) {
            Ok((name, user_id)) => {
                self.debug_client_event(&msg);
                self.client_event_webhook(&msg, &name, user_id.as_deref());
                let frame =
                    server_event::client_event(&msg.event, name.as_str(), msg.data.as_deref(), user_id.as_deref());
                let except = Some(&self.me.socket_id);
                // Queued, not awaited: a socket task never waits on the bus.
                let res = self.deps.cluster.bus.publish_queued(&self.me.app.id, name.as_str(), frame.into(), except);
                if let Err(e) = res {
                    tracing::warn!(error = %e, "client event publish failed");
                }
            }
            Err(e) => {
                let message = e.to_string();
                self.refuse_on(Some(&msg.channel), ErrorCode::ClientEventRejected, e.rejection(), &message, replies);
            }
        }
    }

    fn client_event_webhook(&self, msg: &ClientMessage, name: &ChannelName, user_id: Option<&str>) {
        if !self.me.app.wants_webhook(WebhookKind::ClientEvent, name.as_str()) {
            return;
        }
        // `data` goes out as a string: a string as it is, anything else as its JSON text.
        let data =
            msg.data.as_deref().map(|d| serde_json::from_str::<String>(d.get()).unwrap_or_else(|_| d.get().to_owned()));
        self.webhook(WebhookEvent {
            event: Some(msg.event.clone()),
            data,
            socket_id: Some(self.me.socket_id.to_string()),
            user_id: user_id.map(str::to_owned),
            ..WebhookEvent::channel(WebhookKind::ClientEvent, name.as_str())
        });
    }

    /// Returns the channel and, on presence channels, the sender's user id.
    fn check_client_event(
        &mut self,
        msg: &ClientMessage,
        now: Instant,
    ) -> Result<(ChannelName, Option<std::sync::Arc<str>>), ClientEventError> {
        let app = &self.me.app;
        let limits = &app.limits;
        if !app.features.client_events {
            return Err(ClientEventError::Disabled);
        }
        let name = ChannelName::parse(&msg.channel, limits.max_channel_name_len)
            .map_err(|_| ClientEventError::WrongChannel)?;
        if !name.kind().allows_client_events() {
            return Err(ClientEventError::WrongChannel);
        }
        let user_id = self.channels.get(&name).cloned().ok_or(ClientEventError::NotSubscribed)?;
        if msg.event.len() > limits.max_event_name_len {
            return Err(ClientEventError::NameTooLong);
        }
        if msg.data_len() > limits.max_event_data_bytes {
            return Err(ClientEventError::TooLarge);
        }
        if !self.client_events.try_take(now) {
            return Err(ClientEventError::RateLimited);
        }
        if !self.deps.usage.take(app, 1) {
            return Err(ClientEventError::QuotaReached);
        }
        self.me.metrics.messages.inc();
        Ok((name, user_id))
    }
}
