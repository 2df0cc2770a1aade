//! Webhooks: a bounded queue of events per node, held (vacate delay), batched per app, signed
//! and delivered with retries. Never blocks or slows the WebSocket path: `emit` is a `try_send`.
//! Must not know about sockets or channels beyond the events it is handed.

mod batch;
mod delivery;
mod dispatcher;
mod held;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::apps::App;
use crate::config::WebhooksConfig;
use crate::debug::DebugTap;
use crate::metrics::Metrics;
use crate::protocol::WebhookEvent;

pub use delivery::backoff;

/// Webhook delivery settings.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// How long an app's events are collected before one request.
    pub batch_window: Duration,
    /// Most events per request.
    pub batch_max_events: usize,
    /// How long `channel_vacated` / `member_removed` are held.
    pub vacate_delay: Duration,
    /// Timeout of one attempt.
    pub request_timeout: Duration,
    /// First retry delay.
    pub retry_initial: Duration,
    /// Give up after this long.
    pub retry_max: Duration,
    /// Queue capacity, in events.
    pub queue_events: usize,
    /// Batches waiting for delivery or retry.
    pub max_pending_batches: usize,
    /// Requests in flight at once.
    pub max_concurrent_requests: usize,
}

impl From<&WebhooksConfig> for WebhookSettings {
    fn from(c: &WebhooksConfig) -> Self {
        Self {
            batch_window: Duration::from_millis(c.batch_ms),
            batch_max_events: c.batch_max_events,
            vacate_delay: Duration::from_millis(c.vacate_delay_ms),
            request_timeout: Duration::from_secs(c.request_timeout_secs),
            retry_initial: Duration::from_millis(c.retry_initial_ms),
            retry_max: Duration::from_secs(c.retry_max_secs),
            queue_events: c.queue_events,
            max_pending_batches: c.max_pending_batches,
            max_concurrent_requests: c.max_concurrent_requests,
        }
    }
}

/// An event on its way to the dispatcher.
#[derive(Debug)]
struct Queued {
    app: Arc<App>,
    event: WebhookEvent,
    /// Already past its vacate delay (held by the cluster): never held again.
    due: bool,
}

/// The sending side: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Webhooks {
    tx: mpsc::Sender<Queued>,
    metrics: Metrics,
    last_drop_log: Arc<AtomicU64>,
}

/// The running dispatcher; `finish` flushes it on shutdown.
pub struct Dispatcher {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Dispatcher {
    /// Flushes held and batched events and waits for deliveries, up to `deadline`.
    pub async fn finish(self, deadline: Duration) {
        self.stop.cancel();
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!("webhook deliveries still pending at shutdown were abandoned");
        }
    }
}

/// Starts the dispatcher task.
pub fn start(settings: WebhookSettings, metrics: Metrics, debug: DebugTap) -> (Webhooks, Dispatcher) {
    let (tx, rx) = mpsc::channel(settings.queue_events.max(1));
    let stop = CancellationToken::new();
    let task = tokio::spawn(dispatcher::run(rx, settings, metrics.clone(), debug, stop.clone()));
    (Webhooks { tx, metrics, last_drop_log: Arc::new(AtomicU64::new(0)) }, Dispatcher { stop, task })
}

impl Webhooks {
    /// Queues `event` for `app` if any of its targets wants it; drops (counted, logged) when
    /// the queue is full.
    pub fn emit(&self, app: &Arc<App>, event: WebhookEvent) {
        self.queue(app, event, false);
    }

    /// Queues a removal whose vacate delay already ran (a cluster driver held it): it is
    /// batched at once.
    pub fn emit_now(&self, app: &Arc<App>, event: WebhookEvent) {
        self.queue(app, event, true);
    }

    fn queue(&self, app: &Arc<App>, event: WebhookEvent, due: bool) {
        if !app.wants_webhook(event.kind, &event.channel) {
            return;
        }
        match self.tx.try_send(Queued { app: app.clone(), event, due }) {
            Ok(()) => self.metrics.webhook_events(&app.id, "queued", 1),
            Err(mpsc::error::TrySendError::Full(q) | mpsc::error::TrySendError::Closed(q)) => {
                self.metrics.webhook_events(&q.app.id, "dropped", 1);
                self.log_drop(&q.app.id);
            }
        }
    }

    /// Logs a dropped event at most once per second, so a flood cannot flood the log.
    fn log_drop(&self, app_id: &str) {
        let now = unix_ms() / 1000;
        if self.last_drop_log.swap(now, Ordering::Relaxed) != now {
            tracing::warn!(app_id, "webhook queue full: events dropped (see herald_webhook_events_total)");
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
