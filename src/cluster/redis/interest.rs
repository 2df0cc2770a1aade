//! Interest routing: this node subscribes to a bus channel only while it has a local socket
//! that needs it (a subscriber of the channel, a socket signed in as the user or watching it),
//! so the bus sends a node nothing it would throw away. Each holder takes one reference; the
//! first one subscribes (confirmed by Redis before it returns) and records the interest in a
//! node set in Redis (which the reaper and the channel list read), the last one unsubscribes
//! and removes the record.
//! Must not hold a map guard across an await: each bus channel has its own async lock, which
//! orders its subscribe, unsubscribe and record commands as their callers asked for them.

use std::sync::Arc;

use dashmap::DashMap;
use redis::RedisResult;
use tokio::sync::Mutex;

use super::link::Link;
use crate::metrics::ClusterMetrics;

/// What a bus channel delivers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Target {
    /// The local subscribers of a Pusher channel.
    Channel { app: Arc<str>, channel: Arc<str> },
    /// The local sockets signed in as a user, or watching it.
    User { app: Arc<str>, user: Arc<str> },
}

/// The bus channels this node is subscribed to.
pub(super) struct Interest {
    slots: DashMap<String, Arc<Slot>>,
    /// The subscription connection.
    link: Link,
    /// The command connection (records).
    cmd: Link,
    metrics: ClusterMetrics,
}

/// Where an interest is recorded while it is held: `member` of the node set `set`.
pub(super) struct Record<'a> {
    pub(super) set: &'a str,
    pub(super) member: &'a str,
}

struct Slot {
    target: Target,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    refs: usize,
    subscribed: bool,
    /// Given up by its last holder and removed from the map: look the channel up again.
    closed: bool,
}

impl Interest {
    pub(super) fn new(link: Link, cmd: Link, metrics: ClusterMetrics) -> Self {
        Self { slots: DashMap::new(), link, cmd, metrics }
    }

    /// Takes a reference on `bus`; the first one subscribes and records `record`, both
    /// confirmed by Redis before this returns.
    ///
    /// # Errors
    /// The subscription or the record failed; no reference is held then.
    pub(super) async fn acquire(&self, bus: &str, target: impl Fn() -> Target, record: &Record<'_>) -> RedisResult<()> {
        loop {
            let slot = self.slot(bus, &target);
            let mut state = slot.state.lock().await;
            if state.closed {
                continue;
            }
            if state.refs == 0 {
                let first = async {
                    if !state.subscribed {
                        self.link.clone().subscribe(&[bus.to_owned()]).await?;
                        state.subscribed = true;
                        self.metrics.subscriptions.inc();
                    }
                    redis::cmd("SADD").arg(record.set).arg(record.member).query_async::<()>(&mut self.cmd.clone()).await
                };
                if let Err(e) = first.await {
                    self.give_up(bus, &slot, &mut state).await;
                    return Err(e);
                }
            }
            state.refs += 1;
            return Ok(());
        }
    }

    /// Gives a reference back; the last one unsubscribes and removes `record`, unless
    /// `keep_record` (what it stood for could not be given back in Redis: the resync needs it).
    pub(super) async fn release(&self, bus: &str, record: &Record<'_>, keep_record: bool) {
        let Some(slot) = self.slots.get(bus).map(|s| s.value().clone()) else { return };
        let mut state = slot.state.lock().await;
        if state.closed || state.refs == 0 {
            return;
        }
        state.refs -= 1;
        if state.refs > 0 {
            return;
        }
        if !keep_record {
            let res: RedisResult<()> =
                redis::cmd("SREM").arg(record.set).arg(record.member).query_async(&mut self.cmd.clone()).await;
            if res.is_err() {
                // Left behind: the next resync sees a record nothing holds and clears it.
                self.metrics.failed(crate::metrics::ClusterOp::State);
            }
        }
        self.give_up(bus, &slot, &mut state).await;
    }

    /// Unsubscribes (a failure leaves a subscription Redis drops with the connection; it is
    /// not renewed, since nothing holds it) and drops the slot.
    async fn give_up(&self, bus: &str, slot: &Arc<Slot>, state: &mut SlotState) {
        if state.subscribed {
            let _ = self.link.clone().unsubscribe(&[bus.to_owned()]).await;
            self.metrics.subscriptions.dec();
        }
        self.close(bus, slot, state);
    }

    /// Where a message received on `bus` goes, if this node still wants it.
    pub(super) fn target(&self, bus: &str) -> Option<Target> {
        self.slots.get(bus).map(|s| s.value().target.clone())
    }

    /// Subscribes again to every bus channel with holders (after the connection was lost).
    ///
    /// # Errors
    /// A subscription failed; the caller tries again later.
    pub(super) async fn renew(&self) -> RedisResult<()> {
        let channels: Vec<(String, Arc<Slot>)> =
            self.slots.iter().map(|e| (e.key().clone(), e.value().clone())).collect();
        for chunk in channels.chunks(256) {
            let mut wanted = Vec::with_capacity(chunk.len());
            let mut guards = Vec::with_capacity(chunk.len());
            for (bus, slot) in chunk {
                let state = slot.state.lock().await;
                if state.refs > 0 {
                    wanted.push(bus.clone());
                    guards.push(state);
                }
            }
            if !wanted.is_empty() {
                self.link.clone().subscribe(&wanted).await?;
            }
            for mut g in guards {
                if !g.subscribed {
                    g.subscribed = true;
                    self.metrics.subscriptions.inc();
                }
            }
        }
        Ok(())
    }

    fn slot(&self, bus: &str, target: &impl Fn() -> Target) -> Arc<Slot> {
        if let Some(s) = self.slots.get(bus) {
            return s.value().clone();
        }
        let entry = self.slots.entry(bus.to_owned());
        entry.or_insert_with(|| Arc::new(Slot { target: target(), state: Mutex::new(SlotState::default()) })).clone()
    }

    fn close(&self, bus: &str, slot: &Arc<Slot>, state: &mut SlotState) {
        state.closed = true;
        state.subscribed = false;
        self.slots.remove_if(bus, |_, current| Arc::ptr_eq(current, slot));
    }
}
