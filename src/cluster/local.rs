//! The single-node driver: this process's registry is the whole cluster.
//! Must not block: every call is a short registry section plus `try_push`es, and never fails.

use std::sync::Arc;

use bytestring::ByteString;
use dashmap::DashMap;
use tokio::time::{Duration, Instant};

use super::{Bus, ClusterError, ClusterState, Queries, Usage, UsageTotals};
use crate::protocol::server_event::{self, WatchlistStatus};
use crate::protocol::{ChannelName, ErrorCode, PresenceMember, SocketId};
use crate::registry::{CachedEvent, ChannelStats, Joined, Left, Namespace, Outbound, Registry};

/// Bus, state, queries and usage within one node.
#[derive(Clone, Debug)]
pub struct LocalCluster {
    registry: Registry,
    /// (app, day) → totals; days older than yesterday are dropped as new ones start.
    usage: Arc<DashMap<(String, u32), UsageTotals>>,
}

impl LocalCluster {
    /// A driver over `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry, usage: Arc::default() }
    }
}

#[async_trait::async_trait]
impl Usage for LocalCluster {
    async fn record(
        &self,
        app_id: &str,
        day: u32,
        messages: u64,
        connections: u64,
    ) -> Result<UsageTotals, ClusterError> {
        let key = (app_id.to_owned(), day);
        if !self.usage.contains_key(&key) {
            self.usage.retain(|(_, d), _| d.saturating_add(1) >= day);
        }
        let mut totals = self.usage.entry(key).or_default();
        totals.messages += messages;
        totals.peak_connections = totals.peak_connections.max(connections);
        Ok(*totals)
    }
}

#[async_trait::async_trait]
impl Bus for LocalCluster {
    async fn publish(
        &self,
        app_id: &str,
        channel: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError> {
        self.registry.namespace(app_id).publish(channel, &frame, except);
        Ok(())
    }

    fn publish_queued(
        &self,
        app_id: &str,
        channel: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError> {
        self.registry.namespace(app_id).publish(channel, &frame, except);
        Ok(())
    }

    fn deliver_here(&self, app_id: &str, channel: &str, frame: &ByteString, except: Option<&SocketId>) {
        self.registry.namespace(app_id).publish(channel, frame, except);
    }

    async fn send_to_user(
        &self,
        app_id: &str,
        user_id: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError> {
        self.registry.namespace(app_id).send_to_user(user_id, &frame, except);
        Ok(())
    }

    async fn terminate_user(&self, app_id: &str, user_id: &str) -> Result<(), ClusterError> {
        self.registry.namespace(app_id).close_user(user_id, ErrorCode::Unauthorized);
        Ok(())
    }

    async fn watchlist_changed(
        &self,
        app_id: &str,
        user_id: &str,
        status: WatchlistStatus,
    ) -> Result<(), ClusterError> {
        let ns = self.registry.namespace(app_id);
        if ns.has_watchers(user_id) {
            let frame = ByteString::from(server_event::watchlist_events(&[(status, vec![user_id])]));
            ns.notify_watchers(user_id, &frame);
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ClusterState for LocalCluster {
    async fn connect(&self, ns: &Namespace, outbound: &Outbound, max: usize) -> Result<bool, ClusterError> {
        Ok(ns.add_socket(outbound, max))
    }

    async fn disconnect(&self, ns: &Namespace, sid: &SocketId) {
        ns.remove_socket(sid);
    }

    async fn join(
        &self,
        ns: &Namespace,
        channel: &ChannelName,
        outbound: &Outbound,
        member: Option<PresenceMember>,
        max_members: usize,
    ) -> Result<Joined, ClusterError> {
        Ok(ns.join(channel, outbound, member, max_members))
    }

    async fn leave(&self, ns: &Namespace, channel: &ChannelName, sid: &SocketId) -> Left {
        ns.leave(channel.as_str(), sid)
    }

    async fn removal_stands(&self, _: &str, _: &str, _: Option<&str>, vacated: bool, _: u64) -> (bool, bool) {
        // Never asked: this driver leaves the vacate delay to the webhook queue.
        (vacated, true)
    }

    async fn sign_in(
        &self,
        ns: &Namespace,
        user_id: &str,
        sid: &SocketId,
        watchlist: &[String],
    ) -> Result<bool, ClusterError> {
        ns.watch(sid, watchlist);
        Ok(ns.sign_in(user_id, sid))
    }

    async fn sign_out(&self, ns: &Namespace, user_id: &str, sid: &SocketId, watchlist: &[String]) -> bool {
        ns.unwatch(sid, watchlist);
        ns.sign_out(user_id, sid)
    }

    async fn cache_put(
        &self,
        app_id: &str,
        channel: &str,
        event: &str,
        data: &str,
        ttl: Duration,
    ) -> Result<(), ClusterError> {
        self.registry.cache().put(app_id, channel, event, data, Instant::now(), ttl);
        Ok(())
    }

    async fn cache_get(&self, app_id: &str, channel: &str) -> Result<Option<CachedEvent>, ClusterError> {
        Ok(self.registry.cache().get(app_id, channel, Instant::now()))
    }
}

#[async_trait::async_trait]
impl Queries for LocalCluster {
    async fn channels(&self, app_id: &str, prefix: &str) -> Result<Vec<ChannelStats>, ClusterError> {
        let mut list = self.registry.namespace(app_id).channel_stats(prefix);
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn channel(&self, app_id: &str, channel: &str) -> Result<Option<ChannelStats>, ClusterError> {
        let ns = self.registry.namespace(app_id);
        Ok(ns.channel(channel).filter(|c| !c.is_empty()).map(|c| ChannelStats {
            name: channel.to_owned(),
            subscription_count: c.subscription_count(),
            user_count: c.user_count(),
        }))
    }

    async fn presence_users(&self, app_id: &str, channel: &str) -> Result<Vec<String>, ClusterError> {
        let ns = self.registry.namespace(app_id);
        let mut ids = ns.channel(channel).map(|c| c.user_ids()).unwrap_or_default();
        ids.sort();
        Ok(ids)
    }

    async fn online_users(&self, app_id: &str, user_ids: &[String]) -> Result<Vec<String>, ClusterError> {
        let ns = self.registry.namespace(app_id);
        Ok(user_ids.iter().filter(|id| ns.is_online(id)).cloned().collect())
    }
}
