//! The Redis drivers (`redis`, `redis_cluster`): many nodes, one cluster.
//!
//! - Delivery: every publish goes on the bus channel of its Pusher channel (or user), and every
//!   node delivers what it receives to its own sockets, the publishing node included; Redis
//!   orders the messages of one bus channel, so consecutive publishes keep their order at every
//!   subscriber whichever node each went through. A node subscribes to a bus channel only while
//!   it has a socket that needs it (`interest`), confirmed before `subscription_succeeded`.
//! - State: joins, leaves, sign-ins and connection slots are decided by Lua scripts (`lua/`),
//!   one round trip each, so "first subscriber", "a user's first or last socket" are single
//!   atomic decisions; the script that decides a presence change also publishes its event, in
//!   roster order, tagged with the roster version, and each socket skips the events its roster
//!   already had (`registry::Channel::activate`).
//! - Liveness (`lease`): each node renews a lease; a dead node's state is removed by one live
//!   node, which announces each resulting change once; a node that lost its lease closes its
//!   sockets; a node whose connection was lost registers its local truth again.
//!
//! Must not block a socket task on Redis for a publish: those go through the bus writer.

mod interest;
mod keys;
mod lease;
mod link;
mod queries;
mod reader;
mod scripts;
mod state;
mod usage;
mod wire;
mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytestring::ByteString;
use dashmap::DashSet;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Duration;

use self::interest::Interest;
use self::keys::Keys;
use self::link::{Link, LinkSettings};
use self::scripts::Scripts;
use self::writer::Outgoing;
use super::{Bus, Cluster, ClusterError, Transitions};
use crate::metrics::{ClusterMetrics, Health};
use crate::protocol::SocketId;
use crate::protocol::server_event::WatchlistStatus;
use crate::registry::Registry;

/// The Redis drivers' settings.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    /// `redis://…`, or comma-separated seeds for a cluster.
    pub url: String,
    /// Redis Cluster rather than one server.
    pub cluster: bool,
    /// Prefix of every key and bus channel.
    pub prefix: String,
    /// A node without a renewal for this long is dead.
    pub lease: Duration,
    /// How often the lease is renewed.
    pub heartbeat: Duration,
    /// Timeout of one command.
    pub timeout: Duration,
    /// Queued publishes before more are refused.
    pub bus_queue: usize,
    /// How long `channel_vacated` / `member_removed` webhooks wait for a re-join anywhere.
    pub vacate_delay: Duration,
}

/// What every part of the driver shares.
struct Core {
    node: String,
    keys: Keys,
    cmd: Link,
    interest: Interest,
    registry: Registry,
    scripts: Scripts,
    writer: mpsc::Sender<Outgoing>,
    metrics: ClusterMetrics,
    health: Health,
    settings: RedisSettings,
    /// The lease was lost: sockets are asked to reconnect, new ones refused, until recovered.
    fenced: AtomicBool,
    /// Set by the reader when the subscription connection dropped: the lease loop resyncs.
    gap: Notify,
    /// Apps whose connection slots this node holds in Redis (apps with a quota).
    quota_apps: DashSet<String>,
    /// Presence leaves (app, channel, user) whose script failed: announced after the resync
    /// if no node holds the user any more (Redis may have come back empty).
    failed_leaves: parking_lot::Mutex<Vec<(String, String, String)>>,
    transitions: OnceLock<Arc<dyn Transitions>>,
}

impl Core {
    fn unavailable(&self, e: &redis::RedisError) -> ClusterError {
        ClusterError::Unavailable(e.to_string())
    }

    fn publish_command(&self) -> &'static str {
        self.cmd.publish_command()
    }
}

/// A running Redis driver: its seams, and the tasks that keep it going.
pub struct RedisDriver {
    core: Arc<Core>,
    tasks: Vec<JoinHandle<()>>,
}

impl RedisDriver {
    /// Connects to Redis and starts the bus reader, the bus writer and the lease.
    ///
    /// # Errors
    /// Redis could not be reached.
    pub async fn start(
        settings: RedisSettings,
        registry: Registry,
        metrics: ClusterMetrics,
        health: Health,
    ) -> Result<Self, ClusterError> {
        let link = LinkSettings { url: settings.url.clone(), cluster: settings.cluster, timeout: settings.timeout };
        let down = |e: redis::RedisError| ClusterError::Unavailable(e.to_string());
        let cmd = Link::commands(&link).await.map_err(down)?;
        // Unbounded as redis-rs's own push queue in front of it is: a bound here could only
        // drop deliveries. The bound is Redis's: a subscriber that falls behind its pub/sub
        // output limit (client-output-buffer-limit pubsub, 32 MB by default) is disconnected,
        // which this node sees as a gap and resyncs; the reader never awaits per message.
        let (push_tx, push_rx) = mpsc::unbounded_channel();
        let sub = Link::subscriptions(&link, push_tx).await.map_err(down)?;
        let (writer_tx, writer_rx) = mpsc::channel(settings.bus_queue);
        let core = Arc::new(Core {
            node: format!("{:016x}", rand::random::<u64>()),
            keys: Keys::new(&settings.prefix),
            cmd: cmd.clone(),
            interest: Interest::new(sub, cmd.clone(), metrics.clone()),
            registry,
            scripts: Scripts::new(),
            writer: writer_tx,
            metrics: metrics.clone(),
            health,
            settings,
            fenced: AtomicBool::new(false),
            gap: Notify::new(),
            quota_apps: DashSet::new(),
            failed_leaves: parking_lot::Mutex::new(Vec::new()),
            transitions: OnceLock::new(),
        });
        lease::renew(&core).await.map_err(|e| core.unavailable(&e))?;
        tracing::info!(node = %core.node, "joined the cluster");
        let tasks = vec![
            tokio::spawn(writer::run(writer_rx, cmd, metrics)),
            tokio::spawn(reader::run(Arc::downgrade(&core), push_rx)),
            tokio::spawn(lease::run(Arc::downgrade(&core))),
        ];
        Ok(Self { core, tasks })
    }

    /// The three seams over this driver.
    pub fn cluster(&self) -> Cluster {
        let driver = Arc::new(RedisCluster { core: self.core.clone() });
        Cluster { bus: driver.clone(), state: driver.clone(), queries: driver.clone(), usage: driver }
    }

    /// Where transitions the driver decides on its own (reaps, resyncs) are announced.
    pub fn set_transitions(&self, transitions: Arc<dyn Transitions>) {
        let _ = self.core.transitions.set(transitions);
    }

    /// This node's id in the cluster.
    pub fn node_id(&self) -> &str {
        &self.core.node
    }

    /// Whether the node lost its lease and is closing its sockets.
    pub fn is_fenced(&self) -> bool {
        self.core.fenced.load(Ordering::Acquire)
    }

    /// Leaves the cluster after the sockets are gone: gives back the lease and whatever is
    /// still registered under this node (nothing, when every socket left normally).
    pub async fn stop(self) {
        if let Err(e) = lease::leave(&self.core).await {
            tracing::warn!(error = %e, "could not leave the cluster cleanly; the others will reap this node");
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

/// The seams' implementation.
struct RedisCluster {
    core: Arc<Core>,
}

impl RedisCluster {
    /// When a publish queued now is no longer worth sending: one command timeout.
    fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.core.settings.timeout
    }

    async fn send(&self, bus: String, payload: Vec<u8>) -> Result<(), ClusterError> {
        let (ack, acked) = tokio::sync::oneshot::channel();
        let queued = Outgoing { bus, payload, ack: Some(ack), deadline: self.deadline() };
        let full = || ClusterError::Unavailable("the bus queue is full".into());
        self.core.writer.try_send(queued).map_err(|_| full())?;
        match acked.await {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(ClusterError::Unavailable("the bus did not take the publish".into())),
        }
    }
}

#[async_trait::async_trait]
impl Bus for RedisCluster {
    async fn publish(
        &self,
        app_id: &str,
        channel: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError> {
        let bus = self.core.keys.channel(app_id, channel).bus;
        self.send(bus, wire::event(except, &frame)).await
    }

    fn publish_queued(
        &self,
        app_id: &str,
        channel: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError> {
        let bus = self.core.keys.channel(app_id, channel).bus;
        let queued = Outgoing { bus, payload: wire::event(except, &frame), ack: None, deadline: self.deadline() };
        self.core.writer.try_send(queued).map_err(|_| {
            self.core.metrics.failed(crate::metrics::ClusterOp::Publish);
            ClusterError::Unavailable("the bus queue is full".into())
        })
    }

    fn deliver_here(&self, app_id: &str, channel: &str, frame: &ByteString, except: Option<&SocketId>) {
        self.core.registry.namespace(app_id).deliver(channel, frame, except, None);
    }

    async fn send_to_user(
        &self,
        app_id: &str,
        user_id: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), ClusterError> {
        let bus = self.core.keys.user(app_id, user_id).bus;
        self.send(bus, wire::to_user(except, &frame)).await
    }

    async fn terminate_user(&self, app_id: &str, user_id: &str) -> Result<(), ClusterError> {
        let bus = self.core.keys.user(app_id, user_id).bus;
        self.send(bus, wire::TERMINATE.to_vec()).await
    }

    async fn watchlist_changed(&self, _: &str, _: &str, _: WatchlistStatus) -> Result<(), ClusterError> {
        // The sign-in and sign-out scripts announce online/offline where they decide them, in
        // order; nothing is left to send here.
        Ok(())
    }
}
