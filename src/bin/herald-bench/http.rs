//! `http`: REST triggers alone, from C concurrent keep-alive clients, flat out or at a total
//! rate. Reports triggers/s, latency, non-200 answers and how many TCP connections the
//! server made the clients open (one per client when it keeps connections alive).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;
use futures_util::future::join_all;
use tokio::time::{Duration, Instant};

use crate::net::Target;
use crate::pace::Pace;
use crate::report::{Errors, Progress, Report};
use crate::rest::Rest;
use crate::series::Sampler;
use crate::stats::{CpuWindow, Latency, stamped_data};
use crate::{Result, TargetArgs};

#[derive(Args, Debug)]
pub(crate) struct HttpArgs {
    /// Concurrent clients, one keep-alive connection each.
    #[arg(short = 'c', long, default_value_t = 16)]
    clients: usize,
    /// Triggers per second over all clients; 0: as fast as they go.
    #[arg(short = 'r', long, default_value_t = 0.0)]
    rate: f64,
    /// Channel the events go to (nobody needs to be subscribed).
    #[arg(long, default_value = "bench-http")]
    channel: String,
    /// Bytes of `data` per event.
    #[arg(long, default_value_t = 100)]
    payload: usize,
}

#[derive(Default)]
struct Shared {
    ok: AtomicU64,
    refused: AtomicU64,
}

pub(crate) async fn run(t: &TargetArgs, a: &HttpArgs) -> Result<Report> {
    let clients = a.clients.max(1);
    let target = Target::resolve(t, clients).await?;
    let shared = Arc::new(Shared::default());
    let latency = Arc::new(Latency::new());
    let errors = Arc::new(Errors::default());
    let progress = {
        let s = shared.clone();
        let prev = AtomicU64::new(0);
        Progress::start(t.progress, move || {
            let ok = s.ok.load(Ordering::Relaxed);
            let delta = ok.saturating_sub(prev.swap(ok, Ordering::Relaxed));
            format!("ok {ok} (+{delta})  non-200 {}", s.refused.load(Ordering::Relaxed))
        })
    };
    let cpu = CpuWindow::start(t.server_pid);
    let sampler = {
        let s = shared.clone();
        Sampler::start(t.duration, t.server_pid, move || s.ok.load(Ordering::Relaxed))
    };
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(t.duration);
    let workers = (0..clients).map(|w| {
        let (shared, latency, errors) = (shared.clone(), latency.clone(), errors.clone());
        let mut rest = Rest::new(target.clone(), w);
        let mut pace = Pace::new(start, end, a.rate, w as u64, clients as u64);
        let (channel, payload) = (a.channel.clone(), a.payload);
        tokio::spawn(async move {
            while let Some(seq) = pace.next().await {
                let data = stamped_data(seq, payload);
                let t0 = Instant::now();
                match rest.trigger(&[channel.as_str()], "bench", &data).await {
                    Ok(200) => {
                        latency.record(w, t0.elapsed().as_micros() as u64);
                        shared.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(status) => {
                        shared.refused.fetch_add(1, Ordering::Relaxed);
                        errors.note("trigger", format!("HTTP {status}"));
                    }
                    Err(e) => errors.note("trigger", e),
                }
            }
            (pace.max_lag, rest.connects)
        })
    });
    let finished = join_all(workers).await;
    let secs = start.elapsed().as_secs_f64();
    let ok = shared.ok.load(Ordering::Relaxed);
    let usage = cpu.finish(Some(("request", ok)));
    let mut r = Report::new("http", target.authority.clone());
    sampler.finish(&mut r, "requests").await;
    progress.stop();

    let (mut lag, mut connects) = (Duration::ZERO, 0);
    for (l, c) in finished.into_iter().flatten() {
        lag = lag.max(l);
        connects += c;
    }
    r.param("clients", clients);
    r.param("rate", a.rate);
    r.param("payload_bytes", a.payload);
    r.metric("requests_ok", ok as f64);
    r.metric("requests_per_sec", ok as f64 / secs.max(1e-6));
    r.metric("non_200", shared.refused.load(Ordering::Relaxed) as f64);
    latency.report(&mut r, "latency");
    r.detail("latency_buckets", latency.buckets());
    r.metric("tcp_connections", connects as f64);
    r.metric("publish_lag_max_ms", lag.as_secs_f64() * 1000.0);
    r.extend(usage);
    r.errors(&errors);
    Ok(r)
}
