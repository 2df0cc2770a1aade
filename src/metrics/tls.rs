//! TLS on the main listener: handshakes and certificate reloads, by outcome.
//! Must not know rustls: `tls/` counts, this only holds the handles.

use prometheus::{IntCounterVec, IntGauge, Opts, Registry};

/// Handles for `tls/`. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TlsMetrics {
    handshakes: IntCounterVec,
    reloads: IntCounterVec,
    /// Unix time (seconds) the certificate in use was loaded.
    pub loaded_at: IntGauge,
}

impl TlsMetrics {
    /// Creates the handles and registers them in `r`.
    pub(super) fn register(r: &Registry) -> Self {
        // unwrap: static, valid names and help; each registered once.
        let handshakes = IntCounterVec::new(
            Opts::new(
                "herald_tls_handshakes_total",
                "TLS handshakes on the main port by outcome (ok, failed, timeout, busy)",
            ),
            &["outcome"],
        )
        .unwrap();
        let reloads = IntCounterVec::new(
            Opts::new(
                "herald_tls_certificate_reloads_total",
                "Certificate loads by outcome (loaded, failed: the previous certificate stays in use)",
            ),
            &["outcome"],
        )
        .unwrap();
        let loaded_at =
            IntGauge::new("herald_tls_certificate_loaded_timestamp_seconds", "When the certificate in use was loaded")
                .unwrap();
        r.register(Box::new(handshakes.clone())).unwrap();
        r.register(Box::new(reloads.clone())).unwrap();
        r.register(Box::new(loaded_at.clone())).unwrap();
        Self { handshakes, reloads, loaded_at }
    }

    /// Counts one handshake: `ok`, `failed`, `timeout` or `busy`.
    pub fn handshake(&self, outcome: &'static str) {
        self.handshakes.with_label_values(&[outcome]).inc();
    }

    /// Counts one certificate load: `loaded` or `failed`.
    pub fn reload(&self, outcome: &'static str) {
        self.reloads.with_label_values(&[outcome]).inc();
    }
}
