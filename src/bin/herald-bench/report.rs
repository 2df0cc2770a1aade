//! What a run prints: progress lines on stderr while it runs, then a table and one JSON line
//! (always the last line of stdout). Must not measure: scenarios hand it numbers.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Version of the JSON line's layout; bumped when a field changes meaning.
const SCHEMA: u64 = 1;

/// Error messages kept as samples; the rest are only counted.
const ERROR_SAMPLES: usize = 5;

/// One scenario's results.
pub(crate) struct Report {
    scenario: &'static str,
    target: String,
    params: Map<String, Value>,
    metrics: Vec<(String, f64)>,
    errors: Vec<String>,
}

impl Report {
    pub(crate) fn new(scenario: &'static str, target: String) -> Self {
        Self { scenario, target, params: Map::new(), metrics: Vec::new(), errors: Vec::new() }
    }

    /// Records an input of the run (shown in the table header and the JSON `params`).
    pub(crate) fn param(&mut self, name: &str, value: impl Into<Value>) {
        self.params.insert(name.to_owned(), value.into());
    }

    /// Records a measured number; names carry their unit (`_ms`, `_kb`, `_per_sec`, `_pct`).
    pub(crate) fn metric(&mut self, name: &str, value: f64) {
        self.metrics.push((name.to_owned(), value));
    }

    /// Appends metrics measured earlier (e.g. by [`crate::stats::CpuWindow::finish`]).
    pub(crate) fn extend(&mut self, metrics: Vec<(String, f64)>) {
        self.metrics.extend(metrics);
    }

    /// Adds the error count and samples collected by `errors`.
    pub(crate) fn errors(&mut self, errors: &Errors) {
        self.metric("errors", errors.count() as f64);
        // unwrap: nobody panics while holding the samples lock.
        self.errors.extend(errors.samples.lock().unwrap().iter().cloned());
    }

    /// The readable table.
    pub(crate) fn table(&self) -> String {
        let mut out = format!("\nherald-bench {} against {}\n", self.scenario, self.target);
        let params: Vec<String> = self.params.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect();
        let _ = writeln!(out, "  {}", params.join(" "));
        let width = self.metrics.iter().map(|(n, _)| n.len()).max().unwrap_or(6).max(6);
        let _ = writeln!(out, "  {:<width$}  {:>14}", "metric", "value");
        let _ = writeln!(out, "  {}  {}", "-".repeat(width), "-".repeat(14));
        for (name, value) in &self.metrics {
            let _ = writeln!(out, "  {name:<width$}  {:>14}", human(*value));
        }
        for e in &self.errors {
            let _ = writeln!(out, "  error sample: {e}");
        }
        out
    }

    /// The machine-readable line.
    pub(crate) fn json(&self) -> String {
        let metrics: Map<String, Value> = self.metrics.iter().map(|(n, v)| (n.clone(), number(*v))).collect();
        json!({
            "tool": "herald-bench",
            "schema": SCHEMA,
            "version": env!("CARGO_PKG_VERSION"),
            "scenario": self.scenario,
            "target": self.target,
            "params": self.params,
            "metrics": metrics,
            "errors": self.errors,
        })
        .to_string()
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Integers stay integers; other values keep three decimals; NaN and infinities become null.
fn number(v: f64) -> Value {
    if !v.is_finite() {
        Value::Null
    } else if v.fract() == 0.0 && v.abs() < 9e15 {
        Value::from(v as i64)
    } else {
        Value::from((v * 1000.0).round() / 1000.0)
    }
}

fn human(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.fract() == 0.0 && v.abs() < 9e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Failures counted across tasks, with the first few messages kept.
#[derive(Default)]
pub(crate) struct Errors {
    count: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Errors {
    /// Counts one failure of `what`.
    pub(crate) fn note(&self, what: &str, err: impl std::fmt::Display) {
        self.count.fetch_add(1, Ordering::Relaxed);
        // unwrap: nobody panics while holding the samples lock.
        let mut s = self.samples.lock().unwrap();
        if s.len() < ERROR_SAMPLES {
            s.push(format!("{what}: {err}"));
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The kept messages on one line.
    pub(crate) fn first(&self) -> String {
        // unwrap: nobody panics while holding the samples lock.
        self.samples.lock().unwrap().join("; ")
    }
}

/// Prints `line()` to stderr every `every` seconds, prefixed with the time since start,
/// until the returned handle is aborted or dropped through [`Progress::stop`].
pub(crate) struct Progress(Option<JoinHandle<()>>);

impl Progress {
    pub(crate) fn start(every: f64, line: impl Fn() -> String + Send + 'static) -> Self {
        if every <= 0.0 {
            return Self(None);
        }
        let started = Instant::now();
        Self(Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(every));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!("[{:>6.1}s] {}", started.elapsed().as_secs_f64(), line());
            }
        })))
    }

    pub(crate) fn stop(self) {
        if let Some(h) = self.0 {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_numbers_and_nulls() {
        let mut r = Report::new("fanout", "127.0.0.1:1".into());
        r.param("subscribers", 10);
        r.metric("delivered", 100.0);
        r.metric("latency_p50_ms", 1.23456);
        r.metric("ratio", f64::NAN);
        let v: Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["metrics"]["delivered"], json!(100));
        assert_eq!(v["metrics"]["latency_p50_ms"], json!(1.235));
        assert_eq!(v["metrics"]["ratio"], Value::Null);
        assert_eq!(v["params"]["subscribers"], json!(10));
        assert!(r.table().contains("latency_p50_ms"));
    }
}
