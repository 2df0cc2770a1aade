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
    /// Results that are not one number (flags, series), under `details` in the JSON line.
    details: Map<String, Value>,
    errors: Vec<String>,
    /// Why the run failed its own check: the report is still printed, then the exit is non-zero.
    failure: Option<String>,
}

impl Report {
    pub(crate) fn new(scenario: &'static str, target: String) -> Self {
        Self {
            scenario,
            target,
            params: Map::new(),
            metrics: Vec::new(),
            details: Map::new(),
            errors: Vec::new(),
            failure: None,
        }
    }

    /// Records an input of the run (shown in the table header and the JSON `params`).
    pub(crate) fn param(&mut self, name: &str, value: impl Into<Value>) {
        self.params.insert(name.to_owned(), value.into());
    }

    /// Records every field of a scenario's options as a parameter, named as its flag's words.
    pub(crate) fn args(&mut self, args: &impl serde::Serialize) {
        if let Ok(Value::Object(fields)) = serde_json::to_value(args) {
            self.params.extend(fields);
        }
    }

    /// Records a measured number; names carry their unit (`_ms`, `_kb`, `_per_sec`, `_pct`).
    pub(crate) fn metric(&mut self, name: &str, value: f64) {
        self.metrics.push((name.to_owned(), value));
    }

    /// Appends metrics measured earlier (e.g. by [`crate::stats::CpuWindow::finish`]).
    pub(crate) fn extend(&mut self, metrics: Vec<(String, f64)>) {
        self.metrics.extend(metrics);
    }

    /// Records a result that is not one number: a flag, or a series such as `[[secs, kb], …]`.
    pub(crate) fn detail(&mut self, name: &str, value: impl Into<Value>) {
        self.details.insert(name.to_owned(), value.into());
    }

    /// Marks the run as failed (a check of the scenario did not hold): the report is still
    /// printed in full, and the tool then exits non-zero with `why`.
    pub(crate) fn fail(&mut self, why: String) {
        self.failure = Some(why);
    }

    /// Why the run failed, if it did.
    pub(crate) fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
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
        for (name, value) in &self.details {
            let shown = match value {
                Value::Array(items) => format!("{} entries (see the JSON line)", items.len()),
                other => plain(other),
            };
            let _ = writeln!(out, "  {name}: {shown}");
        }
        for e in &self.errors {
            let _ = writeln!(out, "  error sample: {e}");
        }
        if let Some(why) = &self.failure {
            let _ = writeln!(out, "  FAILED: {why}");
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
            "details": self.details,
            "errors": self.errors,
            "failure": self.failure,
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
        assert_eq!(v["details"], json!({}));
        assert_eq!(v["failure"], Value::Null);
    }

    #[test]
    fn details_and_failure_reach_both_outputs() {
        let mut r = Report::new("churn", "127.0.0.1:1".into());
        r.detail("gauges_at_baseline", false);
        r.detail("rss_samples", json!([[0, 100], [10, 120]]));
        r.fail("gauges did not return to 0".into());
        let v: Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["details"]["gauges_at_baseline"], json!(false));
        assert_eq!(v["details"]["rss_samples"][1], json!([10, 120]));
        assert_eq!(v["failure"], json!("gauges did not return to 0"));
        let table = r.table();
        assert!(table.contains("rss_samples: 2 entries") && table.contains("FAILED"), "{table}");
        assert_eq!(r.failure(), Some("gauges did not return to 0"));
    }
}
