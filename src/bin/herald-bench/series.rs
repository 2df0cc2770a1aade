//! Series for the charts of a report: a latency histogram as log-spaced buckets, and a count's
//! rate and the server's RSS sampled over the measured phase. Bounded in size whatever the
//! run's length. Must not talk to the server under test (the RSS comes from `/proc`).

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::report::Report;
use crate::stats::RssSeries;

/// Buckets per decade of a latency histogram: fine enough to show a distribution's shape, and
/// at most 78 buckets over the histograms' whole range (1 µs to 60 s).
pub(crate) const BUCKETS_PER_DECADE: u32 = 10;

/// Samples kept per series at most: a long run samples less often than every second.
const MAX_SAMPLES: f64 = 300.0;

/// The upper bound of bucket `i` (`10^(i/per_decade)`).
pub(crate) fn bucket_upper(i: usize, per_decade: u32) -> f64 {
    10f64.powf(i as f64 / f64::from(per_decade))
}

/// The bucket of `v`: the smallest `i` with `v <= 10^(i/per_decade)`.
fn bucket_index(v: u64, per_decade: u32) -> usize {
    let v = v.max(1) as f64;
    let mut i = (v.log10() * f64::from(per_decade)).ceil().max(0.0) as usize;
    // The float estimate can be one off right at an edge.
    while i > 0 && bucket_upper(i - 1, per_decade) >= v {
        i -= 1;
    }
    while bucket_upper(i, per_decade) < v {
        i += 1;
    }
    i
}

/// Counts `(value, count)` pairs into log-spaced buckets: bucket `i` holds the values in
/// `(10^((i-1)/per_decade), 10^(i/per_decade)]`. Returns `(upper bound, count)` from the first
/// non-empty bucket to the last, the empty ones between them included.
pub(crate) fn log_buckets(values: impl Iterator<Item = (u64, u64)>, per_decade: u32) -> Vec<(f64, u64)> {
    let mut counts: Vec<u64> = Vec::new();
    for (v, n) in values.filter(|&(_, n)| n > 0) {
        let i = bucket_index(v, per_decade);
        if counts.len() <= i {
            counts.resize(i + 1, 0);
        }
        counts[i] += n;
    }
    let Some(first) = counts.iter().position(|&n| n > 0) else { return Vec::new() };
    counts.iter().enumerate().skip(first).map(|(i, &n)| (bucket_upper(i, per_decade), n)).collect()
}

/// A latency histogram (µs) as `[[upper_ms, count], …]`, [`BUCKETS_PER_DECADE`] per decade.
pub(crate) fn latency_buckets(h: &Histogram<u64>) -> Value {
    let values = h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value()));
    let buckets = log_buckets(values, BUCKETS_PER_DECADE);
    Value::Array(buckets.into_iter().map(|(upper_us, n)| json!([round_sig(upper_us / 1000.0, 4), n])).collect())
}

/// `x` to `digits` significant digits.
pub(crate) fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(digits - 1 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// How often a phase of `duration` seconds is sampled: every second, less often past
/// [`MAX_SAMPLES`] seconds.
fn sample_every(duration: f64) -> Duration {
    Duration::from_secs_f64((duration / MAX_SAMPLES).max(1.0))
}

/// A running count's rate per interval: `(secs since the start, count per second over the
/// interval before)`. Fed times and counts; never reads a clock.
#[derive(Default)]
struct Rates {
    last: (f64, u64),
    points: Vec<(f64, f64)>,
}

impl Rates {
    /// Starts at count `n` at time 0.
    fn new(n: u64) -> Self {
        Self { last: (0.0, n), points: Vec::new() }
    }

    /// The count was `n` at `t` seconds.
    fn take(&mut self, t: f64, n: u64) {
        let per_sec = n.saturating_sub(self.last.1) as f64 / (t - self.last.0).max(1e-6);
        self.points.push((t, per_sec));
        self.last = (t, n);
    }

    /// The last, partial interval ending at `t`: kept only when at least half an interval
    /// long, so that a short tail does not show as a spike or a dip.
    fn close(&mut self, t: f64, n: u64, every: f64) {
        if t - self.last.0 >= every / 2.0 {
            self.take(t, n);
        }
    }
}

/// What the sampling task collected.
struct Samples {
    rates: Rates,
    rss: RssSeries,
}

/// Samples a running count (deliveries, messages, requests) and the server's RSS during a
/// measured phase, from [`Sampler::start`] to [`Sampler::finish`].
pub(crate) struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<Samples>,
}

impl Sampler {
    /// Starts sampling now: `count()` (a total that only grows) and, given `server_pid`, the
    /// server's RSS, every second of a phase planned to last `duration` seconds.
    pub(crate) fn start(duration: f64, server_pid: Option<u32>, count: impl Fn() -> u64 + Send + 'static) -> Self {
        let stop = CancellationToken::new();
        let every = sample_every(duration);
        let cancelled = stop.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut rss = RssSeries::new(server_pid);
            rss.sample();
            let mut rates = Rates::new(count());
            let mut next = started + every;
            loop {
                tokio::select! {
                    _ = cancelled.cancelled() => break,
                    _ = sleep_until(next) => {}
                }
                next += every;
                rates.take(started.elapsed().as_secs_f64(), count());
                rss.sample();
            }
            rates.close(started.elapsed().as_secs_f64(), count(), every.as_secs_f64());
            rss.sample();
            Samples { rates, rss }
        });
        Self { stop, task }
    }

    /// Stops sampling and adds the detail `{unit}_per_sec_samples` (`[[secs, per_sec], …]`)
    /// and, given a server pid, the RSS series ([`RssSeries::report`]) to `r`.
    pub(crate) async fn finish(self, r: &mut Report, unit: &str) {
        self.stop.cancel();
        let Ok(samples) = self.task.await else { return };
        let rates: Vec<Value> = samples
            .rates
            .points
            .iter()
            .map(|&(t, v)| json!([(t * 10.0).round() / 10.0, (v * 10.0).round() / 10.0]))
            .collect();
        r.detail(&format!("{unit}_per_sec_samples"), rates);
        samples.rss.report(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log_spaced_and_trimmed() {
        // 10 per decade: 1 µs is bucket 0, 10 µs bucket 10, 11 µs bucket 11 (upper 12.59).
        let b = log_buckets([(10, 3), (11, 2), (1000, 1), (12, 0)].into_iter(), 10);
        assert_eq!(b.len(), 21, "from 10 µs to 1 ms: {b:?}");
        assert!((b[0].0 - 10.0).abs() < 1e-9 && b[0].1 == 3, "{b:?}");
        assert!((b[1].0 - 12.589).abs() < 1e-3 && b[1].1 == 2, "{b:?}");
        assert!(b[2..20].iter().all(|&(_, n)| n == 0), "{b:?}");
        assert!((b[20].0 - 1000.0).abs() < 1e-6 && b[20].1 == 1, "{b:?}");
        assert_eq!(b.iter().map(|&(_, n)| n).sum::<u64>(), 6);
        assert!(log_buckets(std::iter::empty(), 10).is_empty());
    }

    #[test]
    fn every_value_lands_at_or_below_its_upper_bound() {
        for v in [1, 2, 3, 9, 10, 99, 100, 101, 1000, 12_345, 59_999_999] {
            let i = bucket_index(v, BUCKETS_PER_DECADE);
            assert!(v as f64 <= bucket_upper(i, BUCKETS_PER_DECADE), "{v}");
            assert!(i == 0 || v as f64 > bucket_upper(i - 1, BUCKETS_PER_DECADE), "{v}");
        }
    }

    #[test]
    fn histogram_buckets_are_in_ms_and_count_every_sample() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for us in [150, 160, 900, 2_500, 2_600, 40_000] {
            h.record(us).unwrap();
        }
        let v = latency_buckets(&h);
        let rows = v.as_array().unwrap();
        assert!(rows.len() <= 78 && rows.len() > 20, "{v}");
        assert_eq!(rows.iter().map(|r| r[1].as_u64().unwrap()).sum::<u64>(), 6);
        assert!(rows[0][0].as_f64().unwrap() >= 0.15 && rows[0][0].as_f64().unwrap() < 0.2, "{v}");
        assert!(rows.last().unwrap()[0].as_f64().unwrap() >= 40.0, "{v}");
    }

    #[test]
    fn significant_digits() {
        assert_eq!(round_sig(0.0012589, 4), 0.001259);
        assert_eq!(round_sig(12589.25, 4), 12590.0);
        assert_eq!(round_sig(0.0, 4), 0.0);
    }

    #[test]
    fn long_phases_sample_less_often() {
        assert_eq!(sample_every(10.0), Duration::from_secs(1));
        assert_eq!(sample_every(3600.0), Duration::from_secs(12));
    }

    #[test]
    fn rates_are_per_second_over_each_interval_and_short_tails_are_dropped() {
        let mut r = Rates::new(10);
        r.take(1.0, 60);
        r.take(2.0, 160);
        r.take(2.5, 210);
        r.close(2.9, 500, 1.0);
        assert_eq!(r.points, [(1.0, 50.0), (2.0, 100.0), (2.5, 100.0)]);
        r.close(3.0, 260, 1.0);
        assert_eq!(r.points.last(), Some(&(3.0, 100.0)));
    }

    #[tokio::test]
    async fn a_sampler_stopped_at_once_reports_an_empty_series() {
        let sampler = Sampler::start(10.0, None, || 0);
        let mut r = Report::new("fanout", "x".into());
        sampler.finish(&mut r, "deliveries").await;
        let v: Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(v["details"]["deliveries_per_sec_samples"], json!([]), "{v}");
        assert!(v["details"].get("rss_samples").is_none(), "no pid, no RSS: {v}");
    }
}
