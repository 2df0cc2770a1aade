//! `presence`: C members (one socket and one user each) join one presence channel, then every
//! odd member leaves it. Auth is signed locally with the secret. Reports join latency
//! (subscribe → `subscription_succeeded`), `member_added` frames against the C·(C−1)/2 the
//! joins must produce, members whose roster (snapshot plus `member_added`) was not exactly
//! everyone, and `member_removed` frames at the members who stay, which must each see every
//! leaver. (Two members leaving at once need not hear of each other, so leavers do not count.)

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Args;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Duration, Instant};

use crate::net::{Conn, Frame, Target};
use crate::report::{Errors, Progress, Report};
use crate::series::Sampler;
use crate::stats::{CpuWindow, Latency};
use crate::{Result, TargetArgs};

#[derive(Args, Debug)]
pub(crate) struct PresenceArgs {
    /// Members (Pusher and most servers cap a presence channel at 100 by default).
    #[arg(short = 'c', long, default_value_t = 100)]
    members: usize,
    /// The presence channel.
    #[arg(long, default_value = "presence-bench")]
    channel: String,
    /// Bytes of each member's `user_info`.
    #[arg(long, default_value_t = 50)]
    info_bytes: usize,
    /// Subscribes (and unsubscribes) in flight at once; 1 joins one member after the other.
    #[arg(long, default_value_t = 100)]
    join_concurrency: usize,
}

/// What the orchestrator tells every member task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd)]
enum Phase {
    Connect,
    Join,
    Leave,
    Stop,
}

#[derive(Default)]
struct Shared {
    connected: AtomicU64,
    joined: AtomicU64,
    left: AtomicU64,
    added: AtomicU64,
    removed: AtomicU64,
    /// `member_removed` frames seen by members that never leave.
    removed_at_stayers: AtomicU64,
    /// Members whose snapshot plus `member_added` frames did not name every member exactly once.
    incomplete: AtomicU64,
    /// `member_removed` frames for a user the member did not have in its roster.
    phantom_removals: AtomicU64,
}

pub(crate) async fn run(t: &TargetArgs, a: &PresenceArgs) -> Result<Report> {
    let c = a.members;
    let target = Target::resolve(t, c).await?;
    let shared = Arc::new(Shared::default());
    let latency = Arc::new(Latency::new());
    let errors = Arc::new(Errors::default());
    let (phase_tx, phase_rx) = watch::channel(Phase::Connect);
    let progress = {
        let s = shared.clone();
        Progress::start(t.progress, move || {
            let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
            format!(
                "connected {}  joined {}  member_added {}  left {}  member_removed {}",
                l(&s.connected),
                l(&s.joined),
                l(&s.added),
                l(&s.left),
                l(&s.removed)
            )
        })
    };
    let gate = Arc::new(Semaphore::new(t.connect_concurrency.max(1)));
    let join_gate = Arc::new(Semaphore::new(a.join_concurrency.max(1)));
    let members: Vec<_> = (0..c)
        .map(|n| {
            let m = Member {
                n,
                total: c,
                target: target.clone(),
                channel: a.channel.clone(),
                info: "x".repeat(a.info_bytes),
                shared: shared.clone(),
                latency: latency.clone(),
                errors: errors.clone(),
                gate: gate.clone(),
                join_gate: join_gate.clone(),
            };
            tokio::spawn(m.run(phase_rx.clone()))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs_f64(t.duration.max(1.0) * 3.0 + 10.0);
    let expected = (c * c.saturating_sub(1) / 2) as u64;
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    wait_for(deadline, || load(&shared.connected) + errors.count() >= c as u64).await;
    let connected = load(&shared.connected);

    let cpu = CpuWindow::start(t.server_pid);
    let sampler = {
        let s = shared.clone();
        let events = move || s.added.load(Ordering::Relaxed) + s.removed.load(Ordering::Relaxed);
        Sampler::start(t.duration, t.server_pid, events)
    };
    let join_started = Instant::now();
    phase_tx.send_replace(Phase::Join);
    wait_for(deadline, || load(&shared.joined) + errors.count() >= c as u64).await;
    let join_secs = join_started.elapsed().as_secs_f64();
    let joined = load(&shared.joined);
    let want_added = (joined * joined.saturating_sub(1) / 2).min(expected);
    wait_for(deadline, || load(&shared.added) >= want_added).await;
    let added_secs = join_started.elapsed().as_secs_f64();

    let leave_started = Instant::now();
    phase_tx.send_replace(Phase::Leave);
    let (stayers, leavers) = (joined.div_ceil(2), joined / 2);
    wait_for(deadline, || load(&shared.left) >= leavers && load(&shared.removed_at_stayers) >= stayers * leavers).await;
    let leave_secs = leave_started.elapsed().as_secs_f64();
    let usage = cpu.finish(Some(("member_event", load(&shared.added) + load(&shared.removed))));
    let mut r = Report::new("presence", target.authority.clone());
    sampler.finish(&mut r, "member_events").await;
    phase_tx.send_replace(Phase::Stop);
    progress.stop();
    for m in members {
        m.abort();
    }

    r.param("members", c);
    r.param("channel", a.channel.as_str());
    r.param("info_bytes", a.info_bytes);
    r.param("join_concurrency", a.join_concurrency);
    r.metric("connected", connected as f64);
    r.metric("joined", joined as f64);
    r.metric("join_secs", join_secs);
    r.metric("joins_per_sec", joined as f64 / join_secs.max(1e-6));
    latency.report(&mut r, "join_latency");
    r.detail("join_latency_buckets", latency.buckets());
    r.metric("member_added_expected", want_added as f64);
    r.metric("member_added", load(&shared.added) as f64);
    r.metric("member_added_settled_secs", added_secs);
    r.metric("incomplete_rosters", load(&shared.incomplete) as f64);
    r.metric("left", load(&shared.left) as f64);
    r.metric("member_removed_at_stayers_expected", (stayers * leavers) as f64);
    r.metric("member_removed_at_stayers", load(&shared.removed_at_stayers) as f64);
    r.metric("member_removed_total", load(&shared.removed) as f64);
    r.metric("phantom_removals", load(&shared.phantom_removals) as f64);
    r.metric("leave_secs", leave_secs);
    r.extend(usage);
    r.errors(&errors);
    Ok(r)
}

/// Polls `done` every 5 ms until it holds or `deadline` passes.
async fn wait_for(deadline: Instant, done: impl Fn() -> bool) {
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One member's socket and everything its task reports into.
struct Member {
    n: usize,
    total: usize,
    target: Target,
    channel: String,
    info: String,
    shared: Arc<Shared>,
    latency: Arc<Latency>,
    errors: Arc<Errors>,
    gate: Arc<Semaphore>,
    join_gate: Arc<Semaphore>,
}

impl Member {
    async fn run(self, mut phase: watch::Receiver<Phase>) {
        if let Err(e) = self.lifecycle(&mut phase).await {
            self.errors.note("member", e);
        }
    }

    async fn lifecycle(&self, phase: &mut watch::Receiver<Phase>) -> Result<()> {
        let permit = self.gate.acquire().await?;
        let mut conn = self.target.connect(self.n).await?;
        drop(permit);
        self.shared.connected.fetch_add(1, Ordering::Relaxed);
        phase.wait_for(|p| *p >= Phase::Join).await?;

        let user_id = format!("u{}", self.n);
        let channel_data = json!({ "user_id": user_id, "user_info": { "name": self.info } }).to_string();
        let auth = self.target.presence_auth(&conn.socket_id, &self.channel, &channel_data);
        let permit = self.join_gate.acquire().await?;
        let t0 = Instant::now();
        conn.subscribe(&self.channel, &auth, Some(&channel_data)).await?;
        let mut roster = HashSet::new();
        let mut dup = false;
        let mut removed = HashSet::new();
        loop {
            let f = self.next(&mut conn).await?;
            if f.event == "pusher_internal:subscription_succeeded" {
                self.latency.record(self.n, t0.elapsed().as_micros() as u64);
                let data = f.data_value();
                if let Some(ids) = data["presence"]["ids"].as_array() {
                    for id in ids.iter().filter_map(|v| v.as_str()) {
                        dup |= !roster.insert(id.to_owned());
                    }
                }
                break;
            }
            self.count(&f, &mut roster, &mut removed, &mut dup);
        }
        drop(permit);
        self.shared.joined.fetch_add(1, Ordering::Relaxed);

        let mut checked = false;
        loop {
            if !checked && *phase.borrow() >= Phase::Leave {
                checked = true;
                if dup || roster.len() != self.total || !roster.contains(&user_id) {
                    self.shared.incomplete.fetch_add(1, Ordering::Relaxed);
                }
                if self.leaves() {
                    let _permit = self.join_gate.acquire().await?;
                    conn.unsubscribe(&self.channel).await?;
                    self.shared.left.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::select! {
                changed = phase.changed() => {
                    if changed.is_err() || *phase.borrow() == Phase::Stop {
                        return Ok(());
                    }
                }
                f = self.next(&mut conn) => self.count(&f?, &mut roster, &mut removed, &mut dup),
            }
        }
    }

    /// Odd members leave; even ones stay and must hear of every leaver.
    fn leaves(&self) -> bool {
        self.n % 2 == 1
    }

    async fn next(&self, conn: &mut Conn) -> Result<Frame> {
        loop {
            let text = conn.next_text().await?.ok_or("socket closed")?;
            if let Ok(f) = serde_json::from_str::<Frame>(&text) {
                if f.event == "pusher:error" || f.event == "pusher:subscription_error" {
                    return Err(format!("{}: {}", f.event, f.data_value()).into());
                }
                return Ok(f);
            }
        }
    }

    fn count(&self, f: &Frame, roster: &mut HashSet<String>, removed: &mut HashSet<String>, dup: &mut bool) {
        if f.channel.as_deref() != Some(self.channel.as_str()) {
            return;
        }
        let id = || f.data_value()["user_id"].as_str().map(str::to_owned);
        match f.event.as_str() {
            "pusher_internal:member_added" => {
                self.shared.added.fetch_add(1, Ordering::Relaxed);
                if let Some(id) = id() {
                    *dup |= !roster.insert(id);
                }
            }
            "pusher_internal:member_removed" => {
                self.shared.removed.fetch_add(1, Ordering::Relaxed);
                let Some(id) = id() else { return };
                // A removal of someone never in the roster, or removed already, is a phantom.
                if !roster.contains(&id) || !removed.insert(id.clone()) {
                    self.shared.phantom_removals.fetch_add(1, Ordering::Relaxed);
                }
                // Only leavers count: once the run stops, stayers' own sockets close too, and
                // the stayers still running hear of them.
                let leaver = id.strip_prefix('u').and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n % 2 == 1);
                if !self.leaves() && leaver {
                    self.shared.removed_at_stayers.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}
