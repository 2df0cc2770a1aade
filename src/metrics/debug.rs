//! The debug console's events, by outcome.
//! Must not know the console: `debug/` counts, this only holds the handle.

use prometheus::{IntCounterVec, Opts, Registry};

/// Handles for `debug/`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DebugMetrics {
    events: IntCounterVec,
}

impl DebugMetrics {
    /// Creates the handle and registers it in `r`.
    pub(super) fn register(r: &Registry) -> Self {
        // unwrap: static, valid name and help; registered once.
        let events = IntCounterVec::new(
            Opts::new(
                "herald_debug_events_total",
                "Debug console events by outcome (sent to open consoles, shed over the budget, lagged: lost by a slow console)",
            ),
            &["outcome"],
        )
        .unwrap();
        r.register(Box::new(events.clone())).unwrap();
        Self { events }
    }

    /// Counts `n` events: `sent`, `shed` or `lagged`.
    pub fn count(&self, outcome: &'static str, n: u64) {
        self.events.with_label_values(&[outcome]).inc_by(n);
    }
}
