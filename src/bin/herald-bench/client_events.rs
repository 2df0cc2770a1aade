//! `client-events`: P pairs of sockets, each pair on its own private channel (auth signed
//! locally), both sides sending `client-bench` events at `--rate` each while reading the
//! other's. Needs an app with client events enabled. Reports msgs/s, loss and latency, and
//! how many sends the server refused with 4301 (its per-connection rate limit).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;
use futures_util::future::join_all;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::net::{Conn, Target};
use crate::pace::Pace;
use crate::report::{Errors, Progress, Report};
use crate::series::Sampler;
use crate::stats::{CpuWindow, Latency, now_us, stamp, stamped_data};
use crate::{Result, TargetArgs};

#[derive(Args, Debug)]
pub(crate) struct ClientEventsArgs {
    /// Socket pairs (2·P connections, P private channels).
    #[arg(short = 'p', long, default_value_t = 50)]
    pairs: usize,
    /// Events per second each socket sends (Pusher allows 10); 0: as fast as it can.
    #[arg(short = 'r', long, default_value_t = 10.0)]
    rate: f64,
    /// Bytes of `data` per event.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Channel name prefix (must start with `private-` or `presence-`).
    #[arg(long, default_value = "private-bench-pair-")]
    channel_prefix: String,
    /// Seconds to wait for events in flight after sending stopped.
    #[arg(long, default_value_t = 2.0)]
    drain: f64,
}

#[derive(Default)]
struct Shared {
    ready: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    rate_limited: AtomicU64,
    disconnects: AtomicU64,
}

pub(crate) async fn run(t: &TargetArgs, a: &ClientEventsArgs) -> Result<Report> {
    let sockets = a.pairs * 2;
    let target = Target::resolve(t, sockets).await?;
    let shared = Arc::new(Shared::default());
    let latency = Arc::new(Latency::new());
    let errors = Arc::new(Errors::default());
    let progress = {
        let s = shared.clone();
        Progress::start(t.progress, move || {
            let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
            format!(
                "ready {}/{sockets}  sent {}  received {}  rate-limited {}",
                l(&s.ready),
                l(&s.sent),
                l(&s.received),
                l(&s.rate_limited)
            )
        })
    };

    let gate = Arc::new(Semaphore::new(t.connect_concurrency.max(1)));
    let setups = (0..sockets).map(|n| {
        let (target, gate) = (target.clone(), gate.clone());
        let channel = format!("{}{}", a.channel_prefix, n / 2);
        async move {
            let _permit = gate.acquire().await?;
            let mut conn = target.connect(n).await?;
            let auth = target.private_auth(&conn.socket_id, &channel);
            conn.subscribe(&channel, &auth, None).await?;
            conn.expect("pusher_internal:subscription_succeeded", Some(&channel)).await?;
            Result::Ok((conn, channel))
        }
    });
    let mut conns: Vec<Option<(Conn, String)>> = Vec::with_capacity(sockets);
    for r in join_all(setups).await {
        match r {
            Ok(c) => {
                shared.ready.fetch_add(1, Ordering::Relaxed);
                conns.push(Some(c));
            }
            Err(e) => {
                errors.note("subscribe", e);
                conns.push(None);
            }
        }
    }
    // A pair counts only when both sides are up: events to a missing peer would be "lost".
    for pair in conns.chunks_mut(2) {
        if pair.iter().any(Option::is_none) {
            pair.iter_mut().for_each(|c| *c = None);
        }
    }
    let live = conns.iter().flatten().count();
    if live == 0 && sockets > 0 {
        return Err(format!("no pair could subscribe: {}", errors.first()).into());
    }

    let cpu = CpuWindow::start(t.server_pid);
    let sampler = {
        let s = shared.clone();
        Sampler::start(t.duration, t.server_pid, move || s.received.load(Ordering::Relaxed))
    };
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(t.duration);
    let stop = CancellationToken::new();
    let mut senders = Vec::new();
    for (n, (conn, channel)) in conns.into_iter().enumerate().filter_map(|(n, c)| c.map(|c| (n, c))) {
        let (mut sink, mut stream) = conn.ws.split();
        let (shared2, latency, stop2) = (shared.clone(), latency.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    _ = stop2.cancelled() => return,
                    m = stream.next() => m,
                };
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(sent) = stamp(&text) {
                            latency.record(n, now_us().saturating_sub(sent));
                            shared2.received.fetch_add(1, Ordering::Relaxed);
                        } else if text.contains("\"pusher:error\"") && text.contains("4301") {
                            shared2.rate_limited.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        shared2.disconnects.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        });
        let (shared, errors, payload) = (shared.clone(), errors.clone(), a.payload);
        let mut pace = Pace::new(start, end, a.rate, 0, 1);
        senders.push(tokio::spawn(async move {
            while let Some(seq) = pace.next().await {
                let data = stamped_data(seq, payload);
                let frame = format!(r#"{{"event":"client-bench","channel":"{channel}","data":{data}}}"#);
                if let Err(e) = sink.send(Message::text(frame)).await {
                    errors.note("send", e);
                    return;
                }
                shared.sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    join_all(senders).await;
    let send_secs = start.elapsed().as_secs_f64();
    let drain_until = Instant::now() + Duration::from_secs_f64(a.drain);
    let settled = || {
        let s = &shared;
        s.received.load(Ordering::Relaxed) + s.rate_limited.load(Ordering::Relaxed) >= s.sent.load(Ordering::Relaxed)
    };
    while !settled() && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let received = shared.received.load(Ordering::Relaxed);
    let usage = cpu.finish(Some(("message", received)));
    let mut r = Report::new("client-events", target.authority.clone());
    sampler.finish(&mut r, "messages").await;
    stop.cancel();
    progress.stop();

    let sent = shared.sent.load(Ordering::Relaxed);
    let limited = shared.rate_limited.load(Ordering::Relaxed);
    r.param("pairs", a.pairs);
    r.param("rate_per_socket", a.rate);
    r.param("payload_bytes", a.payload);
    r.metric("sockets_ready", live as f64);
    r.metric("messages_sent", sent as f64);
    r.metric("sends_per_sec", sent as f64 / send_secs.max(1e-6));
    r.metric("messages_received", received as f64);
    r.metric("msgs_per_sec", received as f64 / send_secs.max(1e-6));
    r.metric("rate_limited", limited as f64);
    r.metric("loss", sent.saturating_sub(received + limited) as f64);
    r.metric("disconnects", shared.disconnects.load(Ordering::Relaxed) as f64);
    latency.report(&mut r, "latency");
    r.detail("latency_buckets", latency.buckets());
    r.extend(usage);
    r.errors(&errors);
    Ok(r)
}
