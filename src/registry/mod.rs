//! This node's state: apps → sockets, channels, presence rosters, users, cache.
//! For the local driver it is the whole cluster (rosters decided here); for the Redis drivers
//! it is only this node's delivery index (`attach`/`activate`/`deliver`/`detach`, no roster
//! decisions), the cluster's facts living in Redis.
//! Must not know about Redis, HTTP or actix; it is only ever reached through short sections.

mod cache;
mod channel;
mod namespace;
mod outbound;
pub mod wake;

use std::sync::Arc;

use dashmap::DashMap;

pub use cache::{CachedEvent, EventCache};
pub use channel::{Channel, CountDue, Delivery, Detached, Joined, Left, LocalMember};
pub use namespace::{ChannelStats, Namespace};
pub use outbound::{CloseSignal, Next, Outbound, OutboundRx, Pushed, outbound};

/// Every app's namespace on this node. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    namespaces: Arc<DashMap<String, Arc<Namespace>>>,
    cache: Arc<EventCache>,
}

impl Registry {
    /// The namespace of `app_id`, created on first use.
    pub fn namespace(&self, app_id: &str) -> Arc<Namespace> {
        if let Some(ns) = self.namespaces.get(app_id) {
            return ns.value().clone();
        }
        let entry = self.namespaces.entry(app_id.to_owned());
        entry.or_insert_with(|| Arc::new(Namespace::new(app_id))).value().clone()
    }

    /// Every namespace (for draining and metrics).
    pub fn namespaces(&self) -> Vec<(String, Arc<Namespace>)> {
        self.namespaces.iter().map(|e| (e.key().clone(), e.value().clone())).collect()
    }

    /// The cache-channel store.
    pub fn cache(&self) -> &EventCache {
        &self.cache
    }
}
