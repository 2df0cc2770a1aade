//! `fanout`: C subscribers over K public channels receive events published over the REST
//! API, at a fixed rate or as fast as P keep-alive publishers go. Each event's `data` carries
//! its send time, so latency is publish-call → frame read, on one clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use clap::Args;
use futures_util::future::join_all;
use tokio::sync::Semaphore;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::net::Target;
use crate::pace::Pace;
use crate::report::{Errors, Progress, Report};
use crate::rest::Rest;
use crate::series::Sampler;
use crate::stats::{CpuWindow, Latency, now_us, stamp, stamped_data};
use crate::{Result, TargetArgs};

#[derive(Args, Debug)]
pub(crate) struct FanoutArgs {
    /// Subscriber connections.
    #[arg(short = 'c', long, default_value_t = 1000)]
    subscribers: usize,
    /// Channels they spread over (subscriber i joins channel i mod K).
    #[arg(short = 'k', long, default_value_t = 1)]
    channels: usize,
    /// Events per second over all channels; 0 publishes as fast as the publishers go.
    #[arg(short = 'r', long, default_value_t = 100.0)]
    rate: f64,
    /// Concurrent REST publishers, one keep-alive connection each.
    #[arg(short = 'p', long, default_value_t = 4)]
    publishers: usize,
    /// Bytes of `data` per event.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Channel name prefix (public channels).
    #[arg(long, default_value = "bench-")]
    channel_prefix: String,
    /// Seconds to wait for deliveries still in flight after publishing stopped.
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
}

/// Counters shared by every subscriber and publisher task.
#[derive(Default)]
struct Shared {
    ready: AtomicUsize,
    /// Ready subscribers per channel: what one event to that channel should reach.
    per_channel: Vec<AtomicU64>,
    received: AtomicU64,
    last_received_us: AtomicU64,
    disconnects: AtomicU64,
    published: AtomicU64,
    expected: AtomicU64,
}

pub(crate) async fn run(t: &TargetArgs, a: &FanoutArgs) -> Result<Report> {
    let k = a.channels.max(1);
    let target = Target::resolve(t, a.subscribers + a.publishers).await?;
    let shared = Arc::new(Shared { per_channel: (0..k).map(|_| AtomicU64::new(0)).collect(), ..Shared::default() });
    let latency = Arc::new(Latency::new());
    let errors = Arc::new(Errors::default());
    let stop = CancellationToken::new();
    let channels: Arc<[String]> = (0..k).map(|i| format!("{}{i}", a.channel_prefix)).collect();

    let progress = progress_line(t.progress, shared.clone(), a.subscribers);
    let setup_started = Instant::now();
    let gate = Arc::new(Semaphore::new(t.connect_concurrency.max(1)));
    let mut setups = Vec::with_capacity(a.subscribers);
    for n in 0..a.subscribers {
        let (target, shared, latency, errors, stop, gate) =
            (target.clone(), shared.clone(), latency.clone(), errors.clone(), stop.clone(), gate.clone());
        let channel = channels[n % k].clone();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        setups.push(done_rx);
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let conn = target.connect_subscribed(n, &channel).await;
            drop(permit);
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => {
                    errors.note("subscribe", e);
                    let _ = done_tx.send(());
                    return;
                }
            };
            shared.ready.fetch_add(1, Ordering::Relaxed);
            shared.per_channel[n % k].fetch_add(1, Ordering::Relaxed);
            let _ = done_tx.send(());
            loop {
                let text = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = conn.next_text() => r,
                };
                match text {
                    Ok(Some(text)) => {
                        if let Some(sent) = stamp(&text) {
                            let now = now_us();
                            latency.record(n, now.saturating_sub(sent));
                            shared.received.fetch_add(1, Ordering::Relaxed);
                            shared.last_received_us.fetch_max(now, Ordering::Relaxed);
                        }
                    }
                    Ok(None) | Err(_) => {
                        shared.disconnects.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
    }
    join_all(setups).await;
    let setup_secs = setup_started.elapsed().as_secs_f64();
    let ready = shared.ready.load(Ordering::Relaxed);
    if ready == 0 && a.subscribers > 0 {
        return Err(format!("no subscriber could subscribe: {}", errors.first()).into());
    }

    let cpu = CpuWindow::start(t.server_pid);
    let sampler = {
        let s = shared.clone();
        Sampler::start(t.duration, t.server_pid, move || s.received.load(Ordering::Relaxed))
    };
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(t.duration);
    let trigger_latency = Arc::new(Latency::new());
    let publishers = (0..a.publishers.max(1)).map(|w| {
        let mut pace = Pace::new(start, end, a.rate, w as u64, a.publishers.max(1) as u64);
        let mut rest = Rest::new(target.clone(), a.subscribers + w);
        let (shared, errors, channels, trigger_latency) =
            (shared.clone(), errors.clone(), channels.clone(), trigger_latency.clone());
        let payload = a.payload;
        tokio::spawn(async move {
            while let Some(seq) = pace.next().await {
                let ch = (seq as usize) % channels.len();
                let data = stamped_data(seq, payload);
                let sent = now_us();
                match rest.trigger(&[channels[ch].as_str()], "bench", &data).await {
                    Ok(200) => {
                        trigger_latency.record(0, now_us() - sent);
                        shared.published.fetch_add(1, Ordering::Relaxed);
                        let reach = shared.per_channel[ch].load(Ordering::Relaxed);
                        shared.expected.fetch_add(reach, Ordering::Relaxed);
                    }
                    Ok(status) => errors.note("trigger", format!("HTTP {status}")),
                    Err(e) => errors.note("trigger", e),
                }
            }
            (pace.max_lag, rest.connects)
        })
    });
    let finished = join_all(publishers).await;
    let publish_secs = start.elapsed().as_secs_f64();
    let drain_until = Instant::now() + Duration::from_secs_f64(a.drain);
    while shared.received.load(Ordering::Relaxed) < shared.expected.load(Ordering::Relaxed)
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let received = shared.received.load(Ordering::Relaxed);
    let usage = cpu.finish(Some(("delivery", received)));
    let mut r = Report::new("fanout", target.authority.clone());
    sampler.finish(&mut r, "deliveries").await;
    stop.cancel();
    progress.stop();

    let (mut lag, mut connects) = (Duration::ZERO, 0);
    for (l, c) in finished.into_iter().flatten() {
        lag = lag.max(l);
        connects += c;
    }
    r.param("subscribers", a.subscribers);
    r.param("channels", k);
    r.param("rate", a.rate);
    r.param("publishers", a.publishers);
    r.param("payload_bytes", a.payload);
    r.param("source_ips", target.source_count());
    r.param("nodes", target.node_count());
    let published = shared.published.load(Ordering::Relaxed);
    let expected = shared.expected.load(Ordering::Relaxed);
    let window_us = shared.last_received_us.load(Ordering::Relaxed).saturating_sub(cpu_start_us(start));
    r.metric("subscribers_ready", ready as f64);
    r.metric("subscribe_secs", setup_secs);
    r.metric("events_published", published as f64);
    r.metric("events_per_sec", published as f64 / publish_secs);
    r.metric("deliveries_expected", expected as f64);
    r.metric("deliveries", received as f64);
    r.metric("deliveries_per_sec", if window_us > 0 { received as f64 * 1e6 / window_us as f64 } else { 0.0 });
    r.metric("loss", expected.saturating_sub(received) as f64);
    r.metric(
        "loss_pct",
        if expected > 0 { 100.0 * expected.saturating_sub(received) as f64 / expected as f64 } else { 0.0 },
    );
    r.metric("extra_deliveries", received.saturating_sub(expected) as f64);
    r.metric("disconnects", shared.disconnects.load(Ordering::Relaxed) as f64);
    latency.report(&mut r, "latency");
    r.detail("latency_buckets", latency.buckets());
    trigger_latency.report(&mut r, "trigger_latency");
    r.metric("publish_lag_max_ms", lag.as_secs_f64() * 1000.0);
    r.metric("rest_connections", connects as f64);
    r.extend(usage);
    r.errors(&errors);
    Ok(r)
}

/// `now_us()` at `at` (which lies in the past).
fn cpu_start_us(at: Instant) -> u64 {
    now_us().saturating_sub(at.elapsed().as_micros() as u64)
}

fn progress_line(every: f64, s: Arc<Shared>, total: usize) -> Progress {
    let prev = AtomicU64::new(0);
    Progress::start(every, move || {
        let got = s.received.load(Ordering::Relaxed);
        let rate = got.saturating_sub(prev.swap(got, Ordering::Relaxed));
        format!(
            "subscribed {}/{total}  published {}  delivered {got} (+{rate})  expected {}  disconnects {}",
            s.ready.load(Ordering::Relaxed),
            s.published.load(Ordering::Relaxed),
            s.expected.load(Ordering::Relaxed),
            s.disconnects.load(Ordering::Relaxed)
        )
    })
}
