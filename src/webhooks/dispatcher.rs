//! The dispatcher task: receives events, applies the vacate delay, batches per app, and hands
//! due batches to delivery. On shutdown it flushes everything held or batched.
//! Must not await a delivery: sending happens in delivery's own tasks.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::batch::Batch;
use super::delivery::Deliverer;
use super::held::{Admit, Held};
use super::{Queued, WebhookSettings};
use crate::debug::DebugTap;
use crate::metrics::Metrics;

struct State {
    settings: WebhookSettings,
    metrics: Metrics,
    held: Held,
    batches: HashMap<String, Batch>,
    deliverer: Deliverer,
}

pub(super) async fn run(
    mut rx: mpsc::Receiver<Queued>,
    settings: WebhookSettings,
    m: Metrics,
    debug: DebugTap,
    stop: CancellationToken,
) {
    let deliverer = Deliverer::new(settings.clone(), m.clone(), debug);
    let mut st = State { settings, metrics: m, held: Held::default(), batches: HashMap::new(), deliverer };
    loop {
        let wake = st.next_wake();
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            msg = rx.recv() => match msg {
                Some(q) => st.admit(q, Instant::now()),
                None => break,
            },
            () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => st.tick(Instant::now()),
        }
    }
    while let Ok(q) = rx.try_recv() {
        st.admit(q, Instant::now());
    }
    st.flush_all();
    st.deliverer.close().await;
}

impl State {
    fn admit(&mut self, q: Queued, now: Instant) {
        let app_id = q.app.id.clone();
        match self.held.admit(q, now, self.settings.vacate_delay) {
            Admit::Send(q) => self.batch(q, now),
            Admit::Held => {}
            // The held removal is dropped (the re-add that cancelled it was never held).
            Admit::Cancelled => self.metrics.webhook_events(&app_id, "cancelled", 1),
        }
    }

    fn batch(&mut self, q: Queued, now: Instant) {
        let batch = self.batches.entry(q.app.id.clone()).or_insert_with(|| Batch::new(q.app.clone(), now));
        batch.push(q.event);
        if batch.events.len() >= self.settings.batch_max_events {
            let id = q.app.id.clone();
            self.flush(&id);
        }
    }

    fn next_wake(&mut self) -> Option<Instant> {
        let batch = self.batches.values().map(|b| b.started + self.settings.batch_window).min();
        match (batch, self.held.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn tick(&mut self, now: Instant) {
        for q in self.held.release(Some(now)) {
            self.batch(q, now);
        }
        let due: Vec<String> = self
            .batches
            .iter()
            .filter(|(_, b)| b.started + self.settings.batch_window <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.flush(&id);
        }
    }

    fn flush(&mut self, app_id: &str) {
        if let Some(b) = self.batches.remove(app_id)
            && !b.events.is_empty()
        {
            self.deliverer.submit(&b.app, &b.events);
        }
    }

    fn flush_all(&mut self) {
        let now = Instant::now();
        for q in self.held.release(None) {
            self.batch(q, now);
        }
        let ids: Vec<String> = self.batches.keys().cloned().collect();
        for id in ids {
            self.flush(&id);
        }
    }
}
