//! `[debug]`: the live debug console on the metrics listener (`/debug`, admin token).
//! Must not serve anything: `debug/` does; this is data and its rules.

use serde::{Deserialize, Serialize};

/// The debug console.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebugConfig {
    /// Serve the console (needs `app_store.admin_token`, which it is protected by).
    pub enabled: bool,
    /// Events per second this node hands to open consoles, all apps together; the rest are
    /// dropped (counted, and the console is told how many).
    pub max_events_per_second: u32,
    /// Events one console may fall behind by before it loses the oldest (and is told).
    pub buffer_events: usize,
    /// Bytes of each REST publish's and client event's `data` shown in the console; 0: none
    /// (names, channels and sizes only).
    pub payload_preview_bytes: usize,
}

impl Default for DebugConfig {
    fn default() -> Self {
        Self { enabled: true, max_events_per_second: 500, buffer_events: 1_024, payload_preview_bytes: 0 }
    }
}

/// Broken rules, as (key, message).
pub(super) fn check(cfg: &DebugConfig) -> Vec<(&'static str, String)> {
    let DebugConfig { enabled: _, max_events_per_second, buffer_events, payload_preview_bytes } = cfg;
    let mut issues = Vec::new();
    let mut within = |key: &'static str, v: u64, min: u64, max: u64| {
        if !(min..=max).contains(&v) {
            issues.push((key, format!("must be between {min} and {max} (is {v})")));
        }
    };
    within("debug.max_events_per_second", u64::from(*max_events_per_second), 1, 100_000);
    within("debug.buffer_events", *buffer_events as u64, 16, 1_000_000);
    within("debug.payload_preview_bytes", *payload_preview_bytes as u64, 0, 65_536);
    issues
}
