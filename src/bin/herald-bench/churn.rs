//! `churn`: a soak (meant for an hour) that checks the server leaks nothing. C virtual users
//! each loop: connect, subscribe to K public channels of a pool of P, join one presence
//! channel of a pool (signed locally, a user id unique per cycle), hold for a random time,
//! then leave, alternately with a clean close handshake and an abrupt TCP drop (RST). A REST
//! publisher triggers events to random pool channels meanwhile. Every `--sample-secs` it
//! samples the server's RSS and, with `--metrics-url`, its connection, channel, presence and
//! socket gauges; at the end it waits (bounded) for every gauge to read 0 again.
//! Must not judge RSS: allocators keep pages, so it is reported, never checked.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;
use futures_util::future::join_all;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::{Duration, Instant, sleep_until, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::net::{Conn, Frame, STEP_TIMEOUT, Target, http_get};
use crate::pace::Pace;
use crate::report::{Errors, Report};
use crate::rest::Rest;
use crate::stats::{CpuWindow, GaugeTrack, Latency, RssSeries, now_us, stamp, stamped_data};
use crate::{Result, TargetArgs};

/// Options of the `churn` scenario.
#[derive(Args, Debug, Serialize)]
pub(crate) struct ChurnArgs {
    /// Virtual users, each one socket at a time.
    #[arg(short = 'c', long, default_value_t = 200)]
    users: usize,
    /// Public channels each user subscribes to per cycle.
    #[arg(long, default_value_t = 20)]
    channels_per_user: usize,
    /// Public channel names the users and the publisher draw from.
    #[arg(long, default_value_t = 500)]
    channel_pool: usize,
    /// Presence channel names a user joins one of per cycle (0: no presence).
    #[arg(long, default_value_t = 20)]
    presence_pool: usize,
    /// Shortest hold of one cycle, in milliseconds.
    #[arg(long, default_value_t = 500)]
    hold_min_ms: u64,
    /// Longest hold of one cycle, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    hold_max_ms: u64,
    /// Events per second the publisher triggers over REST.
    #[arg(short = 'r', long, default_value_t = 50.0)]
    rate: f64,
    /// Seconds between samples of RSS and gauges (and progress lines).
    #[arg(long, default_value_t = 10.0)]
    sample_secs: f64,
    /// The server's Prometheus page (e.g. `http://127.0.0.1:9601/metrics`): gauges are sampled
    /// and must return to 0 after the run, or the tool exits non-zero.
    #[arg(long)]
    metrics_url: Option<String>,
    /// Seconds to wait at the end for the gauges to return to 0.
    #[arg(long, default_value_t = 30.0)]
    settle_secs: f64,
}

/// The server gauges sampled, each summed over its `app_id` labels.
const GAUGES: [&str; 4] = ["herald_connections", "herald_channels", "herald_presence_members", "herald_open_sockets"];

/// The event the publisher triggers, as it appears in a delivered frame.
const DELIVERY: &str = r#""event":"churn""#;

/// What user tasks and the publisher report into.
#[derive(Default)]
struct Shared {
    cycles: AtomicU64,
    clean: AtomicU64,
    abrupt: AtomicU64,
    /// Users subscribed and holding right now.
    holding: AtomicU64,
    published: AtomicU64,
    deliveries: AtomicU64,
    /// Publish call → frame read, per delivery.
    latency: Latency,
    errors: Errors,
}

/// What every task of the run needs.
struct Ctx {
    target: Target,
    /// Public channel names users and publisher draw from (at least one).
    channels: Vec<String>,
    /// Presence channel names; empty: users join none.
    presence: Vec<String>,
    /// Public channels per user and cycle, at most the pool.
    per_user: usize,
    hold_ms: RangeInclusive<u64>,
    shared: Shared,
    /// Connects in flight at once (`--connect-concurrency`).
    gate: Semaphore,
    stop: CancellationToken,
}

/// Runs the soak: users and publisher until `--duration`, sampling; then the settle wait.
pub(crate) async fn run(t: &TargetArgs, a: &ChurnArgs) -> Result<Report> {
    let target = Target::resolve(t, a.users + 1).await?;
    let mut gauges = match &a.metrics_url {
        Some(url) => Some(Gauges::open(url).await?),
        None => None,
    };
    let pool = a.channel_pool.max(1);
    let ctx = Arc::new(Ctx {
        target,
        channels: (0..pool).map(|i| format!("churn-{i}")).collect(),
        presence: (0..a.presence_pool).map(|i| format!("presence-churn-{i}")).collect(),
        per_user: a.channels_per_user.min(pool),
        hold_ms: a.hold_min_ms..=a.hold_max_ms.max(a.hold_min_ms),
        shared: Shared::default(),
        gate: Semaphore::new(t.connect_concurrency.max(1)),
        stop: CancellationToken::new(),
    });
    let mut rss = RssSeries::new(t.server_pid);
    rss.sample();
    let cpu = CpuWindow::start(t.server_pid);
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(t.duration);
    let users: Vec<_> = (0..a.users).map(|n| tokio::spawn(user(ctx.clone(), n))).collect();
    let publisher = tokio::spawn(publish(ctx.clone(), end, a.rate, a.users));
    let every = Duration::from_secs_f64(a.sample_secs.max(0.01));
    let mut next = started + every;
    while next < end {
        sleep_until(next).await;
        next += every;
        let kb = rss.sample().map_or_else(|| "-".to_owned(), |kb| kb.to_string());
        let g = match &mut gauges {
            Some(g) => g.sample(&ctx.shared.errors).await.unwrap_or_default(),
            None => String::new(),
        };
        if t.progress > 0.0 {
            eprintln!("[{:>6.1}s] {}  rss {kb} kB{g}", started.elapsed().as_secs_f64(), ctx.progress());
        }
    }
    sleep_until(end).await;
    ctx.stop.cancel();
    let lag = publisher.await.unwrap_or_default();
    let stragglers = timeout(STEP_TIMEOUT * 2, join_all(users)).await.is_err();
    let usage = cpu.finish(Some(("cycle", ctx.shared.cycles.load(Ordering::Relaxed))));
    let mut r = Report::new("churn", ctx.target.authority.clone());
    ctx.report(&mut r, a, t.duration);
    r.metric("publish_lag_max_ms", lag.as_secs_f64() * 1000.0);
    if stragglers {
        ctx.shared.errors.note("stop", format!("users still running {:?} after the stop", STEP_TIMEOUT * 2));
    }
    match &mut gauges {
        Some(g) => g.settle(Duration::from_secs_f64(a.settle_secs), &ctx.shared.errors, &mut r).await,
        None => r.detail("gauges_at_baseline", Value::Null),
    }
    rss.sample();
    rss.report(&mut r);
    r.extend(usage);
    r.errors(&ctx.shared.errors);
    Ok(r)
}

/// The gauges of `--metrics-url`, tracked over the run.
struct Gauges {
    url: String,
    track: GaugeTrack,
}

impl Gauges {
    /// Reads the starting values; a page that cannot be read ends the run before it starts.
    async fn open(url: &str) -> Result<Self> {
        let track = GaugeTrack::new(&GAUGES, &http_get(url).await?);
        if !track.at_zero() {
            eprintln!("note: the gauges must return to 0 but do not start there: {}", track.latest());
        }
        Ok(Self { url: url.to_owned(), track })
    }

    /// Samples the gauges; returns them for the progress line, `None` if the page was not read.
    async fn sample(&mut self, errors: &Errors) -> Option<String> {
        match http_get(&self.url).await {
            Ok(text) => Some(self.track.observe(&text)),
            Err(e) => {
                errors.note("metrics", e);
                None
            }
        }
    }

    /// Samples until every gauge reads 0 or `limit` passed, then reports the gauges and whether
    /// they got there; the run fails if not.
    async fn settle(&mut self, limit: Duration, errors: &Errors, r: &mut Report) {
        let started = Instant::now();
        let at_zero = loop {
            // Values from before a failed read do not count: they may be from the run.
            let zero = self.sample(errors).await.is_some() && self.track.at_zero();
            if zero || started.elapsed() >= limit {
                break zero;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        self.track.report(r);
        r.metric("settled_after_secs", started.elapsed().as_secs_f64());
        r.detail("gauges_at_baseline", at_zero);
        if !at_zero {
            r.fail(format!("gauges did not return to 0 within {limit:?}: {}", self.track.latest()));
        }
    }
}

/// Triggers events to random pool channels at `rate` until `end`; returns the worst lag.
async fn publish(ctx: Arc<Ctx>, end: Instant, rate: f64, slot: usize) -> Duration {
    let mut pace = Pace::new(Instant::now(), end, rate, 0, 1);
    let mut rest = Rest::new(ctx.target.clone(), slot);
    while let Some(seq) = pace.next().await {
        let channel = &ctx.channels[rand::random_range(0..ctx.channels.len())];
        match rest.trigger(&[channel.as_str()], "churn", &stamped_data(seq, 64)).await {
            Ok(200) => {
                ctx.shared.published.fetch_add(1, Ordering::Relaxed);
            }
            Ok(status) => ctx.shared.errors.note("trigger", format!("HTTP {status}")),
            Err(e) => ctx.shared.errors.note("trigger", e),
        }
    }
    pace.max_lag
}

/// One virtual user's loop of cycles, until the stop.
async fn user(ctx: Arc<Ctx>, n: usize) {
    let s = &ctx.shared;
    for cycle in 0u64.. {
        let joined = tokio::select! {
            r = join(&ctx, n, cycle) => r,
            () = ctx.stop.cancelled() => return,
        };
        let mut conn = match joined {
            Ok(c) => c,
            Err(e) => {
                ctx.shared.errors.note("join", e);
                // A server that refuses everything must not be hammered in a tight loop.
                let _ = timeout(Duration::from_millis(100), ctx.stop.cancelled()).await;
                continue;
            }
        };
        s.holding.fetch_add(1, Ordering::Relaxed);
        let held = hold(&ctx, n, &mut conn).await;
        s.holding.fetch_sub(1, Ordering::Relaxed);
        if let Err(e) = held {
            ctx.shared.errors.note("hold", e);
            continue;
        }
        // Alternate per cycle, offset per user, so both kinds of leave happen all the time.
        let left = if (n as u64 + cycle).is_multiple_of(2) {
            conn.close_cleanly().await.map(|()| &s.clean)
        } else {
            conn.drop_abruptly();
            Ok(&s.abrupt)
        };
        match left {
            Ok(kind) => kind.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                ctx.shared.errors.note("close", e);
                continue;
            }
        };
        s.cycles.fetch_add(1, Ordering::Relaxed);
        if ctx.stop.is_cancelled() {
            return;
        }
    }
}

/// Connects, subscribes to K random pool channels and one presence channel, and waits until
/// every subscription succeeded.
async fn join(ctx: &Ctx, n: usize, cycle: u64) -> Result<Conn> {
    let permit = ctx.gate.acquire().await?;
    let mut conn = ctx.target.connect(n).await?;
    drop(permit);
    let picks = rand::seq::index::sample(&mut rand::rng(), ctx.channels.len(), ctx.per_user);
    for i in picks {
        conn.subscribe(&ctx.channels[i], "", None).await?;
    }
    let mut pending = ctx.per_user;
    if !ctx.presence.is_empty() {
        let channel = &ctx.presence[rand::random_range(0..ctx.presence.len())];
        let data = json!({ "user_id": format!("u{n}-{cycle}"), "user_info": { "n": n } }).to_string();
        let auth = ctx.target.presence_auth(&conn.socket_id, channel, &data);
        conn.subscribe(channel, &auth, Some(&data)).await?;
        pending += 1;
    }
    let deadline = Instant::now() + STEP_TIMEOUT;
    while pending > 0 {
        let next =
            timeout_at(deadline, conn.next_text()).await.map_err(|_| "subscriptions not all succeeded in time")?;
        let text = next?.ok_or("closed while subscribing")?;
        if let Some(f) = ctx.frame(n, &text)? {
            pending -= usize::from(f.event == "pusher_internal:subscription_succeeded");
        }
    }
    Ok(conn)
}

/// Reads (and counts deliveries) for a random hold time, or until the stop.
async fn hold(ctx: &Ctx, n: usize, conn: &mut Conn) -> Result<()> {
    let until = Instant::now() + Duration::from_millis(rand::random_range(ctx.hold_ms.clone()));
    loop {
        tokio::select! {
            () = sleep_until(until) => return Ok(()),
            () = ctx.stop.cancelled() => return Ok(()),
            text = conn.next_text() => {
                ctx.frame(n, &text?.ok_or("the server closed the socket during the hold")?)?;
            }
        }
    }
}

impl Ctx {
    /// The run's parameters and counters.
    fn report(&self, r: &mut Report, a: &ChurnArgs, duration: f64) {
        let (s, l) = (&self.shared, |a: &AtomicU64| a.load(Ordering::Relaxed) as f64);
        r.args(a);
        r.metric("cycles", l(&s.cycles));
        r.metric("cycles_per_sec", l(&s.cycles) / duration.max(1e-6));
        r.metric("clean_leaves", l(&s.clean));
        r.metric("abrupt_leaves", l(&s.abrupt));
        r.metric("events_published", l(&s.published));
        r.metric("deliveries", l(&s.deliveries));
        self.shared.latency.report(r, "delivery_latency");
    }

    /// The counters for a progress line.
    fn progress(&self) -> String {
        let (s, l) = (&self.shared, |a: &AtomicU64| a.load(Ordering::Relaxed));
        format!(
            "cycles {}  holding {}  published {}  deliveries {}  errors {}",
            l(&s.cycles),
            l(&s.holding),
            l(&s.published),
            l(&s.deliveries),
            self.shared.errors.count()
        )
    }

    /// Counts a published event's delivery (`None`), or parses a control frame; a
    /// `pusher:error` or `pusher:subscription_error` is an error.
    fn frame(&self, n: usize, text: &str) -> Result<Option<Frame>> {
        // By name first: `stamp` alone also matches the `count` of a presence roster (`…t\":1`).
        if text.contains(DELIVERY) {
            if let Some(sent) = stamp(text) {
                self.shared.latency.record(n, now_us().saturating_sub(sent));
            }
            self.shared.deliveries.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        let Ok(f) = serde_json::from_str::<Frame>(text) else { return Ok(None) };
        if f.event == "pusher:error" || f.event == "pusher:subscription_error" {
            return Err(format!("{}: {}", f.event, f.data_value()).into());
        }
        Ok(Some(f))
    }
}
