//! `connect`: C WebSocket connections opened as fast as the concurrency allows, then held idle
//! for `--duration`. Reports connects/s, failures, handshake latency, the channel events the
//! connections received while held (a soak's broadcasts: expected = broadcasts × connected)
//! and, given the server PID, its RSS per connection right after connecting and again at the
//! end of the hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;
use futures_util::future::join_all;
use tokio::sync::Semaphore;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::net::Target;
use crate::report::{Errors, Progress, Report};
use crate::stats::{CpuWindow, Latency, rss_kb};
use crate::{Result, TargetArgs};

#[derive(Args, Debug)]
pub(crate) struct ConnectArgs {
    /// Connections to open.
    #[arg(short = 'c', long, default_value_t = 1000)]
    connections: usize,
    /// Also subscribe each connection to this public channel (empty: stay unsubscribed).
    #[arg(long, default_value = "")]
    channel: String,
    /// Seconds to let the server settle before reading its RSS after connecting.
    #[arg(long, default_value_t = 1.0)]
    settle: f64,
}

#[derive(Default)]
struct Shared {
    connected: AtomicU64,
    disconnects: AtomicU64,
    /// Frames other than the protocol's own (`pusher:…`, `pusher_internal:…`) received.
    events: AtomicU64,
}

pub(crate) async fn run(t: &TargetArgs, a: &ConnectArgs) -> Result<Report> {
    let target = Target::resolve(t, a.connections).await?;
    let shared = Arc::new(Shared::default());
    let latency = Arc::new(Latency::new());
    let errors = Arc::new(Errors::default());
    let stop = CancellationToken::new();
    let rss_before = t.server_pid.and_then(|p| rss_kb(Some(p)));
    let progress = {
        let (s, total) = (shared.clone(), a.connections);
        Progress::start(t.progress, move || {
            let c = s.connected.load(Ordering::Relaxed);
            let (d, e) = (s.disconnects.load(Ordering::Relaxed), s.events.load(Ordering::Relaxed));
            format!("connected {c}/{total}  disconnects {d}  events received {e}")
        })
    };
    let cpu = CpuWindow::start(t.server_pid);
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(t.connect_concurrency.max(1)));
    let mut attempts = Vec::with_capacity(a.connections);
    for n in 0..a.connections {
        let (target, shared, latency, errors, stop, gate) =
            (target.clone(), shared.clone(), latency.clone(), errors.clone(), stop.clone(), gate.clone());
        let channel = a.channel.clone();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        attempts.push(done_rx);
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let t0 = Instant::now();
            let conn = target.connect_subscribed(n, &channel).await;
            drop(permit);
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    errors.note("connect", e);
                    let _ = done_tx.send(());
                    return;
                }
            };
            latency.record(n, t0.elapsed().as_micros() as u64);
            shared.connected.fetch_add(1, Ordering::Relaxed);
            let _ = done_tx.send(());
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    r = conn.next_text() => match r {
                        Ok(Some(text)) => {
                            if !text.as_str().starts_with(r#"{"event":"pusher"#) {
                                shared.events.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {
                            shared.disconnects.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    },
                }
            }
        });
    }
    join_all(attempts).await;
    let connect_secs = started.elapsed().as_secs_f64();
    let connected = shared.connected.load(Ordering::Relaxed);
    let usage = cpu.finish(Some(("connect", connected)));

    tokio::time::sleep(Duration::from_secs_f64(a.settle)).await;
    let rss_connected = t.server_pid.and_then(|p| rss_kb(Some(p)));
    tokio::time::sleep(Duration::from_secs_f64(t.duration)).await;
    let rss_end = t.server_pid.and_then(|p| rss_kb(Some(p)));
    let disconnects = shared.disconnects.load(Ordering::Relaxed);
    stop.cancel();
    progress.stop();

    let mut r = Report::new("connect", target.authority.clone());
    r.param("connections", a.connections);
    r.param("concurrency", t.connect_concurrency);
    r.param("channel", a.channel.as_str());
    r.param("source_ips", target.source_count());
    r.metric("connected", connected as f64);
    r.metric("connect_secs", connect_secs);
    r.metric("connects_per_sec", connected as f64 / connect_secs.max(1e-6));
    latency.report(&mut r, "connect_latency");
    r.metric("disconnects_during_hold", disconnects as f64);
    r.metric("events_received", shared.events.load(Ordering::Relaxed) as f64);
    if let (Some(before), Some(after), Some(end)) = (rss_before, rss_connected, rss_end) {
        r.metric("server_rss_before_kb", before as f64);
        r.metric("server_rss_connected_kb", after as f64);
        r.metric("server_rss_end_kb", end as f64);
        let per = |kb: u64| (kb.saturating_sub(before) * 1024) as f64 / connected.max(1) as f64;
        r.metric("server_rss_per_conn_bytes", per(after));
        r.metric("server_rss_per_conn_end_bytes", per(end));
    }
    r.extend(usage);
    r.errors(&errors);
    Ok(r)
}
