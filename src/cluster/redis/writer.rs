//! The bus writer: one task per node that sends queued publishes to Redis in order, many per
//! round trip, and tells each waiting publisher whether Redis took it. A publish still queued
//! past its deadline (Redis slow or away) is not sent at all: its REST caller already gets a
//! 503 for it, and must not see it delivered later.
//! Must not drop a publish silently: each failure is counted, and a waiting caller told.

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::link::Link;
use crate::metrics::{ClusterMetrics, ClusterOp};

/// Publishes sent in one round trip at most.
const BATCH: usize = 256;

/// One publish on its way to the bus.
pub(super) struct Outgoing {
    /// The bus channel.
    pub(super) bus: String,
    /// The encoded message (`wire`).
    pub(super) payload: Vec<u8>,
    /// Told whether Redis took it (REST publishes wait for this).
    pub(super) ack: Option<oneshot::Sender<bool>>,
    /// Not sent after this.
    pub(super) deadline: Instant,
}

/// Runs until every sender is gone.
pub(super) async fn run(mut rx: mpsc::Receiver<Outgoing>, link: Link, metrics: ClusterMetrics) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let now = Instant::now();
        for stale in batch.extract_if(.., |o| o.deadline <= now) {
            metrics.failed(ClusterOp::Publish);
            if let Some(ack) = stale.ack {
                let _ = ack.send(false);
            }
        }
        if batch.is_empty() {
            continue;
        }
        let items: Vec<(&str, &[u8])> = batch.iter().map(|o| (o.bus.as_str(), o.payload.as_slice())).collect();
        let taken = match link.clone().publish_all(&items).await {
            Ok(()) => {
                metrics.published.inc_by(batch.len() as u64);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, publishes = batch.len(), "bus publish failed");
                for _ in 0..batch.len() {
                    metrics.failed(ClusterOp::Publish);
                }
                false
            }
        };
        for o in batch.drain(..) {
            if let Some(ack) = o.ack {
                let _ = ack.send(taken);
            }
        }
    }
}
