//! The connections to Redis: one for commands and scripts, one (RESP3, with a push receiver)
//! for the bus subscriptions, each either to one server or to a Redis Cluster. Both reconnect
//! by themselves; a lost subscription connection is reported as a `Disconnection` push.
//! Must not decide anything: it only hides the difference between the two deployments
//! (`PUBLISH`/`SUBSCRIBE` on one server, `SPUBLISH`/`SSUBSCRIBE` on a cluster).

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, IntoConnectionInfo, Pipeline, ProtocolVersion, PushInfo, RedisFuture, RedisResult, Value};
use tokio::sync::mpsc;

/// One connection, to a server or to a cluster. Cheap to clone (both are multiplexed).
#[derive(Clone)]
pub(super) enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// Where and how to connect.
#[derive(Clone, Debug)]
pub(super) struct LinkSettings {
    /// `redis://…`, or comma-separated seeds for a cluster.
    pub(super) url: String,
    /// Redis Cluster rather than one server.
    pub(super) cluster: bool,
    /// Command (and connect) timeout.
    pub(super) timeout: Duration,
}

impl Link {
    /// The command connection.
    pub(super) async fn commands(settings: &LinkSettings) -> RedisResult<Self> {
        connect(settings, None).await
    }

    /// The subscription connection; every push (messages, confirmations, disconnections) goes
    /// to `pushes`.
    pub(super) async fn subscriptions(
        settings: &LinkSettings,
        pushes: mpsc::UnboundedSender<PushInfo>,
    ) -> RedisResult<Self> {
        connect(settings, Some(pushes)).await
    }

    /// The publish command for this deployment.
    pub(super) fn publish_command(&self) -> &'static str {
        match self {
            Self::Single(_) => "PUBLISH",
            Self::Cluster(_) => "SPUBLISH",
        }
    }

    /// Publishes each `(bus channel, message)` in order: one pipeline on a server; on a cluster
    /// one command each (a pipeline must stay on one slot), sent in order on the shards'
    /// connections.
    pub(super) async fn publish_all(&mut self, items: &[(&str, &[u8])]) -> RedisResult<()> {
        match self {
            Self::Single(c) => {
                let mut pipe = redis::pipe();
                for (bus, payload) in items {
                    pipe.cmd("PUBLISH").arg(*bus).arg(*payload).ignore();
                }
                pipe.query_async(c).await
            }
            Self::Cluster(c) => {
                let sends = items.iter().map(|(bus, payload)| {
                    let mut c = c.clone();
                    let cmd = redis::cmd("SPUBLISH").arg(*bus).arg(*payload).to_owned();
                    async move { cmd.query_async::<()>(&mut c).await }
                });
                futures_util::future::try_join_all(sends).await.map(|_| ())
            }
        }
    }

    /// Subscribes to bus channels; returns once Redis confirmed them.
    pub(super) async fn subscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Single(c) => c.subscribe(channels).await,
            Self::Cluster(c) => {
                // Sharded subscriptions are per slot: one command per channel.
                for ch in channels {
                    c.ssubscribe(ch).await?;
                }
                Ok(())
            }
        }
    }

    /// Unsubscribes from bus channels.
    pub(super) async fn unsubscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Single(c) => c.unsubscribe(channels).await,
            Self::Cluster(c) => {
                for ch in channels {
                    c.sunsubscribe(ch).await?;
                }
                Ok(())
            }
        }
    }
}

async fn connect(settings: &LinkSettings, pushes: Option<mpsc::UnboundedSender<PushInfo>>) -> RedisResult<Link> {
    if settings.cluster {
        let seeds: Vec<&str> = settings.url.split(',').map(str::trim).collect();
        let mut builder = ClusterClientBuilder::new(seeds)
            .connection_timeout(settings.timeout)
            .response_timeout(settings.timeout)
            .use_protocol(ProtocolVersion::RESP3);
        if let Some(tx) = pushes {
            builder = builder.push_sender(tx);
        }
        let conn = builder.build()?.get_async_connection().await?;
        return Ok(Link::Cluster(conn));
    }
    let info = settings.url.as_str().into_connection_info()?;
    let redis_info = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(redis_info))?;
    let mut config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(settings.timeout))
        .set_response_timeout(Some(settings.timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1));
    if let Some(tx) = pushes {
        config = config.set_push_sender(tx);
    }
    Ok(Link::Single(client.get_connection_manager_with_config(config).await?))
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}
