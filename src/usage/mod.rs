//! Per-app usage and the daily message quota: messages (each REST event per channel, each
//! client event) and the peak of concurrent connections, per UTC day, for the whole cluster.
//! Must not touch the cluster per message: each node counts in memory and reports its counts
//! (and its open connections) once per `flush` through the `Usage` seam, which answers with
//! the cluster's totals; a quota is checked against those plus this node's unreported count.
//!
//! How exact: on one node, exact. On a cluster, every node knows the others' messages as of
//! its last report, so a quota may be passed by what the other nodes accepted within one
//! report period (and by what concurrent requests take at the same instant). The peak is the
//! largest sum of the nodes' reports, sampled once per report period: a burst of connections
//! shorter than that may be missed. The connection quota itself is `max_connections`, which
//! is exact across nodes (each connection takes a slot in Redis).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use tokio::task::JoinHandle;
use tokio::time::Duration;

use crate::apps::App;
use crate::cluster::Usage;
use crate::registry::Registry;

/// Today, as days since the Unix epoch (UTC).
pub fn today() -> u32 {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u32::try_from(secs / 86_400).unwrap_or(u32::MAX)
}

/// `YYYY-MM-DD` of a day since the Unix epoch (Howard Hinnant's civil-from-days).
pub fn date(day: u32) -> String {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// One app's counts on this node.
#[derive(Debug, Default)]
struct AppUsage {
    day: AtomicU32,
    /// Counted here, not reported yet.
    pending: AtomicU64,
    /// The cluster's total at the last report (this node's reported messages included).
    messages: AtomicU64,
    peak: AtomicU64,
    /// The app's quota as last seen (apps with one are reported even while idle here).
    quota: AtomicU64,
}

impl AppUsage {
    /// Starts a new day's counts when the day changed (what is pending counts for the new day).
    fn roll(&self, day: u32) {
        if self.day.swap(day, Ordering::AcqRel) != day {
            self.messages.store(0, Ordering::Release);
            self.peak.store(0, Ordering::Release);
        }
    }
}

/// An app's usage today, as this node knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Today {
    /// Days since the Unix epoch.
    pub day: u32,
    /// Messages counted today, cluster-wide (as of the last report, plus this node's since).
    pub messages: u64,
    /// The most concurrent connections seen today, cluster-wide.
    pub peak_connections: u64,
}

/// The usage counters of this node. Cheap to clone.
#[derive(Clone)]
pub struct UsageMeter {
    inner: Arc<Inner>,
}

struct Inner {
    apps: DashMap<String, Arc<AppUsage>>,
    cluster: Arc<dyn Usage>,
    registry: Registry,
}

impl UsageMeter {
    /// Counters reporting through `cluster`; open connections are read from `registry`.
    pub fn new(cluster: Arc<dyn Usage>, registry: Registry) -> Self {
        Self { inner: Arc::new(Inner { apps: DashMap::new(), cluster, registry }) }
    }

    fn entry(&self, app_id: &str) -> Arc<AppUsage> {
        if let Some(u) = self.inner.apps.get(app_id) {
            return u.clone();
        }
        self.inner.apps.entry(app_id.to_owned()).or_default().clone()
    }

    /// Counts `n` messages of `app`, unless they would pass its daily quota: then nothing is
    /// counted and the answer is false.
    pub fn take(&self, app: &App, n: u64) -> bool {
        let u = self.entry(&app.id);
        u.roll(today());
        let quota = app.quota_messages_per_day;
        u.quota.store(quota, Ordering::Relaxed);
        let used = u.messages.load(Ordering::Acquire) + u.pending.load(Ordering::Acquire);
        if quota > 0 && used.saturating_add(n) > quota {
            return false;
        }
        u.pending.fetch_add(n, Ordering::AcqRel);
        true
    }

    /// `app_id`'s usage today, fresh from the cluster (a report of its own first); this
    /// node's view when the cluster does not answer.
    pub async fn today(&self, app_id: &str) -> Today {
        let day = today();
        let u = self.entry(app_id);
        u.roll(day);
        let here = self.inner.registry.namespace(app_id).connection_count() as u64;
        let taken = u.pending.swap(0, Ordering::AcqRel);
        self.send(app_id, &u, day, taken, here).await;
        Today {
            day,
            messages: u.messages.load(Ordering::Acquire) + u.pending.load(Ordering::Acquire),
            peak_connections: u.peak.load(Ordering::Acquire).max(here),
        }
    }

    /// Reports every app with messages or connections on this node once (idle apps cost
    /// nothing, however many a hosted service has).
    pub async fn report(&self) {
        let day = today();
        let mut ids: Vec<String> = self.inner.apps.iter().map(|e| e.key().clone()).collect();
        for (id, ns) in self.inner.registry.namespaces() {
            if ns.connection_count() > 0 && !ids.contains(&id) {
                ids.push(id);
            }
        }
        for id in ids {
            let u = self.entry(&id);
            u.roll(day);
            let connections = self.inner.registry.namespace(&id).connection_count() as u64;
            let taken = u.pending.swap(0, Ordering::AcqRel);
            if taken == 0 && connections == 0 && u.quota.load(Ordering::Relaxed) == 0 {
                // Idle here and without a quota to keep: nothing to report.
                continue;
            }
            self.send(&id, &u, day, taken, connections).await;
        }
    }

    /// One report; on failure the messages are counted again next time (nothing is lost
    /// while the cluster is away).
    async fn send(&self, id: &str, u: &AppUsage, day: u32, taken: u64, connections: u64) -> bool {
        match self.inner.cluster.record(id, day, taken, connections).await {
            Ok(totals) => {
                if u.day.load(Ordering::Acquire) == day {
                    u.messages.fetch_max(totals.messages, Ordering::AcqRel);
                    u.peak.fetch_max(totals.peak_connections, Ordering::AcqRel);
                }
                true
            }
            Err(e) => {
                u.pending.fetch_add(taken, Ordering::AcqRel);
                tracing::debug!(error = %e, app_id = %id, "usage report failed");
                false
            }
        }
    }

    /// Reports every `every` until the task is aborted.
    pub fn start(&self, every: Duration) -> JoinHandle<()> {
        let meter = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                meter.report().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Cluster;
    use crate::config::AppConfig;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(20_788), "2026-12-01");
        assert_eq!(date(11_016), "2000-02-29");
    }

    #[tokio::test]
    async fn a_quota_refuses_what_would_pass_it_and_reports_add_up() {
        let registry = Registry::default();
        let meter = UsageMeter::new(Cluster::local(registry.clone()).usage, registry);
        let app = App::from(&AppConfig { id: "a".into(), quota_messages_per_day: 5, ..AppConfig::default() });
        assert!(meter.take(&app, 3));
        assert!(!meter.take(&app, 3), "3 + 3 > 5: nothing counted");
        assert!(meter.take(&app, 2));
        assert!(!meter.take(&app, 1));
        meter.report().await;
        assert_eq!(meter.today("a").await.messages, 5, "reported, not counted twice");
        let free = App::from(&AppConfig { id: "b".into(), ..AppConfig::default() });
        assert!(meter.take(&free, 1_000_000), "no quota");
    }
}
