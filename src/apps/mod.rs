//! Seam: where apps (credentials, switches, limits) come from.
//! Must not know about sockets or channels; a store only answers "which app is this".

pub mod postgres;
mod static_store;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::{Limits, OriginPolicy, WebhookKind};

pub use static_store::StaticAppStore;

/// An app secret. Its `Debug` never shows the value, so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Optional behaviours an app switches on.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AppFeatures {
    /// `client-*` events allowed on private and presence channels.
    pub client_events: bool,
    /// `pusher_internal:subscription_count` sent on non-presence channels.
    pub subscription_count: bool,
    /// Connections must sign in (or subscribe to an authorized channel) within this time.
    pub user_authentication_timeout: Option<Duration>,
}

/// One app, as the server uses it.
#[derive(Clone, Debug)]
pub struct App {
    /// App id (REST paths).
    pub id: String,
    /// App key (WebSocket path, signatures).
    pub key: String,
    /// HMAC key.
    pub secret: Secret,
    /// Disabled apps refuse connections and REST calls.
    pub enabled: bool,
    /// Most simultaneous connections; 0 for no limit.
    pub max_connections: usize,
    /// Messages a day (UTC); 0 for no quota.
    pub quota_messages_per_day: u64,
    /// Optional behaviours.
    pub features: AppFeatures,
    /// Size and count limits.
    pub limits: Limits,
    /// Where this app's webhooks go (empty: none).
    pub webhooks: Vec<WebhookTarget>,
    /// The app's channel authorization endpoint for socket.io subscriptions (`auth_host` +
    /// `auth_endpoint`); `None`: private and presence channels are refused there.
    pub auth_url: Option<String>,
    /// Which page origins may open connections.
    pub origins: OriginPolicy,
}

/// One webhook receiver of an app, with the events and channels it wants. `Debug` shows
/// header names only, and the URL without credentials or query.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    /// The URL that receives `POST`s.
    pub url: String,
    /// Kinds wanted; empty for all.
    pub kinds: Vec<WebhookKind>,
    /// Only channels starting with this.
    pub channel_prefix: String,
    /// Only channels ending with this.
    pub channel_suffix: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { url, kinds, channel_prefix, channel_suffix, headers } = self;
        f.debug_struct("WebhookTarget")
            .field("url", &crate::config::redacted_url(url))
            .field("kinds", kinds)
            .field("channel_prefix", channel_prefix)
            .field("channel_suffix", channel_suffix)
            .field("headers", &headers.iter().map(|(k, _)| (k, "***")).collect::<Vec<_>>())
            .finish()
    }
}

impl WebhookTarget {
    /// Whether this target wants `kind` events on `channel`.
    pub fn wants(&self, kind: WebhookKind, channel: &str) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && channel.starts_with(&self.channel_prefix)
            && channel.ends_with(&self.channel_suffix)
    }
}

impl App {
    /// Whether any webhook target wants `kind` events on `channel` (cheap when none exist).
    pub fn wants_webhook(&self, kind: WebhookKind, channel: &str) -> bool {
        self.webhooks.iter().any(|t| t.wants(kind, channel))
    }
}

/// Why a store could not answer (a database store may be unreachable; the static one never fails).
#[derive(Debug, thiserror::Error)]
pub enum AppStoreError {
    /// The backing store did not answer.
    #[error("app store unavailable: {0}")]
    Unavailable(String),
}

/// Looks apps up by key (WebSocket) or id (REST API).
///
/// Contract: lookups are cheap enough to run on every connection and request (a remote store
/// must cache); `Ok(None)` means "no such app", never an outage.
#[async_trait::async_trait]
pub trait AppStore: Send + Sync {
    /// The app whose key is `key`.
    async fn find_by_key(&self, key: &str) -> Result<Option<Arc<App>>, AppStoreError>;
    /// The app whose id is `id`.
    async fn find_by_id(&self, id: &str) -> Result<Option<Arc<App>>, AppStoreError>;
    /// Every app this store knows, for startup logging and metrics (may be empty for remote stores).
    async fn all(&self) -> Result<Vec<Arc<App>>, AppStoreError>;
}
