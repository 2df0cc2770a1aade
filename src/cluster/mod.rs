//! Seams between this node and the cluster, split by role (as centrifuge splits its broker from
//! its presence manager):
//! - [`Bus`] delivers a pre-encoded frame to the local subscribers of every node;
//! - [`ClusterState`] decides the facts that must hold for the whole cluster, each atomically:
//!   connection slots, joins and leaves (first subscriber, first socket of a user, the roster),
//!   sign-ins, the cache-channel store;
//! - [`Queries`] answers the REST API's questions for the whole cluster;
//! - [`Usage`] adds up each app's messages and connections per day (plan quotas, the admin API).
//!
//! The `local` driver is this node's registry; a cluster driver decides in Redis and delivers
//! through it, so that every node runs the same code paths on one node and on many.
//! Must not speak actix or Redis types in its signatures: protocol and registry types only.

mod local;
mod redis;

use std::sync::Arc;

use bytestring::ByteString;
use tokio::time::Duration;

use crate::protocol::server_event::WatchlistStatus;
use crate::protocol::{ChannelName, PresenceMember, SocketId};
use crate::registry::{Namespace, Outbound};

pub use crate::registry::{CachedEvent, ChannelStats, Joined, Left};
pub use local::LocalCluster;
pub use redis::{RedisDriver, RedisSettings};

/// Why the cluster could not do what was asked (the local driver never fails).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The bus or the shared state is unreachable.
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
}

/// The three seams of one driver. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    /// Delivery to every node's sockets.
    pub bus: Arc<dyn Bus>,
    /// Cluster-wide facts.
    pub state: Arc<dyn ClusterState>,
    /// Cluster-wide REST queries.
    pub queries: Arc<dyn Queries>,
    /// Cluster-wide usage counters.
    pub usage: Arc<dyn Usage>,
}

impl Cluster {
    /// The single-node driver over `registry`.
    pub fn local(registry: crate::registry::Registry) -> Self {
        let local = Arc::new(LocalCluster::new(registry));
        Self { bus: local.clone(), state: local.clone(), queries: local.clone(), usage: local }
    }
}

/// One app's usage on one day (UTC), for the whole cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UsageTotals {
    /// Messages counted (REST events per channel, client events).
    pub messages: u64,
    /// The most connections open at once, as sampled at each node's report.
    pub peak_connections: u64,
}

/// Per-app usage, added up across nodes.
///
/// Contract: each node calls `record` about once a second per active app with the messages
/// it counted since its last call and its open connections; the answer is the day's totals,
/// including every node's reports so far. A node's connections count towards the peak while
/// its reports are recent (three report periods), so a dead node stops counting.
#[async_trait::async_trait]
pub trait Usage: Send + Sync {
    /// Adds `messages` to `app_id`'s count for `day` (days since the Unix epoch, UTC) and
    /// reports this node's `connections`; returns the day's totals.
    async fn record(
        &self,
        app_id: &str,
        day: u32,
        messages: u64,
        connections: u64,
    ) -> Result<UsageTotals, ClusterError>;
}

/// Delivery to the local subscribers of every node.
///
/// Contract: frames are encoded once by the caller and delivered byte-for-byte; every node
/// delivers through the same path, so consecutive publishes to one channel reach every
/// subscriber in the order they were published, whichever node each was published on.
/// `Ok` means the frame was handed to every node that has a subscriber (a REST 2xx relies on it).
#[async_trait::async_trait]
pub trait Bus: Send + Sync {
    /// Delivers `frame` to every subscriber of `channel`, except the socket `except`.
    async fn publish(
        &self,
        app_id: &str,
        channel: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError>;

    /// Queues `frame` for every subscriber of `channel` but `except`, without waiting for the
    /// bus (a socket task's publishes: client events, count announcements). Delivery keeps
    /// the order of this node's publishes.
    ///
    /// # Errors
    /// The node's bus queue is full (the publish is dropped and counted).
    fn publish_queued(
        &self,
        app_id: &str,
        channel: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError>;

    /// Delivers `frame` to this node's subscribers of `channel` only, but `except`: for a
    /// source every node reads by itself (Laravel's redis broadcaster), so that nothing is
    /// delivered twice.
    fn deliver_here(&self, app_id: &str, channel: &str, frame: &ByteString, except: Option<&SocketId>);

    /// Delivers `frame` to every socket signed in as `user_id` (`#server-to-user-{id}`), except
    /// the socket `except`.
    async fn send_to_user(
        &self,
        app_id: &str,
        user_id: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError>;

    /// Closes every socket signed in as `user_id`.
    async fn terminate_user(&self, app_id: &str, user_id: &str) -> Result<(), ClusterError>;

    /// Tells every socket watching `user_id` that it went online or offline (a driver that
    /// announces it where it decides it, in order with the rest, does nothing here).
    async fn watchlist_changed(&self, app_id: &str, user_id: &str, status: WatchlistStatus)
    -> Result<(), ClusterError>;
}

/// The facts that must be true for the whole cluster, each decided atomically; the node whose
/// call decided a transition (first subscriber, a user's first or last socket) is the one that
/// announces it, so each is announced once per cluster.
///
/// Contract: `join` registers the socket as a local subscriber as well, so that no event
/// published after it returned misses the socket; a presence joiner sees each member either in
/// its roster or as a `member_added`/`member_removed` event, never both and never neither.
#[async_trait::async_trait]
pub trait ClusterState: Send + Sync {
    /// Takes one of the app's connection slots for the socket and registers it on this node,
    /// unless the app has `max` connections (0: no limit). `Ok(false)` when over quota.
    async fn connect(&self, ns: &Namespace, outbound: &Outbound, max: usize) -> Result<bool, ClusterError>;

    /// Gives the socket's slot back and forgets it (its channels and user were left first).
    async fn disconnect(&self, ns: &Namespace, sid: &SocketId);

    /// Subscribes the socket; `member` is set on presence channels, bounded by `max_members`.
    async fn join(
        &self,
        ns: &Namespace,
        channel: &ChannelName,
        outbound: &Outbound,
        member: Option<PresenceMember>,
        max_members: usize,
    ) -> Result<Joined, ClusterError>;

    /// Unsubscribes the socket (a no-op answer when it was not subscribed).
    async fn leave(&self, ns: &Namespace, channel: &ChannelName, sid: &SocketId) -> Left;

    /// After the vacate delay, for a leave whose `Left::held` was `token`: whether its vacate
    /// and its user's removal still stand (no join anywhere cancelled them), as
    /// `(vacate, removal)`. Only drivers that hold removals themselves are asked.
    async fn removal_stands(
        &self,
        app_id: &str,
        channel: &str,
        user: Option<&str>,
        vacated: bool,
        token: u64,
    ) -> (bool, bool);

    /// Binds the socket to a signed-in user and its watchlist. `Ok(true)` when it is the user's
    /// first socket anywhere (the user went online).
    async fn sign_in(
        &self,
        ns: &Namespace,
        user_id: &str,
        sid: &SocketId,
        watchlist: &[String],
    ) -> Result<bool, ClusterError>;

    /// Unbinds the socket. `true` when it was the user's last socket anywhere (offline).
    async fn sign_out(&self, ns: &Namespace, user_id: &str, sid: &SocketId, watchlist: &[String]) -> bool;

    /// Keeps `event` as the last event of the cache channel `channel` for `ttl`.
    async fn cache_put(
        &self,
        app_id: &str,
        channel: &str,
        event: &str,
        data: &str,
        ttl: Duration,
    ) -> Result<(), ClusterError>;

    /// The live cached event of `channel`, if any.
    async fn cache_get(&self, app_id: &str, channel: &str) -> Result<Option<CachedEvent>, ClusterError>;
}

/// Where a cluster driver announces the changes it decides on its own, with no socket of this
/// node involved: a dead node's subscribers and members removed by the reaper, or leaves that
/// could not be recorded while Redis was away. Implemented by the connection layer, which
/// sends the webhooks and count events a leave would have.
#[async_trait::async_trait]
pub trait Transitions: Send + Sync {
    /// `removed` presence users left `channel` for good; `vacated` when no subscriber is left
    /// anywhere; `subscription_count` is the channel's count now.
    async fn left(&self, app_id: &str, channel: &str, removed: &[String], vacated: bool, subscription_count: usize);
}

/// The REST API's questions, answered for the whole cluster.
#[async_trait::async_trait]
pub trait Queries: Send + Sync {
    /// Occupied channels whose names start with `prefix`, with their counts, sorted by name.
    async fn channels(&self, app_id: &str, prefix: &str) -> Result<Vec<ChannelStats>, ClusterError>;

    /// One channel's counts, `None` when unoccupied.
    async fn channel(&self, app_id: &str, channel: &str) -> Result<Option<ChannelStats>, ClusterError>;

    /// Distinct user ids of a presence channel, sorted.
    async fn presence_users(&self, app_id: &str, channel: &str) -> Result<Vec<String>, ClusterError>;

    /// Which of `user_ids` have a signed-in connection.
    async fn online_users(&self, app_id: &str, user_ids: &[String]) -> Result<Vec<String>, ClusterError>;
}
