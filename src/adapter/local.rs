//! The single-node adapter: a loopback into this process's registry.
//! Must not block: every call is a short registry section plus `try_push`es.

use bytestring::ByteString;

use super::{Adapter, AdapterError};
use crate::protocol::server_event::{self, WatchlistStatus};
use crate::protocol::{ErrorCode, SocketId};
use crate::registry::{ChannelStats, Registry};

/// Fan-out within one node.
#[derive(Clone, Debug)]
pub struct LocalAdapter {
    registry: Registry,
}

impl LocalAdapter {
    /// An adapter over `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }
}

#[async_trait::async_trait]
impl Adapter for LocalAdapter {
    async fn publish(
        &self,
        app_id: &str,
        channel: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), AdapterError> {
        self.registry.namespace(app_id).publish(channel, &frame, except);
        Ok(())
    }

    async fn send_to_user(
        &self,
        app_id: &str,
        user_id: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), AdapterError> {
        for out in self.registry.namespace(app_id).user_outbounds(user_id) {
            if except != Some(out.socket_id()) {
                out.push(frame.clone());
            }
        }
        Ok(())
    }

    async fn terminate_user(&self, app_id: &str, user_id: &str) -> Result<(), AdapterError> {
        for out in self.registry.namespace(app_id).user_outbounds(user_id) {
            out.close(ErrorCode::Unauthorized);
        }
        Ok(())
    }

    async fn channels(&self, app_id: &str, prefix: &str) -> Result<Vec<ChannelStats>, AdapterError> {
        let mut list = self.registry.namespace(app_id).channel_stats(prefix);
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn channel(&self, app_id: &str, channel: &str) -> Result<Option<ChannelStats>, AdapterError> {
        let ns = self.registry.namespace(app_id);
        Ok(ns.channel(channel).filter(|c| !c.is_empty()).map(|c| ChannelStats {
            name: channel.to_owned(),
            subscription_count: c.subscription_count(),
            user_count: c.user_count(),
        }))
    }

    async fn presence_users(&self, app_id: &str, channel: &str) -> Result<Vec<String>, AdapterError> {
        let ns = self.registry.namespace(app_id);
        let mut ids = ns.channel(channel).map(|c| c.user_ids()).unwrap_or_default();
        ids.sort();
        Ok(ids)
    }

    async fn watchlist_changed(
        &self,
        app_id: &str,
        user_id: &str,
        status: WatchlistStatus,
    ) -> Result<(), AdapterError> {
        let watchers = self.registry.namespace(app_id).watcher_outbounds(user_id);
        if !watchers.is_empty() {
            let frame = ByteString::from(server_event::watchlist_events(&[(status, vec![user_id])]));
            for out in watchers {
                out.push(frame.clone());
            }
        }
        Ok(())
    }

    async fn online_users(&self, app_id: &str, user_ids: &[String]) -> Result<Vec<String>, AdapterError> {
        let ns = self.registry.namespace(app_id);
        Ok(user_ids.iter().filter(|id| ns.is_online(id)).cloned().collect())
    }
}
