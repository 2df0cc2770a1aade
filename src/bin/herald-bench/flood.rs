//! `flood`: proves that one abusive socket cannot stall the others on its worker. F flooders
//! write a pipelined stream of client frames (`pusher:subscribe` to a fresh public channel, its
//! `pusher:unsubscribe`, `pusher:ping`, a WebSocket ping) as fast as the server reads them,
//! never waiting for replies, and reconnect as soon as the server closes them (Herald: 4100,
//! once over its inbound budget). Meanwhile B bystanders each do one `pusher:ping` →
//! `pusher:pong` round trip every `--interval-ms`; their round-trip time is the result.
//! Run the server with one worker (`HERALD_SERVER__WORKERS=1`) so flooders and bystanders
//! share it; the hardening issue's target is a bystander p99 under 50 ms.
//! Must not slow the flooders down on purpose: backpressure comes only from the server's reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clap::Args;
use futures_util::future::join_all;
use futures_util::stream::{self, SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use herald::protocol::ErrorCode;
use serde::Serialize;
use tokio::time::{Duration, Instant, sleep_until, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;

use crate::net::{Conn, STEP_TIMEOUT, Target, Ws};
use crate::report::{Errors, Progress, Report};
use crate::stats::{CpuWindow, Latency};
use crate::{Result, TargetArgs};

/// Options of the `flood` scenario.
#[derive(Args, Debug, Serialize)]
pub(crate) struct FloodArgs {
    /// Flooding connections (each reconnects whenever the server closes it).
    #[arg(long, default_value_t = 1)]
    flooders: usize,
    /// Well-behaved connections measuring `pusher:ping` round trips.
    #[arg(long, default_value_t = 10)]
    bystanders: usize,
    /// Milliseconds between one bystander's round trips.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Milliseconds a bystander waits for its `pusher:pong` before counting a timeout (an error)
    /// and reconnecting.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

/// Counters shared by every flooder and bystander task.
#[derive(Default)]
struct Shared {
    round_trips: AtomicU64,
    bystander_timeouts: AtomicU64,
    bystander_disconnects: AtomicU64,
    written: AtomicU64,
    /// Frames the flooders read back (replies, refusals, pongs), all discarded.
    replies: AtomicU64,
    /// `pusher:error` replies carrying the rate-limit code (messages over budget).
    rate_limited: AtomicU64,
    flooder_connects: AtomicU64,
    flooder_connect_failures: AtomicU64,
    /// Closes of flooder sockets by close code; `None`: the stream ended without a close frame.
    closes: Mutex<BTreeMap<Option<u16>, u64>>,
}

/// What every task of the run needs.
struct Ctx {
    target: Target,
    shared: Shared,
    rtt: Latency,
    errors: Errors,
    /// The end of the measured phase.
    end: Instant,
}

/// Runs the scenario: bystanders connect first, then flooders and bystanders run together.
pub(crate) async fn run(t: &TargetArgs, a: &FloodArgs) -> Result<Report> {
    let target = Target::resolve(t, a.bystanders + a.flooders).await?;
    let connects = stream::iter((0..a.bystanders).map(|n| target.connect(n)));
    let conns: Vec<_> = connects.buffer_unordered(t.connect_concurrency.max(1)).collect().await;
    let mut ready = Vec::with_capacity(conns.len());
    let errors = Errors::default();
    for c in conns {
        match c {
            Ok(c) => ready.push(c),
            Err(e) => errors.note("bystander connect", e),
        }
    }
    if ready.is_empty() && a.bystanders > 0 {
        return Err(format!("no bystander could connect: {}", errors.first()).into());
    }
    let bystanders_ready = ready.len();
    let end = Instant::now() + Duration::from_secs_f64(t.duration);
    let ctx = Arc::new(Ctx { target, shared: Shared::default(), rtt: Latency::new(), errors, end });
    let progress = progress_line(t.progress, ctx.clone());
    let cpu = CpuWindow::start(t.server_pid);
    let started = Instant::now();
    let flooders: Vec<_> = (0..a.flooders).map(|f| tokio::spawn(flooder(ctx.clone(), a.bystanders + f))).collect();
    let (every, wait) = (Duration::from_millis(a.interval_ms.max(1)), Duration::from_millis(a.timeout_ms.max(1)));
    let bystanders =
        ready.into_iter().enumerate().map(|(n, c)| tokio::spawn(bystander(ctx.clone(), n, c, every, wait)));
    join_all(bystanders).await;
    join_all(flooders).await;
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    let s = &ctx.shared;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let usage = cpu.finish(Some(("flooder_message", load(&s.written))));
    progress.stop();

    let mut r = Report::new("flood", ctx.target.authority.clone());
    r.args(a);
    r.metric("bystanders_ready", bystanders_ready as f64);
    r.metric("bystander_round_trips", load(&s.round_trips) as f64);
    ctx.rtt.report(&mut r, "rtt");
    r.metric("bystander_timeouts", load(&s.bystander_timeouts) as f64);
    r.metric("bystander_disconnects", load(&s.bystander_disconnects) as f64);
    r.metric("flooder_messages_written", load(&s.written) as f64);
    r.metric("flooder_messages_per_sec", load(&s.written) as f64 / secs);
    r.metric("flooder_replies_read", load(&s.replies) as f64);
    r.metric("flooder_rate_limited", load(&s.rate_limited) as f64);
    r.metric("flooder_connections", load(&s.flooder_connects) as f64);
    r.metric("flooder_reconnects", load(&s.flooder_connects).saturating_sub(a.flooders as u64) as f64);
    r.metric("flooder_connect_failures", load(&s.flooder_connect_failures) as f64);
    // unwrap: nobody panics while holding the closes lock.
    for (code, n) in s.closes.lock().unwrap().iter() {
        let name =
            code.map_or_else(|| "flooder_closes_without_code".to_owned(), |c| format!("flooder_closes_code_{c}"));
        r.metric(&name, *n as f64);
    }
    r.extend(usage);
    r.errors(&ctx.errors);
    Ok(r)
}

/// One bystander: a round trip every `every` until the end; a timeout or a lost socket is an
/// error, and the next round trip reconnects first.
async fn bystander(ctx: Arc<Ctx>, n: usize, conn: Conn, every: Duration, wait: Duration) {
    let (s, mut conn, mut next) = (&ctx.shared, Some(conn), Instant::now());
    while next < ctx.end {
        sleep_until(next).await;
        next += every;
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match timeout_at(ctx.end, ctx.target.connect(n)).await {
                Ok(Ok(c)) => conn.insert(c),
                Ok(Err(e)) => {
                    ctx.errors.note("bystander reconnect", e);
                    continue;
                }
                Err(_) => return,
            },
        };
        let t0 = Instant::now();
        match timeout(wait, round_trip(c)).await {
            Ok(Ok(())) => {
                ctx.rtt.record(n, t0.elapsed().as_micros() as u64);
                s.round_trips.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                s.bystander_disconnects.fetch_add(1, Ordering::Relaxed);
                ctx.errors.note("bystander", e);
                conn = None;
            }
            Err(_) => {
                s.bystander_timeouts.fetch_add(1, Ordering::Relaxed);
                ctx.errors.note("bystander", format!("no pusher:pong within {wait:?}"));
                // A late pong would be taken for the next one's: start afresh.
                conn = None;
            }
        }
    }
}

/// Sends `pusher:ping` and reads until `pusher:pong`.
async fn round_trip(conn: &mut Conn) -> Result<()> {
    conn.send_text(r#"{"event":"pusher:ping","data":{}}"#.to_owned()).await?;
    loop {
        let text = conn.next_text().await?.ok_or("socket closed")?;
        if text.contains("\"pusher:pong\"") {
            return Ok(());
        }
    }
}

/// One flooder: connect, flood until the server closes the socket, note the close code,
/// reconnect at once; until the end.
async fn flooder(ctx: Arc<Ctx>, slot: usize) {
    let s = &ctx.shared;
    let mut seq = 0u64;
    while Instant::now() < ctx.end {
        let conn = match timeout_at(ctx.end, ctx.target.connect(slot)).await {
            Ok(Ok(c)) => c,
            // An admission refusal (HTTP 429/503) is a fair answer to a reconnect storm.
            Ok(Err(_)) => {
                s.flooder_connect_failures.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            Err(_) => return,
        };
        s.flooder_connects.fetch_add(1, Ordering::Relaxed);
        let (sink, stream) = conn.ws.split();
        let reader = tokio::spawn(discard(ctx.clone(), stream));
        if timeout_at(ctx.end, write_flood(s, sink, slot, &mut seq)).await.is_err() {
            reader.abort();
            return;
        }
        // The write failed: the server closed the socket, and the reader has (or soon has) its code.
        let code = timeout(STEP_TIMEOUT, reader).await.ok().and_then(|joined| joined.ok()).flatten();
        // unwrap: nobody panics while holding the closes lock.
        *s.closes.lock().unwrap().entry(code).or_default() += 1;
    }
}

/// Writes the frame cycle until a write fails (returns then).
async fn write_flood(s: &Shared, mut sink: SplitSink<Ws, Message>, slot: usize, seq: &mut u64) {
    loop {
        *seq += 1;
        let channel = format!("flood-{slot}-{seq}");
        let frames = [
            Message::text(format!(r#"{{"event":"pusher:subscribe","data":{{"channel":"{channel}"}}}}"#)),
            Message::text(format!(r#"{{"event":"pusher:unsubscribe","data":{{"channel":"{channel}"}}}}"#)),
            Message::text(r#"{"event":"pusher:ping","data":{}}"#),
            Message::Ping(Default::default()),
        ];
        for frame in frames {
            if sink.feed(frame).await.is_err() {
                return;
            }
            s.written.fetch_add(1, Ordering::Relaxed);
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

/// Reads and discards what the server sends a flooder; returns the close code, if any.
async fn discard(ctx: Arc<Ctx>, mut stream: SplitStream<Ws>) -> Option<u16> {
    // `":4301` matches `data` as an object and as a JSON string (`\"code\":4301`) alike.
    let limited = format!("\":{}", ErrorCode::ClientEventRejected.code());
    loop {
        match stream.next().await {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(Message::Text(text))) => {
                ctx.shared.replies.fetch_add(1, Ordering::Relaxed);
                if text.contains("\"pusher:error\"") && text.contains(&limited) {
                    ctx.shared.rate_limited.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some(Ok(_)) => {
                ctx.shared.replies.fetch_add(1, Ordering::Relaxed);
            }
            Some(Err(_)) | None => return None,
        }
    }
}

/// The stderr line: bystander round trips and timeouts, flooder writes and closes.
fn progress_line(every: f64, ctx: Arc<Ctx>) -> Progress {
    Progress::start(every, move || {
        let s = &ctx.shared;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "round trips {}  timeouts {}  flooder written {}  connections {}  rtt p99 {:.3} ms",
            l(&s.round_trips),
            l(&s.bystander_timeouts),
            l(&s.written),
            l(&s.flooder_connects),
            ctx.rtt.merged().value_at_quantile(0.99) as f64 / 1000.0
        )
    })
}
