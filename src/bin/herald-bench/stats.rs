//! Measurements: a monotonic microsecond clock, sharded latency histograms, and process CPU
//! time and RSS read from `/proc`. Must not talk to the server under test.

use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use hdrhistogram::Histogram;
use tokio::time::Instant;

use crate::report::Report;

/// Microseconds since the first call in this process. Publishers stamp events with it and
/// subscribers in the same process subtract, so no wall clock is involved.
pub(crate) fn now_us() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Latencies in microseconds, up to one minute, 3 significant digits. Sharded so that
/// thousands of client tasks can record without one hot lock.
pub(crate) struct Latency {
    shards: Box<[Mutex<Histogram<u64>>]>,
}

const SHARDS: usize = 16;

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub(crate) fn new() -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(histogram())).collect();
        Self { shards }
    }

    /// Records one sample; `shard` is any number that differs between concurrent recorders.
    pub(crate) fn record(&self, shard: usize, us: u64) {
        // unwrap: a recorder never panics while holding the lock.
        self.shards[shard % SHARDS].lock().unwrap().saturating_record(us.max(1));
    }

    /// All shards added up.
    pub(crate) fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for s in &*self.shards {
            // unwrap: see `record`; all histograms share bounds, so `add` cannot fail.
            all.add(&*s.lock().unwrap()).unwrap();
        }
        all
    }

    /// Adds `{prefix}_p50_ms`, p90, p99, max, mean and the sample count to `report`.
    pub(crate) fn report(&self, report: &mut Report, prefix: &str) {
        let h = self.merged();
        report.metric(&format!("{prefix}_samples"), h.len() as f64);
        if h.is_empty() {
            return;
        }
        for (name, q) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
            report.metric(&format!("{prefix}_{name}_ms"), h.value_at_quantile(q) as f64 / 1000.0);
        }
        report.metric(&format!("{prefix}_max_ms"), h.max() as f64 / 1000.0);
        report.metric(&format!("{prefix}_mean_ms"), h.mean() / 1000.0);
    }

    /// The histogram as log-spaced `[[upper_ms, count], …]` (see [`crate::series::latency_buckets`]).
    pub(crate) fn buckets(&self) -> serde_json::Value {
        crate::series::latency_buckets(&self.merged())
    }
}

fn histogram() -> Histogram<u64> {
    // unwrap: constant, valid bounds.
    Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
}

/// Clock ticks per second of `/proc/*/stat` times.
fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// User + system CPU time of a process (all threads), in microseconds; `None` is this process.
pub(crate) fn cpu_us(pid: Option<u32>) -> Option<u64> {
    cpu_split_us(pid).map(|(user, system)| user + system)
}

/// User and system (kernel) CPU time of a process (all threads), in microseconds.
pub(crate) fn cpu_split_us(pid: Option<u32>) -> Option<(u64, u64)> {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which may hold spaces and parentheses itself.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime * 1_000_000 / clk_tck(), stime * 1_000_000 / clk_tck()))
}

/// Resident set size of a process in KiB; `None` is this process.
pub(crate) fn rss_kb(pid: Option<u32>) -> Option<u64> {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |p| format!("/proc/{p}/status"));
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The machine a run measured on, without naming it: its CPU count and model, and the date.
pub(crate) fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let listed = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let cores = if listed > 0 { listed } else { std::thread::available_parallelism().map_or(0, |n| n.get()) };
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned());
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    serde_json::json!({ "cores": cores, "cpu_model": model, "date": utc_date(secs) })
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM UTC` (the server's own calendar date).
pub(crate) fn utc_date(secs: u64) -> String {
    let (days, rest) = (u32::try_from(secs / 86_400).unwrap_or(u32::MAX), secs % 86_400);
    format!("{} {:02}:{:02} UTC", herald::usage::date(days), rest / 3600, rest % 3600 / 60)
}

/// A server's RSS over a run: `(seconds since the series started, KiB)`, the baseline first.
pub(crate) struct RssSeries {
    pid: Option<u32>,
    started: Instant,
    samples: Vec<(f64, u64)>,
}

impl RssSeries {
    /// An empty series of process `pid`, its clock starting now; without a pid it stays empty.
    pub(crate) fn new(pid: Option<u32>) -> Self {
        Self { pid, started: Instant::now(), samples: Vec::new() }
    }

    /// Samples the RSS now; `None` without a pid or once the process is gone.
    pub(crate) fn sample(&mut self) -> Option<u64> {
        let kb = rss_kb(Some(self.pid?))?;
        self.samples.push((self.started.elapsed().as_secs_f64(), kb));
        Some(kb)
    }

    /// Adds `server_rss_{baseline,peak,final,growth}_kb` and the detail `rss_samples`
    /// (`[[secs, kb], …]`), when anything was sampled.
    pub(crate) fn report(&self, r: &mut Report) {
        let (Some(&(_, base)), Some(&(_, last))) = (self.samples.first(), self.samples.last()) else { return };
        r.metric("server_rss_baseline_kb", base as f64);
        r.metric("server_rss_peak_kb", self.samples.iter().map(|&(_, kb)| kb).max().unwrap_or(last) as f64);
        r.metric("server_rss_final_kb", last as f64);
        r.metric("server_rss_growth_kb", last as f64 - base as f64);
        let series: Vec<_> =
            self.samples.iter().map(|&(s, kb)| serde_json::json!([(s * 10.0).round() / 10.0, kb])).collect();
        r.detail("rss_samples", series);
    }
}

/// The sum of every series of `name` (over all its label sets) in a Prometheus text
/// exposition, such as a server's `/metrics` page; `None` when no series of `name` appears.
pub(crate) fn metric_sum(exposition: &str, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in exposition.lines() {
        // `# HELP name …` does not start with the name; `name_total …` continues it with `_`.
        let Some(rest) = line.strip_prefix(name) else { continue };
        let rest = match rest.strip_prefix('{') {
            Some(labels) => match labels.rfind('}') {
                Some(end) => &labels[end + 1..],
                None => continue,
            },
            None if rest.starts_with(' ') => rest,
            None => continue,
        };
        // The value, then an optional timestamp.
        if let Some(v) = rest.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
            *sum.get_or_insert(0.0) += v;
        }
    }
    sum
}

/// Gauges of a server's Prometheus page over a run (each summed over its label sets; absent
/// reads 0): the first values, the peaks and the latest. Fed text; never fetches it.
pub(crate) struct GaugeTrack {
    names: &'static [&'static str],
    first: Vec<f64>,
    peak: Vec<f64>,
    last: Vec<f64>,
}

impl GaugeTrack {
    /// Starts tracking `names` from their values in `exposition`.
    pub(crate) fn new(names: &'static [&'static str], exposition: &str) -> Self {
        let first: Vec<f64> = names.iter().map(|n| metric_sum(exposition, n).unwrap_or(0.0)).collect();
        Self { names, peak: first.clone(), last: first.clone(), first }
    }

    /// Takes the values in `exposition`; returns them as `  name value…` for a progress line.
    pub(crate) fn observe(&mut self, exposition: &str) -> String {
        let mut line = String::new();
        for (i, name) in self.names.iter().enumerate() {
            let v = metric_sum(exposition, name).unwrap_or(0.0);
            (self.last[i], self.peak[i]) = (v, self.peak[i].max(v));
            let _ = write!(line, "  {} {v}", name.trim_start_matches("herald_"));
        }
        line
    }

    /// Whether every gauge read 0 last time.
    pub(crate) fn at_zero(&self) -> bool {
        self.last.iter().all(|&v| v == 0.0)
    }

    /// Adds `{name}_start`, `{name}_peak` and `{name}_end` for every gauge.
    pub(crate) fn report(&self, r: &mut Report) {
        for (i, name) in self.names.iter().enumerate() {
            r.metric(&format!("{name}_start"), self.first[i]);
            r.metric(&format!("{name}_peak"), self.peak[i]);
            r.metric(&format!("{name}_end"), self.last[i]);
        }
    }

    /// The latest values as `name=value …`.
    pub(crate) fn latest(&self) -> String {
        let all: Vec<String> = self.names.iter().zip(&self.last).map(|(n, v)| format!("{n}={v}")).collect();
        all.join(" ")
    }
}

/// CPU used by this generator and, when known, the server, over one measured phase.
pub(crate) struct CpuWindow {
    started: Instant,
    own: u64,
    /// The server's pid and its (user, system) CPU at the start.
    server: Option<(u32, (u64, u64))>,
}

impl CpuWindow {
    /// Starts the window now.
    pub(crate) fn start(server_pid: Option<u32>) -> Self {
        let server = server_pid.and_then(|p| cpu_split_us(Some(p)).map(|c| (p, c)));
        Self { started: Instant::now(), own: cpu_us(None).unwrap_or(0), server }
    }

    /// Ends the window: generator and server CPU (and RSS) as report metrics; with `per` set,
    /// also the server's CPU per unit of work (e.g. `("delivery", 12_000)`).
    pub(crate) fn finish(&self, per: Option<(&str, u64)>) -> Vec<(String, f64)> {
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let own = cpu_us(None).unwrap_or(0).saturating_sub(self.own);
        let mut m = vec![
            ("generator_cpu_ms".to_owned(), own as f64 / 1000.0),
            ("generator_cpu_pct".to_owned(), own as f64 / 1e4 / secs),
            ("generator_rss_kb".to_owned(), rss_kb(None).unwrap_or(0) as f64),
        ];
        let Some((pid, (user_before, system_before))) = self.server else { return m };
        let Some((user_now, system_now)) = cpu_split_us(Some(pid)) else { return m };
        let (user, system) = (user_now.saturating_sub(user_before), system_now.saturating_sub(system_before));
        let used = user + system;
        m.push(("server_cpu_ms".to_owned(), used as f64 / 1000.0));
        m.push(("server_cpu_pct".to_owned(), used as f64 / 1e4 / secs));
        m.push(("server_user_cpu_ms".to_owned(), user as f64 / 1000.0));
        m.push(("server_system_cpu_ms".to_owned(), system as f64 / 1000.0));
        if let Some((unit, n)) = per.filter(|(_, n)| *n > 0) {
            m.push((format!("server_cpu_us_per_{unit}"), used as f64 / n as f64));
            // User space (the server's own code) and the kernel (its syscalls, TCP) apart.
            m.push((format!("server_user_us_per_{unit}"), user as f64 / n as f64));
            m.push((format!("server_system_us_per_{unit}"), system as f64 / n as f64));
        }
        if let Some(rss) = rss_kb(Some(pid)) {
            m.push(("server_rss_kb".to_owned(), rss as f64));
        }
        m
    }
}

/// Finds the send stamp a publisher put into an event's `data` (`{"t":<µs>,…}`), in the
/// frame as any server relays it: `data` double-encoded (`\"t\":`) or as an object (`"t":`).
pub(crate) fn stamp(frame: &str) -> Option<u64> {
    // `stamped_data` starts with `{"t":`; inside a string-typed `data` it reads `{\"t\":`.
    // Anchoring on the brace keeps a presence roster's `\"count\":` from matching.
    let at = frame.find("{\\\"t\\\":").map(|i| i + 7).or_else(|| frame.find("{\"t\":").map(|i| i + 5))?;
    let digits = &frame[at..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// An event `data` of about `size` bytes carrying `now_us()` and a sequence number.
pub(crate) fn stamped_data(seq: u64, size: usize) -> String {
    let head = format!("{{\"t\":{},\"s\":{seq},\"p\":\"", now_us());
    let pad = size.saturating_sub(head.len() + 2);
    let mut data = String::with_capacity(head.len() + pad + 2);
    data.push_str(&head);
    data.extend(std::iter::repeat_n('x', pad));
    data.push_str("\"}");
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_presence_count_is_not_a_stamp() {
        let roster = r#"{"event":"pusher_internal:subscription_succeeded","channel":"presence-a","data":"{\"presence\":{\"ids\":[\"1\"],\"hash\":{\"1\":null},\"count\":1}}"}"#;
        assert_eq!(stamp(roster), None);
    }

    #[test]
    fn stamps_are_found_in_both_encodings() {
        let d = stamped_data(7, 64);
        assert!(d.len() >= 64 - 1 && d.len() <= 66, "{d}");
        let t = stamp(&d).unwrap();
        let string_form = serde_json::json!({"event":"e","channel":"c","data": d}).to_string();
        assert_eq!(stamp(&string_form), Some(t));
        let object_form = format!(r#"{{"event":"e","channel":"c","data":{d}}}"#);
        assert_eq!(stamp(&object_form), Some(t));
        assert_eq!(stamp(r#"{"event":"pusher:pong","data":"{}"}"#), None);
    }

    #[test]
    fn metric_sums_add_every_label_set_and_nothing_else() {
        let text = "# HELP herald_connections Open WebSocket connections\n\
                    # TYPE herald_connections gauge\n\
                    herald_connections{app_id=\"a\"} 3\n\
                    herald_connections{app_id=\"b {x}\"} 4 1700000000000\n\
                    herald_connections_total{app_id=\"a\"} 99\n\
                    herald_open_sockets 7\n";
        assert_eq!(metric_sum(text, "herald_connections"), Some(7.0));
        assert_eq!(metric_sum(text, "herald_open_sockets"), Some(7.0));
        assert_eq!(metric_sum(text, "herald_channels"), None);

        let mut track = GaugeTrack::new(&["herald_connections", "herald_channels"], text);
        assert!(!track.at_zero());
        let line = track.observe("herald_connections{app_id=\"a\"} 0\n");
        assert_eq!(line, "  connections 0  channels 0");
        assert!(track.at_zero());
        let mut r = Report::new("churn", "x".into());
        track.report(&mut r);
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["metrics"]["herald_connections_start"], 7);
        assert_eq!(v["metrics"]["herald_connections_peak"], 7);
        assert_eq!(v["metrics"]["herald_connections_end"], 0);
        assert_eq!(track.latest(), "herald_connections=0 herald_channels=0");
    }

    #[test]
    fn rss_series_reports_baseline_peak_and_final() {
        let mut none = RssSeries::new(None);
        assert_eq!(none.sample(), None);
        let mut own = RssSeries::new(Some(std::process::id()));
        own.sample().unwrap();
        own.sample().unwrap();
        let mut r = Report::new("churn", "x".into());
        own.report(&mut r);
        let v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert!(
            v["metrics"]["server_rss_peak_kb"].as_f64().unwrap()
                >= v["metrics"]["server_rss_final_kb"].as_f64().unwrap()
        );
        assert_eq!(v["details"]["rss_samples"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn dates_are_utc_civil_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(utc_date(951_825_600), "2000-02-29 12:00 UTC");
        let m = machine();
        assert!(m["cores"].as_u64().unwrap() >= 1, "{m}");
    }

    #[test]
    fn own_process_is_readable() {
        assert!(rss_kb(None).unwrap() > 0);
        assert!(cpu_us(None).is_some());
    }
}
