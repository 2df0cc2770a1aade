//! Composition root: builds every service from `Config`, starts both listeners, runs shutdown.
//! The only module that knows every concrete type; must hold no protocol logic.

mod bind;
mod parts;
mod workers;

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use actix_codec::Framed;
use actix_cors::Cors;
use actix_http::error::DispatchError;
use actix_http::{HttpService, Protocol, Request, h1};
use actix_service::{Service, ServiceFactory, ServiceFactoryExt, fn_factory, fn_service, map_config};
use actix_web::dev::{AppConfig, ServerHandle};
use actix_web::middleware::Condition;
use actix_web::{App, HttpServer, web};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::admin::AdminDeps;
use crate::admission::Admission;
use crate::apps::postgres::Postgres;
use crate::cluster::{Cluster, RedisDriver};
use crate::config::{AdapterDriver, Config};
use crate::connection::{Announcer, ConnDeps, ConnSettings};
use crate::debug::{DebugDeps, DebugTap};
use crate::http_api::{self, ApiDeps, ApiSettings};
use crate::ingest::Ingest;
use crate::metrics::{self, Health, Metrics};
use crate::net::Accepted;
use crate::rate_limit::InboundLimits;
use crate::registry::Registry;
use crate::shutdown;
use crate::socketio::SocketIoServer;
use crate::tls::Tls;
use crate::usage::UsageMeter;
use crate::webhooks::{self, Dispatcher, WebhookSettings};
use crate::ws::{self, WsDeps, WsSettings};
use parts::{admission_settings, app_store, redis_settings, socketio_server, start_ingest};
use workers::{Accept, Workers};

/// How often each node reports its usage counts to the cluster (and learns the totals).
const USAGE_REPORT: Duration = Duration::from_secs(1);

/// A started server: its bound addresses and the handle that stops it.
pub struct Running {
    /// WebSocket + REST API address.
    pub addr: SocketAddr,
    /// Metrics and health address.
    pub metrics_addr: SocketAddr,
    stop: CancellationToken,
    done: JoinHandle<()>,
}

impl Running {
    /// Starts the graceful shutdown (as SIGTERM does).
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// Waits until the shutdown sequence finished.
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// Builds every service and starts both listeners. Returns once they are bound.
///
/// # Errors
/// Binding a listener failed.
pub async fn start(config: Config) -> io::Result<Running> {
    let registry = Registry::default();
    let metrics = Metrics::new();
    // First: a certificate that does not load is a mistake in the files, found before any
    // connection to Redis or PostgreSQL is tried.
    let stop = CancellationToken::new();
    // Stops what was started (the reload task) if a later step fails.
    let started = stop.clone().drop_guard();
    let tls = match config.server.tls.enabled() {
        true => Some(
            Tls::start(&config.server.tls, metrics.tls(), stop.child_token())
                .map_err(|e| io::Error::other(format!("cannot load the TLS certificate (server.tls): {e}")))?,
        ),
        false => None,
    };
    let health = Health::default();
    let debug = DebugTap::new(&config.debug, metrics.debug());
    let (apps, database) = app_store(&config, &metrics, &registry)?;
    let (webhooks, dispatcher) =
        webhooks::start(WebhookSettings::from(&config.webhooks), metrics.clone(), debug.clone());
    let (cluster, driver) = match config.adapter.driver {
        AdapterDriver::Local => (Cluster::local(registry.clone()), None),
        AdapterDriver::Redis | AdapterDriver::RedisCluster => {
            let settings = redis_settings(&config.adapter, config.webhooks.vacate_delay_ms);
            let driver = RedisDriver::start(settings, registry.clone(), metrics.cluster(), health.clone())
                .await
                .map_err(|e| io::Error::other(format!("cannot join the cluster: {e}")))?;
            let cluster = driver.cluster();
            driver.set_transitions(Arc::new(Announcer::new(apps.clone(), webhooks.clone(), cluster.bus.clone())));
            (cluster, Some(driver))
        }
    };
    let ingest = start_ingest(&config, apps.as_ref(), &cluster, &metrics).await?;
    let usage = UsageMeter::new(cluster.usage.clone(), registry.clone());
    let reporter = usage.start(USAGE_REPORT);
    let ws = &config.websocket;
    let conn = ConnDeps {
        cluster: cluster.clone(),
        metrics: metrics.clone(),
        webhooks,
        usage: usage.clone(),
        debug: debug.clone(),
        settings: ConnSettings {
            subscription_error_event: ws.subscription_error_event,
            cache_ttl: Duration::from_secs(ws.cache_ttl_secs),
            vacate_delay: Duration::from_millis(config.webhooks.vacate_delay_ms),
        },
    };
    let admission = Admission::new(admission_settings(&config.server), metrics.open_sockets(), Instant::now());
    let ws_deps = WsDeps {
        apps: apps.clone(),
        conn,
        registry: registry.clone(),
        health: health.clone(),
        admission,
        settings: WsSettings {
            activity_timeout: Duration::from_secs(ws.activity_timeout_secs),
            pong_timeout: Duration::from_secs(ws.pong_timeout_secs),
            max_message_bytes: ws.max_message_bytes,
            outbound_queue_frames: ws.outbound_queue_frames,
            require_protocol_param: ws.require_protocol_param,
            path_prefix: config.server.path_prefix.clone(),
            inbound: InboundLimits {
                per_second: ws.inbound_messages_per_second,
                burst: ws.inbound_burst,
                refused_before_close: ws.inbound_refused_before_close,
            },
        },
    };
    let socketio = config.socketio.enabled.then(|| socketio_server(&config, &ws_deps));
    let queries = cluster.queries.clone();
    let api_deps = ApiDeps {
        apps,
        cluster,
        metrics: metrics.clone(),
        usage: usage.clone(),
        debug: debug.clone(),
        settings: ApiSettings::from_config(&config),
    };
    let (main, addr) = main_listener(&config, ws_deps, api_deps, socketio.clone(), tls)?;
    let pool = database.as_ref().map(|d| d.store.pool().clone());
    let console = (config.debug.enabled && !config.app_store.admin_token.is_empty()).then(|| DebugDeps {
        tap: debug,
        token: config.app_store.admin_token.clone(),
        app_ids: config.apps.iter().map(|a| a.id.clone()).collect(),
        pool: pool.clone(),
        queries,
    });
    let store = database.as_ref().map(|d| d.store.clone());
    let admin = AdminDeps { token: config.app_store.admin_token.clone(), store, usage };
    let (metrics_srv, metrics_addr) = metrics_listener(&config, metrics, health.clone(), admin, console)?;
    let sweeper = tokio::spawn(sweep_cache(registry.clone(), stop.child_token()));
    let sequence = Shutdown {
        config: config.clone(),
        registry,
        health,
        main,
        metrics: metrics_srv,
        dispatcher,
        driver,
        ingest,
        socketio,
        database,
        reporter,
    };
    started.disarm();
    let token = stop.clone();
    let done = tokio::spawn(async move {
        token.cancelled().await;
        sequence.run().await;
        sweeper.abort();
    });
    tracing::info!(%addr, %metrics_addr, "herald listening");
    Ok(Running { addr, metrics_addr, stop, done })
}

/// How [`run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The shutdown sequence ran to its end.
    Drained,
    /// A second signal arrived during the drain: stop at once, without finishing it.
    Interrupted,
}

/// Runs until the first of `signals` (see [`shutdown::signals`]), then shuts down gracefully;
/// a second one during the drain ends it at once (an operator's second Ctrl-C, or a
/// supervisor that lost patience). A closed `signals` counts as a signal.
///
/// # Errors
/// Binding a listener failed.
pub async fn run(config: Config, mut signals: mpsc::Receiver<()>) -> io::Result<Stopped> {
    let running = start(config).await?;
    let _ = signals.recv().await;
    tracing::info!("shutdown signal received; draining (a second signal exits at once)");
    running.shutdown();
    tokio::select! {
        () = running.wait() => Ok(Stopped::Drained),
        _ = signals.recv() => {
            tracing::warn!("second shutdown signal: exiting without finishing the drain");
            Ok(Stopped::Interrupted)
        }
    }
}

fn cors(origins: &[String]) -> Cors {
    let cors = Cors::default().allow_any_method().allow_any_header().max_age(3600);
    if origins.iter().any(|o| o == "*") {
        return cors.allow_any_origin();
    }
    origins.iter().fold(cors, |c, o| c.allowed_origin(o))
}

/// How long a stop waits for the HTTP connections being served to end.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The WebSocket + REST listener: Herald's own workers (`workers`) running actix-http's
/// `HttpService` with the upgrade service registered, so upgraded sockets leave the HTTP
/// dispatcher. With `tls`, each accepted connection is a TLS handshake first (`tls/`), then the
/// same HTTP.
fn main_listener(
    config: &Config,
    ws_deps: WsDeps,
    api_deps: ApiDeps,
    socketio: Option<SocketIoServer>,
    tls: Option<Tls>,
) -> io::Result<(Workers, SocketAddr)> {
    let listeners =
        bind::reuseport_group(bind::resolve(&config.server.host, config.server.port)?, config.server.workers)?;
    let addr = listeners[0].local_addr()?;
    let http = Http {
        prefix: config.server.path_prefix.clone(),
        origins: config.http_api.cors_allowed_origins.clone(),
        request_timeout: std::time::Duration::from_secs(config.server.request_timeout_secs),
        addr,
        ws_deps,
        api_deps,
        socketio,
    };
    let workers = match tls {
        None => Workers::start(listeners, STOP_GRACE, move || {
            fn_service(|(io, peer): Accept| {
                std::future::ready(Ok::<_, DispatchError>((io, Protocol::Http1, Some(peer))))
            })
            .and_then(http.service::<TcpStream>())
        })?,
        Some(tls) => Workers::start(listeners, STOP_GRACE, move || {
            let tls = tls.clone();
            fn_service(move |(io, peer): Accept| {
                let tls = tls.clone();
                async move {
                    let stream = tls.accept(io).await.ok_or(())?;
                    Ok((stream, Protocol::Http1, Some(peer)))
                }
            })
            .and_then(http.service().map_err(|_| ()))
        })?,
    };
    Ok((workers, addr))
}

/// What each worker's HTTP service is built from.
#[derive(Clone)]
struct Http {
    prefix: String,
    origins: Vec<String>,
    request_timeout: std::time::Duration,
    addr: SocketAddr,
    ws_deps: WsDeps,
    api_deps: ApiDeps,
    socketio: Option<SocketIoServer>,
}

impl Http {
    /// One worker's HTTP/1.1 service over streams of type `T`: the REST API, the plain GETs of
    /// the socket endpoints, socket.io polling, and upgrades handed to [`upgrades`].
    fn service<T: Accepted>(
        &self,
    ) -> impl ServiceFactory<
        (T, Protocol, Option<SocketAddr>),
        Config = (),
        Response = (),
        Error = DispatchError,
        InitError = (),
    > + use<T> {
        // Called on the worker's thread, in its runtime: fan-outs from other threads then wake
        // this worker's sockets in one batch (registry::wake).
        crate::registry::wake::enter_worker();
        let (ws_deps, api_deps) = (self.ws_deps.clone(), self.api_deps.clone());
        let (prefix, origins) = (self.prefix.clone(), self.origins.clone());
        let cors_on = !origins.is_empty();
        let upgrade = upgrades::<T, _>(ws::upgrade_service(ws_deps.clone()), self.socketio.clone());
        let sio = self.socketio.clone();
        let app = App::new().configure(|c| sio.iter().for_each(|s| s.configure(c))).service(
            web::scope(&prefix).configure(|c| ws::configure(c, ws_deps)).service(
                web::scope("")
                    .wrap(Condition::new(cors_on, cors(&origins)))
                    .configure(|c| http_api::configure(c, api_deps)),
            ),
        );
        HttpService::build()
            .client_request_timeout(self.request_timeout)
            .local_addr(self.addr)
            .upgrade(upgrade)
            .finish(map_config(app, |()| AppConfig::default()))
    }
}

/// Every upgrade request of a worker: socket.io's path to socket.io, the rest to `ws`.
fn upgrades<T, F>(
    ws: F,
    socketio: Option<SocketIoServer>,
) -> impl ServiceFactory<(Request, Framed<T, h1::Codec>), Config = (), Response = (), Error = Infallible, InitError = ()>
where
    T: Accepted,
    F: ServiceFactory<(Request, Framed<T, h1::Codec>), Config = (), Response = (), Error = Infallible, InitError = ()>,
    F::Service: 'static,
{
    fn_factory(move || {
        let (ws, socketio) = (ws.new_service(()), socketio.clone());
        async move {
            let ws = Rc::new(ws.await?);
            Ok(fn_service(move |(req, framed): (Request, Framed<T, h1::Codec>)| {
                let (ws, socketio) = (ws.clone(), socketio.clone());
                async move {
                    match socketio {
                        Some(sio) if sio.owns(req.path()) => {
                            if let Err(e) = sio.upgrade(req, framed).await {
                                tracing::debug!(error = %e, "socket.io upgrade ended early");
                            }
                            Ok(())
                        }
                        _ => ws.call((req, framed)).await,
                    }
                }
            }))
        }
    })
}

/// Metrics, health and (with an admin token) the admin API and the debug console.
fn metrics_listener(
    config: &Config,
    m: Metrics,
    health: Health,
    admin: AdminDeps,
    console: Option<DebugDeps>,
) -> io::Result<(ServerHandle, SocketAddr)> {
    let server = HttpServer::new(move || {
        let (m, health, admin, console) = (m.clone(), health.clone(), admin.clone(), console.clone());
        App::new().configure(move |c| {
            if let Some(console) = console {
                crate::debug::configure(c, console);
            }
            if !admin.token.is_empty() {
                crate::admin::configure(c, admin);
            }
            metrics::configure(c, m, health);
        })
    })
    .disable_signals()
    .workers(1)
    .shutdown_timeout(1)
    .bind((config.metrics.host.as_str(), config.metrics.port))?;
    let addr = first_addr(&server.addrs())?;
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((handle, addr))
}

fn first_addr(addrs: &[SocketAddr]) -> io::Result<SocketAddr> {
    addrs.first().copied().ok_or_else(|| io::Error::other("listener bound no address"))
}

async fn sweep_cache(registry: Registry, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => registry.cache().sweep(tokio::time::Instant::now()),
        }
    }
}

/// The shutdown order: fail `/ready`, refuse upgrades, drain sockets gradually, stop listeners.
struct Shutdown {
    config: Config,
    registry: Registry,
    health: Health,
    main: Workers,
    metrics: ServerHandle,
    dispatcher: Dispatcher,
    driver: Option<RedisDriver>,
    ingest: Option<Ingest>,
    socketio: Option<SocketIoServer>,
    database: Option<Postgres>,
    reporter: JoinHandle<()>,
}

impl Shutdown {
    async fn run(self) {
        self.health.start_draining();
        if let Some(ingest) = self.ingest {
            ingest.stop();
        }
        let grace = Duration::from_secs(self.config.shutdown.ready_grace_secs);
        tokio::time::sleep(grace).await;
        let window = Duration::from_secs(self.config.shutdown.drain_secs);
        shutdown::drain(&self.registry, window).await;
        shutdown::wait_closed(&self.registry, Duration::from_secs(5)).await;
        if let Some(socketio) = &self.socketio {
            // Sessions the drain closed linger in socketioxide until their transport ends.
            socketio.close().await;
        }
        // The last usage report, with what the drain's sockets counted.
        self.reporter.abort();
        if let Some(driver) = self.driver {
            // The sockets left the cluster one by one; give back the lease (and anything a
            // socket could not).
            driver.stop().await;
        }
        // Sockets are gone, so their last webhooks (vacated, member_removed) are queued: flush.
        self.dispatcher.finish(window.max(Duration::from_secs(5))).await;
        self.main.stop().await;
        self.metrics.stop(true).await;
        if let Some(database) = self.database {
            database.stop();
        }
        tracing::info!("shutdown complete");
    }
}
