//! The services `server::start` composes, each built from its part of `Config`: the app
//! store, the ingest reader, the socket.io endpoint, the Redis driver's and admission's
//! settings. Must not start listeners or hold protocol logic.

use std::io;
use std::sync::Arc;

use tokio::time::Duration;

use crate::admission::AdmissionSettings;
use crate::apps::postgres::{Postgres, PostgresSettings, PostgresStore};
use crate::apps::{AppStore, StaticAppStore};
use crate::cluster::{Cluster, RedisSettings};
use crate::config::{AdapterConfig, AdapterDriver, AppStoreDriver, Config, FD_RESERVE, ServerConfig, parse_proxy};
use crate::ingest::{Ingest, IngestSettings};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::socketio::{SocketIoDeps, SocketIoServer, SocketIoSettings};
use crate::ws::WsDeps;

/// The app an endpoint serves: `app_id`, or the file's only app when it is empty (checked
/// by `config::validate`).
fn named_app(config: &Config, app_id: &str) -> String {
    match app_id {
        "" => config.apps.first().map(|a| a.id.clone()).unwrap_or_default(),
        id => id.to_owned(),
    }
}

/// Starts reading Laravel's `redis` broadcaster when `[ingest]` is enabled.
///
/// # Errors
/// Its app is unknown, or its Redis is unreachable.
pub(super) async fn start_ingest(
    config: &Config,
    apps: &dyn AppStore,
    cluster: &Cluster,
    metrics: &Metrics,
) -> io::Result<Option<Ingest>> {
    let ingest = &config.ingest;
    if !ingest.enabled {
        return Ok(None);
    }
    let app_id = named_app(config, &ingest.app_id);
    let app = apps
        .find_by_id(&app_id)
        .await
        .map_err(io::Error::other)?
        .ok_or_else(|| io::Error::other(format!("ingest.app_id: no app {app_id:?}")))?;
    let settings = IngestSettings {
        url: ingest.url(&config.adapter).to_owned(),
        key_prefix: ingest.key_prefix.clone(),
        own_prefix: config.adapter.key_prefix.clone(),
        cache_ttl: Duration::from_secs(config.websocket.cache_ttl_secs),
        timeout: Duration::from_millis(config.adapter.command_timeout_ms),
    };
    let started = Ingest::start(settings, app, cluster.clone(), metrics.clone()).await;
    started.map(Some).map_err(io::Error::other)
}

/// The app store: the configuration's `[[apps]]`, or PostgreSQL (whose changes close this
/// node's sockets of a disabled, deleted or re-keyed app).
///
/// # Errors
/// The database URL is malformed.
pub(super) fn app_store(
    config: &Config,
    metrics: &Metrics,
    registry: &Registry,
) -> io::Result<(Arc<dyn AppStore>, Option<Postgres>)> {
    let s = &config.app_store;
    if s.driver == AppStoreDriver::Static {
        return Ok((Arc::new(StaticAppStore::new(&config.apps)), None));
    }
    let settings = PostgresSettings {
        url: s.database_url.clone(),
        pool_size: s.pool_size,
        migrate: s.migrate,
        cache_ttl: Duration::from_secs(s.cache_ttl_secs),
        miss_ttl: Duration::from_millis(s.miss_ttl_ms),
        timeout: Duration::from_millis(s.timeout_ms),
    };
    let database = PostgresStore::start(settings, metrics.clone()).map_err(io::Error::other)?;
    let registry = registry.clone();
    database.store.on_change(Arc::new(move |app_id, code| {
        let sockets = registry.namespace(app_id).outbounds();
        if !sockets.is_empty() {
            tracing::info!(%app_id, code = code.code(), sockets = sockets.len(), "app changed; closing its sockets");
        }
        for out in sockets {
            out.close(code);
        }
    }));
    Ok((database.store.clone(), Some(database)))
}

/// Echo's socket.io endpoint, sharing the Pusher endpoint's connection dependencies,
/// registry, draining flag and admission.
pub(super) fn socketio_server(config: &Config, ws: &WsDeps) -> SocketIoServer {
    let sio = &config.socketio;
    let app_id = named_app(config, &sio.app_id);
    SocketIoServer::new(SocketIoDeps {
        apps: ws.apps.clone(),
        conn: ws.conn.clone(),
        registry: ws.registry.clone(),
        health: ws.health.clone(),
        admission: ws.admission.clone(),
        settings: SocketIoSettings {
            app_id,
            path: format!("{}{}", config.server.path_prefix, sio.path),
            ping_interval: Duration::from_millis(sio.ping_interval_ms),
            ping_timeout: Duration::from_millis(sio.ping_timeout_ms),
            max_payload_bytes: sio.max_payload_bytes,
            outbound_queue_frames: ws.settings.outbound_queue_frames,
            inbound: ws.settings.inbound,
            auth_timeout: Duration::from_millis(sio.auth_timeout_ms),
            auth_concurrency: sio.auth_concurrency,
            auth_max_response_bytes: sio.auth_max_response_bytes,
            cors_allowed_origins: sio.cors_allowed_origins.clone(),
        },
    })
}

/// The Redis drivers' settings.
pub(super) fn redis_settings(adapter: &AdapterConfig, vacate_delay_ms: u64) -> RedisSettings {
    RedisSettings {
        url: adapter.redis_url.clone(),
        cluster: adapter.driver == AdapterDriver::RedisCluster,
        prefix: adapter.key_prefix.clone(),
        lease: Duration::from_millis(adapter.lease_ms),
        heartbeat: Duration::from_millis(adapter.heartbeat_ms),
        timeout: Duration::from_millis(adapter.command_timeout_ms),
        bus_queue: adapter.bus_queue,
        vacate_delay: Duration::from_millis(vacate_delay_ms),
    }
}

/// The node's admission limits; an automatic `max_connections` leaves `FD_RESERVE` of the
/// open-files limit to everything that is not a socket.
pub(super) fn admission_settings(server: &ServerConfig) -> AdmissionSettings {
    let max_connections = match server.max_connections {
        0 => {
            let (soft, _) = rlimit::Resource::NOFILE.get().unwrap_or((u64::MAX, u64::MAX));
            let max = soft.saturating_sub(FD_RESERVE).max(soft / 2);
            usize::try_from(max).unwrap_or(usize::MAX)
        }
        n => n,
    };
    AdmissionSettings {
        max_connections,
        per_second: server.max_connections_per_second,
        burst: server.connections_burst,
        max_per_ip: server.max_connections_per_ip,
        trusted_proxies: server.trusted_proxies.iter().filter_map(|p| parse_proxy(p)).collect(),
    }
}
