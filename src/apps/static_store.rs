//! The app store backed by the configuration file.
//! Must not change after startup: a reload builds a new store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::{App, AppFeatures, AppStore, AppStoreError, Secret, WebhookTarget};
use crate::config::AppConfig;
use crate::protocol::OriginPolicy;

/// Apps from `[[apps]]`, indexed by key and by id (separate maps: keys and ids never collide).
pub struct StaticAppStore {
    by_key: HashMap<String, Arc<App>>,
    by_id: HashMap<String, Arc<App>>,
}

impl StaticAppStore {
    /// Builds the store from configured apps (already validated: ids and keys unique).
    pub fn new(apps: &[AppConfig]) -> Self {
        let apps: Vec<Arc<App>> = apps.iter().map(|a| Arc::new(App::from(a))).collect();
        Self {
            by_key: apps.iter().map(|a| (a.key.clone(), a.clone())).collect(),
            by_id: apps.iter().map(|a| (a.id.clone(), a.clone())).collect(),
        }
    }
}

impl From<&AppConfig> for App {
    fn from(c: &AppConfig) -> Self {
        let timeout = c.require_user_authentication.then(|| Duration::from_secs(c.user_authentication_timeout_secs));
        App {
            id: c.id.clone(),
            key: c.key.clone(),
            secret: Secret::new(c.secret.clone()),
            enabled: c.enabled,
            max_connections: c.max_connections,
            quota_messages_per_day: c.quota_messages_per_day,
            features: AppFeatures {
                client_events: c.client_events,
                subscription_count: c.subscription_count,
                user_authentication_timeout: timeout,
            },
            limits: c.limits.clone(),
            webhooks: c
                .webhooks
                .iter()
                .map(|w| WebhookTarget {
                    url: w.url.clone(),
                    kinds: w.events.clone(),
                    channel_prefix: w.channel_prefix.clone(),
                    channel_suffix: w.channel_suffix.clone(),
                    headers: w.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                })
                .collect(),
            auth_url: (!c.auth_host.is_empty())
                .then(|| format!("{}{}", c.auth_host.trim_end_matches('/'), c.auth_endpoint)),
            origins: OriginPolicy::new(&c.allowed_origins, c.require_origin),
        }
    }
}

#[async_trait::async_trait]
impl AppStore for StaticAppStore {
    async fn find_by_key(&self, key: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        Ok(self.by_key.get(key).cloned())
    }

    async fn find_by_id(&self, id: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        Ok(self.by_id.get(id).cloned())
    }

    async fn all(&self) -> Result<Vec<Arc<App>>, AppStoreError> {
        let mut apps: Vec<_> = self.by_id.values().cloned().collect();
        apps.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(apps)
    }
}
