//! Delivery: one signed `POST` per batch and target, retried with exponential back-off and
//! jitter on network errors, timeouts, 5xx and 429, within a bounded number of pending batches.
//! Must not retry a definitive answer (2xx done, other 4xx final), nor log bodies or secrets.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::{Duration, Instant, sleep};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{WebhookSettings, unix_ms};
use crate::apps::{App, WebhookTarget};
use crate::debug::DebugTap;
use crate::metrics::Metrics;
use crate::protocol::signature::sign_bytes;
use crate::protocol::{WebhookEvent, webhook_body};

/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The delay before retry number `attempt` (1-based): `initial · 2^(attempt-1)`, capped at a
/// minute, scaled by `jitter` in [0.5, 1.0] so failing receivers are not hit in lockstep.
pub fn backoff(initial: Duration, attempt: u32, jitter: f64) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    exp.min(MAX_BACKOFF).mul_f64(jitter.clamp(0.5, 1.0))
}

/// How an attempt ended.
enum Attempt {
    Delivered,
    Final(u16),
    Retry(String),
}

/// Sends batches; bounded by `max_pending_batches` and `max_concurrent_requests`.
#[derive(Clone)]
pub(super) struct Deliverer {
    client: reqwest::Client,
    settings: WebhookSettings,
    metrics: Metrics,
    debug: DebugTap,
    pending: Arc<Semaphore>,
    in_flight: Arc<Semaphore>,
    tasks: TaskTracker,
    /// Set at shutdown: no more retries, only first attempts.
    closing: CancellationToken,
}

impl Deliverer {
    pub(super) fn new(settings: WebhookSettings, metrics: Metrics, debug: DebugTap) -> Self {
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            client,
            pending: Arc::new(Semaphore::new(settings.max_pending_batches.max(1))),
            in_flight: Arc::new(Semaphore::new(settings.max_concurrent_requests.max(1))),
            settings,
            metrics,
            debug,
            tasks: TaskTracker::new(),
            closing: CancellationToken::new(),
        }
    }

    /// Starts delivering `events` to every target of `app` that wants some of them.
    pub(super) fn submit(&self, app: &Arc<App>, events: &[WebhookEvent]) {
        for target in &app.webhooks {
            let wanted: Vec<WebhookEvent> =
                events.iter().filter(|e| target.wants(e.kind, &e.channel)).cloned().collect();
            if wanted.is_empty() {
                continue;
            }
            let Ok(permit) = self.pending.clone().try_acquire_owned() else {
                self.metrics.webhook_request(&app.id, "dropped");
                self.metrics.webhook_events(&app.id, "dropped", wanted.len() as u64);
                tracing::warn!(app_id = %app.id, events = wanted.len(), "webhook backlog full: batch dropped");
                continue;
            };
            let body = webhook_body(unix_ms(), &wanted);
            let names = self.debug.watching(&app.id).then(|| wanted.iter().map(|e| e.kind.name()).collect());
            let (me, app, target) = (self.clone(), app.clone(), target.clone());
            self.tasks.spawn(async move {
                me.deliver(&app, &target, body, names.unwrap_or_default()).await;
                drop(permit);
            });
        }
    }

    async fn deliver(&self, app: &App, target: &WebhookTarget, body: String, names: Vec<&'static str>) {
        let signature = sign_bytes(app.secret.expose(), body.as_bytes());
        let started = Instant::now();
        let mut attempt = 1;
        let show = |outcome: &str, status: Option<u16>, error: Option<&str>, attempt: u32| {
            self.debug.emit(&app.id, || {
                let host = reqwest::Url::parse(&target.url).ok().and_then(|u| u.host_str().map(str::to_owned));
                json!({"type": "webhook", "outcome": outcome, "events": names, "target": host,
                       "status": status, "error": error, "attempt": attempt})
            });
        };
        loop {
            let outcome = self.attempt(app, target, &body, &signature).await;
            let why = match outcome {
                Attempt::Delivered => {
                    show("sent", None, None, attempt);
                    return self.metrics.webhook_request(&app.id, "sent");
                }
                Attempt::Final(status) => {
                    show("failed", Some(status), None, attempt);
                    self.metrics.webhook_request(&app.id, "failed");
                    return tracing::warn!(app_id = %app.id, status, "webhook refused by the receiver");
                }
                Attempt::Retry(why) => why,
            };
            let wait = backoff(self.settings.retry_initial, attempt, 0.5 + rand::random::<f64>() / 2.0);
            if self.closing.is_cancelled() || started.elapsed() + wait > self.settings.retry_max {
                show("failed", None, Some(&why), attempt);
                self.metrics.webhook_request(&app.id, "failed");
                return tracing::warn!(app_id = %app.id, attempts = attempt, error = %why, "webhook delivery given up");
            }
            show("retried", None, Some(&why), attempt);
            self.metrics.webhook_request(&app.id, "retried");
            tracing::debug!(app_id = %app.id, attempt, error = %why, "webhook delivery will be retried");
            tokio::select! {
                () = sleep(wait) => {}
                () = self.closing.cancelled() => {}
            }
            attempt += 1;
        }
    }

    async fn attempt(&self, app: &App, target: &WebhookTarget, body: &str, signature: &str) -> Attempt {
        let Ok(_slot) = self.in_flight.acquire().await else { return Attempt::Final(0) };
        let mut req = self.client.post(&target.url);
        for (name, value) in &target.headers {
            req = req.header(name, value);
        }
        let req = req
            .header("Content-Type", "application/json")
            .header("X-Pusher-Key", &app.key)
            .header("X-Pusher-Signature", signature)
            .body(body.to_owned());
        match req.send().await {
            Ok(r) if r.status().is_success() => Attempt::Delivered,
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                Attempt::Retry(format!("HTTP {}", r.status().as_u16()))
            }
            Ok(r) => Attempt::Final(r.status().as_u16()),
            Err(e) => Attempt::Retry(if e.is_timeout() { "timeout".into() } else { "connection failed".into() }),
        }
    }

    /// Stops retrying and waits for every delivery's current attempt.
    pub(super) async fn close(&self) {
        self.closing.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let s = Duration::from_secs(1);
        assert_eq!(backoff(s, 1, 1.0), s);
        assert_eq!(backoff(s, 2, 1.0), 2 * s);
        assert_eq!(backoff(s, 3, 0.5), 2 * s);
        assert_eq!(backoff(s, 20, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(s, 1, 7.0), s, "jitter is clamped");
    }
}
