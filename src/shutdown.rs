//! Shutdown: the signals, and the drain that closes sockets gradually with 4200.
//! Must not stop listeners itself: `server.rs` owns the order of the whole sequence.

use tokio::sync::mpsc;
use tokio::time::{Duration, Instant, sleep, sleep_until};

use crate::protocol::ErrorCode;
use crate::registry::Registry;

/// Every SIGINT and SIGTERM (Kubernetes sends SIGTERM) from the moment this is called, one
/// `()` each. The handlers stay installed for the process's life, so a second signal sent
/// right after the first is never lost between two waits (as it would be with a handler made
/// anew for each wait). Call inside the runtime.
///
/// # Errors
/// Installing a handler failed (the runtime has no signal driver).
pub fn signals() -> std::io::Result<mpsc::Receiver<()>> {
    let (tx, rx) = mpsc::channel(4);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                // A full channel already holds more signals than anyone waits for.
                let _ = tx.try_send(());
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.try_send(());
        }
    });
    Ok(rx)
}

/// How often the drain closes its next batch of sockets.
const DRAIN_TICK: Duration = Duration::from_millis(20);

/// Closes every open socket with 4200, spread evenly over `window` so clients do not all
/// reconnect in the same instant. Returns when every socket was asked to close.
pub async fn drain(registry: &Registry, window: Duration) {
    let sockets: Vec<_> = registry.namespaces().iter().flat_map(|(_, ns)| ns.outbounds()).collect();
    if sockets.is_empty() {
        return;
    }
    tracing::info!(sockets = sockets.len(), window_secs = window.as_secs_f64(), "draining sockets");
    let ticks = (window.as_millis() / DRAIN_TICK.as_millis()).max(1) as usize;
    let per_tick = sockets.len().div_ceil(ticks);
    let start = Instant::now();
    for (i, chunk) in sockets.chunks(per_tick).enumerate() {
        sleep_until(start + DRAIN_TICK * i as u32).await;
        for out in chunk {
            out.close(ErrorCode::ReconnectImmediately);
        }
    }
}

/// Waits until no socket is registered, or `limit` passes.
pub async fn wait_closed(registry: &Registry, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let open: usize = registry.namespaces().iter().map(|(_, ns)| ns.connection_count()).sum();
        if open == 0 {
            return;
        }
        sleep(Duration::from_millis(20)).await;
    }
}
