//! The debug console: a live, per-app stream of what happens on this node, for a person
//! watching (`/debug` on the metrics listener, its data behind the admin token).
//! Must never slow the hot path: with no console open for an app, an event costs one atomic
//! load (and a map lookup while some other app is watched); with one open, events beyond
//! `max_events_per_second` are shed, and a console that falls `buffer_events` behind loses
//! the oldest. Either way it is told how many it missed; nothing waits for a console.
//!
//! Events are built and serialized once, at the emit, then shared by every console
//! watching that app; they are never per delivery (a publish is one event, whatever its
//! fan-out).

mod http;
mod page;

pub use http::{DebugDeps, configure};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::config::DebugConfig;
use crate::metrics::DebugMetrics;

/// One event as the consoles receive it: its app, and its JSON.
#[derive(Debug)]
pub struct Entry {
    app_id: String,
    json: String,
}

/// The node's debug event hub. Cheap to clone.
#[derive(Clone)]
pub struct DebugTap(Arc<Inner>);

struct Inner {
    /// Consoles open, any app: the whole cost of an emit while it is 0.
    watching: AtomicUsize,
    /// Consoles open per app.
    apps: RwLock<HashMap<String, usize>>,
    tx: broadcast::Sender<Arc<Entry>>,
    /// `(second << 32) | events admitted in it`, seconds since `epoch`.
    window: AtomicU64,
    epoch: Instant,
    max_per_second: u64,
    /// Events shed over the budget, ever (each console reports its share of the increase).
    shed: AtomicU64,
    preview_bytes: usize,
    metrics: DebugMetrics,
}

impl DebugTap {
    /// A hub with `cfg`'s budget, counting in `metrics`.
    pub fn new(cfg: &DebugConfig, metrics: DebugMetrics) -> Self {
        let (tx, _) = broadcast::channel(cfg.buffer_events.max(16));
        Self(Arc::new(Inner {
            watching: AtomicUsize::new(0),
            apps: RwLock::new(HashMap::new()),
            tx,
            window: AtomicU64::new(0),
            epoch: Instant::now(),
            max_per_second: u64::from(cfg.max_events_per_second.max(1)),
            shed: AtomicU64::new(0),
            preview_bytes: cfg.payload_preview_bytes,
            metrics,
        }))
    }

    /// Whether a console watches `app_id`: check it before building an event's fields.
    #[inline]
    pub fn watching(&self, app_id: &str) -> bool {
        self.0.watching.load(Ordering::Relaxed) > 0 && self.0.apps.read().contains_key(app_id)
    }

    /// Emits `fields()` (a JSON object, with a `type`) for `app_id`'s consoles, if any watch
    /// and the budget allows; `fields` is not called otherwise.
    pub fn emit(&self, app_id: &str, fields: impl FnOnce() -> Value) {
        if !self.watching(app_id) {
            return;
        }
        if !self.admit() {
            self.0.shed.fetch_add(1, Ordering::Relaxed);
            self.0.metrics.count("shed", 1);
            return;
        }
        let mut value = fields();
        if let Value::Object(map) = &mut value {
            map.insert("time".into(), json!(unix_ms()));
        }
        let entry = Arc::new(Entry { app_id: app_id.to_owned(), json: value.to_string() });
        if self.0.tx.send(entry).is_ok() {
            self.0.metrics.count("sent", 1);
        }
    }

    /// The first `payload_preview_bytes` of `data` (cut at a character boundary), or `None`
    /// when previews are off.
    pub fn preview(&self, data: &str) -> Option<String> {
        let max = self.0.preview_bytes;
        if max == 0 {
            return None;
        }
        let mut end = data.len().min(max);
        while !data.is_char_boundary(end) {
            end -= 1;
        }
        Some(data[..end].to_owned())
    }

    /// One event more in this second's budget, or `false` when it is spent.
    fn admit(&self) -> bool {
        let second = self.0.epoch.elapsed().as_secs();
        let mut current = self.0.window.load(Ordering::Relaxed);
        loop {
            let (at, used) = (current >> 32, current & 0xFFFF_FFFF);
            let next = if at == second {
                if used >= self.0.max_per_second {
                    return false;
                }
                current + 1
            } else {
                (second << 32) | 1
            };
            match self.0.window.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// A console for `app_id`: its events from now on, until it is dropped.
    fn watch(&self, app_id: &str) -> Watch {
        let rx = self.0.tx.subscribe();
        *self.0.apps.write().entry(app_id.to_owned()).or_insert(0) += 1;
        self.0.watching.fetch_add(1, Ordering::Relaxed);
        Watch { tap: self.clone(), app_id: app_id.to_owned(), rx, shed_seen: self.0.shed.load(Ordering::Relaxed) }
    }
}

/// One open console's subscription; leaving it (drop) stops the events for its app when it
/// was the last.
struct Watch {
    tap: DebugTap,
    app_id: String,
    rx: broadcast::Receiver<Arc<Entry>>,
    shed_seen: u64,
}

/// What a console gets next.
enum Next {
    Event(Arc<Entry>),
    /// Events it missed: shed over the budget or lost falling behind.
    Missed(u64),
    Closed,
}

impl Watch {
    /// The next event of its app, or how many it missed.
    async fn next(&mut self) -> Next {
        loop {
            match self.rx.recv().await {
                Ok(entry) if entry.app_id == self.app_id => return Next::Event(entry),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    self.tap.0.metrics.count("lagged", n);
                    return Next::Missed(n);
                }
                Err(broadcast::error::RecvError::Closed) => return Next::Closed,
            }
        }
    }

    /// Events shed (node-wide) since the last call.
    fn shed_since(&mut self) -> u64 {
        let now = self.tap.0.shed.load(Ordering::Relaxed);
        let n = now.saturating_sub(self.shed_seen);
        self.shed_seen = now;
        n
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut apps = self.tap.0.apps.write();
        if let Some(n) = apps.get_mut(&self.app_id) {
            *n -= 1;
            if *n == 0 {
                apps.remove(&self.app_id);
            }
        }
        self.tap.0.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(max: u32, preview: usize) -> DebugTap {
        let cfg = DebugConfig { max_events_per_second: max, payload_preview_bytes: preview, ..DebugConfig::default() };
        DebugTap::new(&cfg, crate::metrics::Metrics::new().debug())
    }

    #[tokio::test]
    async fn only_watched_apps_build_events_and_the_budget_sheds_the_rest() {
        let t = tap(3, 0);
        let mut built = 0;
        t.emit("a", || {
            built += 1;
            json!({"type": "x"})
        });
        assert_eq!(built, 0, "nobody watches: the fields are never built");
        let mut w = t.watch("a");
        t.emit("b", || json!({"type": "other app"}));
        for i in 0..5 {
            t.emit("a", || json!({"type": "x", "i": i}));
        }
        for i in 0..3 {
            let Next::Event(e) = w.next().await else { panic!("an event") };
            assert!(e.json.contains(&format!("\"i\":{i}")), "{}", e.json);
        }
        assert_eq!(w.shed_since(), 2, "two over the budget of three");
        drop(w);
        assert!(!t.watching("a"));
    }

    #[tokio::test]
    async fn a_slow_console_is_told_what_it_lost() {
        let cfg = DebugConfig { buffer_events: 16, max_events_per_second: 1_000, ..DebugConfig::default() };
        let t = DebugTap::new(&cfg, crate::metrics::Metrics::new().debug());
        let mut w = t.watch("a");
        for i in 0..20 {
            t.emit("a", || json!({"type": "x", "i": i}));
        }
        assert!(matches!(w.next().await, Next::Missed(4)));
        assert!(matches!(w.next().await, Next::Event(_)));
    }

    #[test]
    fn previews_cut_at_a_character_boundary() {
        assert_eq!(tap(10, 0).preview("hello"), None);
        assert_eq!(tap(10, 4).preview("hello").as_deref(), Some("hell"));
        assert_eq!(tap(10, 2).preview("é!").as_deref(), Some("é"));
        assert_eq!(tap(10, 1).preview("é").as_deref(), Some(""));
    }
}
