//! The cluster's metrics: bus health and traffic, node leases, reaps and fences.
//! Must not know about Redis: the drivers count, this only holds the handles.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Handles for the cluster drivers. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ClusterMetrics {
    /// 1 while the bus and the shared state are reachable (always 1 on the local driver).
    pub bus_up: IntGauge,
    /// Bus messages this node published.
    pub published: IntCounter,
    /// Bus messages this node received.
    pub received: IntCounter,
    /// Bus messages that could not be decoded (dropped).
    pub malformed: IntCounter,
    /// Bus channels this node is subscribed to (channels and users it has sockets for).
    pub subscriptions: IntGauge,
    /// Failed cluster operations by operation (bounded label).
    failures: IntCounterVec,
    /// Times the node registered its local state again after the bus came back.
    pub resyncs: IntCounter,
    /// Live nodes, as this node last saw them.
    pub nodes: IntGauge,
    /// Dead nodes whose state this node removed.
    pub reaped: IntCounter,
    /// Times this node lost its lease and asked its sockets to reconnect.
    pub fenced: IntCounter,
}

/// What failed, as a bounded label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterOp {
    /// A publish (or a queued one was refused because the bus queue was full).
    Publish,
    /// A state script or query.
    State,
    /// A bus (un)subscription.
    Subscribe,
    /// A lease renewal.
    Heartbeat,
    /// A reap of a dead node.
    Reap,
}

impl ClusterOp {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::State => "state",
            Self::Subscribe => "subscribe",
            Self::Heartbeat => "heartbeat",
            Self::Reap => "reap",
        }
    }
}

impl ClusterMetrics {
    /// Creates the handles and registers them in `r`.
    pub(super) fn register(r: &Registry) -> Self {
        // unwrap (every metric): static, valid names, each registered once.
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).unwrap();
            r.register(Box::new(g.clone())).unwrap();
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).unwrap();
            r.register(Box::new(c.clone())).unwrap();
            c
        };
        let failures =
            IntCounterVec::new(Opts::new("herald_cluster_failures_total", "Failed cluster operations"), &["operation"])
                .unwrap();
        r.register(Box::new(failures.clone())).unwrap();
        let m = Self {
            bus_up: gauge("herald_bus_up", "1 while the cluster bus and state are reachable"),
            published: counter("herald_bus_published_total", "Bus messages published by this node"),
            received: counter("herald_bus_received_total", "Bus messages received by this node"),
            malformed: counter("herald_bus_malformed_total", "Bus messages that could not be decoded"),
            subscriptions: gauge("herald_bus_subscriptions", "Bus channels this node is subscribed to"),
            failures,
            resyncs: counter("herald_cluster_resyncs_total", "Local state registered again after the bus returned"),
            nodes: gauge("herald_cluster_nodes", "Live nodes as last seen by this node"),
            reaped: counter("herald_cluster_reaped_nodes_total", "Dead nodes whose state this node removed"),
            fenced: counter("herald_cluster_fenced_total", "Times this node lost its lease and closed its sockets"),
        };
        m.bus_up.set(1);
        m
    }

    /// Counts a failed operation.
    pub fn failed(&self, op: ClusterOp) {
        self.failures.with_label_values(&[op.as_str()]).inc();
    }
}
