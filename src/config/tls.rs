//! `[server.tls]`: TLS on the main listener (wss:// and https:// on one port).
//! Must not read the files: `tls/` loads and reloads them; this is data and its rules.

use serde::{Deserialize, Serialize};

/// TLS on the main port, on when `cert_file` is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, the server's certificate first; empty: TLS off.
    pub cert_file: String,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1), unencrypted.
    pub key_file: String,
    /// Seconds between checks of both files for a new certificate, which new handshakes then
    /// use (open sockets keep theirs); 0: load once at startup.
    pub reload_interval_secs: u64,
    /// Milliseconds a client has to finish its TLS handshake.
    pub handshake_timeout_ms: u64,
    /// TLS handshakes this node runs at once; a connection arriving above it is closed at once.
    pub max_handshakes: usize,
    /// Oldest TLS version accepted: `"1.2"` or `"1.3"`.
    pub min_version: String,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: String::new(),
            key_file: String::new(),
            reload_interval_secs: 10,
            handshake_timeout_ms: 10_000,
            max_handshakes: 1_024,
            min_version: "1.2".into(),
        }
    }
}

impl TlsConfig {
    /// Whether the main listener speaks TLS.
    pub fn enabled(&self) -> bool {
        !self.cert_file.is_empty()
    }
}

/// Broken rules, as (key, message).
pub(super) fn check(cfg: &TlsConfig) -> Vec<(&'static str, String)> {
    let TlsConfig { cert_file, key_file, reload_interval_secs, handshake_timeout_ms, max_handshakes, min_version } =
        cfg;
    let mut issues = Vec::new();
    let mut within = |key: &'static str, v: u64, min: u64, max: u64| {
        if !(min..=max).contains(&v) {
            issues.push((key, format!("must be between {min} and {max} (is {v})")));
        }
    };
    within("server.tls.reload_interval_secs", *reload_interval_secs, 0, 86_400);
    within("server.tls.handshake_timeout_ms", *handshake_timeout_ms, 100, 120_000);
    within("server.tls.max_handshakes", *max_handshakes as u64, 1, 1_000_000);
    if cert_file.is_empty() != key_file.is_empty() {
        let (key, other) = if cert_file.is_empty() {
            ("server.tls.cert_file", "key_file")
        } else {
            ("server.tls.key_file", "cert_file")
        };
        issues.push((key, format!("must be set together with server.tls.{other}")));
    }
    if !matches!(min_version.as_str(), "1.2" | "1.3") {
        issues.push(("server.tls.min_version", format!("must be \"1.2\" or \"1.3\" (is {min_version:?})")));
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_valid() {
        let cfg = TlsConfig::default();
        assert!(!cfg.enabled());
        assert!(check(&cfg).is_empty());
    }

    #[test]
    fn files_go_together_and_versions_are_known() {
        let half = TlsConfig { cert_file: "c.pem".into(), ..TlsConfig::default() };
        assert_eq!(check(&half)[0].0, "server.tls.key_file");
        let other = TlsConfig { key_file: "k.pem".into(), ..TlsConfig::default() };
        assert_eq!(check(&other)[0].0, "server.tls.cert_file");
        let old = TlsConfig { min_version: "1.1".into(), ..TlsConfig::default() };
        assert_eq!(check(&old)[0].0, "server.tls.min_version");
        let both = TlsConfig {
            cert_file: "c".into(),
            key_file: "k".into(),
            min_version: "1.3".into(),
            ..TlsConfig::default()
        };
        assert!(both.enabled() && check(&both).is_empty());
    }
}
