//! Laravel's `redis` broadcaster as an event source, in place of laravel-echo-server's Redis
//! subscriber: `PSUBSCRIBE *` on the Redis Laravel publishes to, and each broadcast delivered
//! to the channel's subscribers as a REST trigger would be (same limits, `socket` left out).
//!
//! Every node reads Laravel's broadcasts itself (a `PUBLISH` reaches every subscriber of
//! Redis), so each delivers to its own sockets only (`Bus::deliver_here`): on a cluster no
//! broadcast arrives twice. Its connection re-subscribes by itself after a reconnect;
//! broadcasts published while it was away are lost, as they are for laravel-echo-server.
//! Must not let a malformed message stop it: each is counted and logged, then skipped.

mod laravel;

use std::sync::Arc;

use bytestring::ByteString;
use redis::aio::ConnectionManagerConfig;
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Duration;

use crate::apps::App;
use crate::cluster::Cluster;
use crate::metrics::Metrics;

/// Where to read and whose broadcasts they are.
#[derive(Clone, Debug)]
pub struct IngestSettings {
    /// The Redis Laravel publishes to.
    pub url: String,
    /// Laravel's key prefix, stripped from channel names.
    pub key_prefix: String,
    /// Herald's own bus prefix (`adapter.key_prefix`), whose channels are skipped.
    pub own_prefix: String,
    /// How long a cache channel keeps the event.
    pub cache_ttl: Duration,
    /// Redis connect and command timeout.
    pub timeout: Duration,
}

/// The running subscriber.
pub struct Ingest {
    task: JoinHandle<()>,
}

impl Ingest {
    /// Connects and subscribes, then reads in a task of its own.
    ///
    /// # Errors
    /// Redis could not be reached or the subscription failed.
    pub async fn start(
        settings: IngestSettings,
        app: Arc<App>,
        cluster: Cluster,
        metrics: Metrics,
    ) -> Result<Self, String> {
        let fail = |e: redis::RedisError| format!("cannot read Laravel's broadcasts from Redis: {e}");
        let info = settings.url.as_str().into_connection_info().map_err(fail)?;
        let redis_info = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(redis_info)).map_err(fail)?;
        // Unbounded for the same reason as the bus reader's (cluster/redis/mod.rs): Redis itself
        // disconnects a subscriber past its pub/sub output limit.
        let (tx, rx) = mpsc::unbounded_channel();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_max_delay(Duration::from_secs(1))
            .set_push_sender(tx)
            .set_automatic_resubscription();
        let mut conn = client.get_connection_manager_with_config(config).await.map_err(fail)?;
        conn.psubscribe("*").await.map_err(fail)?;
        tracing::info!(app_id = %app.id, key_prefix = %settings.key_prefix, "reading Laravel's redis broadcasts");
        let reader = Reader { settings, app, cluster, metrics, _conn: conn };
        Ok(Self { task: tokio::spawn(reader.run(rx)) })
    }

    /// Stops reading.
    pub fn stop(self) {
        self.task.abort();
    }
}

struct Reader {
    settings: IngestSettings,
    app: Arc<App>,
    cluster: Cluster,
    metrics: Metrics,
    /// Kept so the subscription (and its automatic renewal) lives as long as the reader.
    _conn: redis::aio::ConnectionManager,
}

impl Reader {
    async fn run(self, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
        while let Some(push) = pushes.recv().await {
            match push.kind {
                PushKind::PMessage => self.on_message(push.data).await,
                PushKind::Disconnection => tracing::warn!("lost Laravel's Redis; re-subscribing"),
                _ => {}
            }
        }
    }

    async fn on_message(&self, data: Vec<Value>) {
        // [pattern, channel, payload]
        let mut data = data.into_iter().skip(1);
        let (Some(Value::BulkString(channel)), Some(Value::BulkString(payload))) = (data.next(), data.next()) else {
            return self.metrics.ingest("malformed");
        };
        let s = &self.settings;
        let parsed = laravel::parse(&channel, &payload, &s.key_prefix, &s.own_prefix, &self.app.limits);
        let broadcast = match parsed {
            Ok(b) => b,
            Err(laravel::Skip::Foreign) => return self.metrics.ingest("foreign"),
            Err(e @ laravel::Skip::Malformed(_)) => {
                tracing::warn!(error = %e, "Laravel broadcast dropped");
                return self.metrics.ingest("malformed");
            }
            Err(e @ laravel::Skip::Refused(_)) => {
                tracing::warn!(error = %e, "Laravel broadcast dropped");
                return self.metrics.ingest("refused");
            }
        };
        let (app, name) = (self.app.id.as_str(), broadcast.channel.as_str());
        if broadcast.channel.is_cache() {
            let put = self.cluster.state.cache_put(app, name, &broadcast.event, &broadcast.data, s.cache_ttl);
            if let Err(e) = put.await {
                tracing::warn!(error = %e, "cache channel not updated");
            }
        }
        let frame = ByteString::from(broadcast.frame);
        self.cluster.bus.deliver_here(app, name, &frame, broadcast.except.as_ref());
        self.metrics.ingest("delivered");
    }
}
