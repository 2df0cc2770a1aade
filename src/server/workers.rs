//! The main listener's workers: one thread each, a single-threaded runtime that accepts on its
//! own `SO_REUSEPORT` socket and serves what it accepted. Must not know HTTP: it runs the
//! service it is given on every connection.
//!
//! In place of actix-server, which accepts on a thread of its own and hands each connection to
//! a worker over a channel: two thread wake-ups per connect (the acceptor's, then the
//! worker's), and in a connect storm's profile 18 % of the server's samples were the acceptor's
//! context switches. Here the kernel spreads new connections over the workers' sockets, and
//! the worker that gets one is the only thread woken. The peer address comes with the accept
//! (no `getpeername` per connection).
//!
//! A stop closes every worker's socket, waits (up to a grace period) for the connections being
//! served to end, then drops the runtime and with it what still runs there (upgraded sockets,
//! which the drain closed before).

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::thread::JoinHandle;

use actix_service::{Service, ServiceFactory};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;

/// What a worker's service is called with: an accepted stream and its peer.
pub(super) type Accept = (TcpStream, SocketAddr);

/// Connections one worker serves at once (HTTP connections; an upgraded socket leaves this
/// count when its handshake is done). Above it the worker stops accepting until one ends, as
/// actix-server's `max_concurrent_connections` did, with its default.
const MAX_SERVED: usize = 25_000;

/// Blocking-pool threads shared out over the workers (actix-server's budget).
const BLOCKING_THREADS: usize = 512;

/// Pause after an accept error that is not the client's (e.g. out of file descriptors), so a
/// worker does not spin on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The running workers.
pub(super) struct Workers {
    stop: CancellationToken,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts one worker per listening socket of `listeners` (one `SO_REUSEPORT` group, see
    /// `bind`), each serving with a service made by `factory` on its own thread.
    ///
    /// # Errors
    /// A thread cannot be started (those started are stopped).
    pub(super) fn start<F, SF>(listeners: Vec<std::net::TcpListener>, grace: Duration, factory: F) -> io::Result<Self>
    where
        F: Fn() -> SF + Send + Clone + 'static,
        SF: ServiceFactory<Accept, Config = (), Response = ()> + 'static,
    {
        let stop = CancellationToken::new();
        let mut threads = Vec::with_capacity(listeners.len());
        for (index, listener) in listeners.into_iter().enumerate() {
            let (factory, token) = (factory.clone(), stop.clone());
            let thread = std::thread::Builder::new()
                .name(format!("herald-worker-{index}"))
                .spawn(move || run(listener, &factory, &token, grace));
            match thread {
                Ok(thread) => threads.push(thread),
                Err(e) => {
                    Self { stop, threads }.stop_now();
                    return Err(e);
                }
            }
        }
        Ok(Self { stop, threads })
    }

    /// Stops accepting, lets every worker finish the connections it serves (up to the grace
    /// period given at start), and waits until every worker thread is gone.
    pub(super) async fn stop(self) {
        self.stop.cancel();
        let threads = self.threads;
        // Joining blocks: not on the caller's runtime.
        let _ = tokio::task::spawn_blocking(move || threads.into_iter().for_each(|t| drop(t.join()))).await;
    }

    fn stop_now(self) {
        self.stop.cancel();
        self.threads.into_iter().for_each(|t| drop(t.join()));
    }
}

/// One worker's thread: its runtime, its accept loop, then its share of a graceful stop.
fn run<F, SF>(listener: std::net::TcpListener, factory: &F, stop: &CancellationToken, grace: Duration)
where
    F: Fn() -> SF,
    SF: ServiceFactory<Accept, Config = (), Response = ()> + 'static,
{
    // A local runtime (as actix-server's workers use): tasks spawned with `spawn_local` are the
    // scheduler's own, with no `LocalSet` queue and tick in between.
    let built = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads((BLOCKING_THREADS / std::thread::available_parallelism().map_or(1, usize::from)).max(1))
        .build_local(tokio::runtime::LocalOptions::default());
    let runtime = match built {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a worker's runtime");
            return;
        }
    };
    runtime.block_on(async {
        let Ok(listener) = TcpListener::from_std(listener) else {
            tracing::error!("cannot register a worker's listening socket");
            return;
        };
        let Ok(service) = factory().new_service(()).await else {
            tracing::error!("cannot build a worker's HTTP service");
            return;
        };
        let served = Served::default();
        accept_loop(&listener, Rc::new(service), &served, stop).await;
        drop(listener);
        let _ = tokio::time::timeout(grace, served.until(|n| n == 0)).await;
    });
}

async fn accept_loop<S>(listener: &TcpListener, service: Rc<S>, served: &Served, stop: &CancellationToken)
where
    S: Service<Accept, Response = ()> + 'static,
{
    loop {
        if served.count.get() >= MAX_SERVED {
            tokio::select! {
                () = stop.cancelled() => return,
                () = served.until(|n| n < MAX_SERVED) => {}
            }
        }
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(conn) => {
                let (service, guard) = (service.clone(), served.enter());
                tokio::task::spawn_local(async move {
                    let _ = service.call(conn).await;
                    drop(guard);
                });
            }
            // The client gave up between the kernel's accept and ours: nothing to do.
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) => {}
            Err(e) => {
                tracing::warn!(error = %e, "accept failed; pausing the worker's accepts");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
}

/// The connections one worker is serving.
#[derive(Default)]
struct Served {
    count: Rc<Cell<usize>>,
    changed: Rc<Notify>,
}

/// One connection being served, until dropped.
struct ServedGuard {
    count: Rc<Cell<usize>>,
    changed: Rc<Notify>,
}

impl Served {
    fn enter(&self) -> ServedGuard {
        self.count.set(self.count.get() + 1);
        ServedGuard { count: self.count.clone(), changed: self.changed.clone() }
    }

    /// Waits until the count of connections served satisfies `done`.
    async fn until(&self, done: impl Fn(usize) -> bool) {
        while !done(self.count.get()) {
            self.changed.notified().await;
        }
    }
}

impl Drop for ServedGuard {
    fn drop(&mut self) {
        self.count.set(self.count.get() - 1);
        self.changed.notify_waiters();
    }
}
