//! The certificate in use, and its reload when the files change.
//! Must not hold a socket: handshakes ask [`Current`] for the certificate, nothing else.
//!
//! The files are read again every `reload_interval`; a change (by content, so a Kubernetes
//! secret's symlink swap and a plain overwrite both count) is parsed and checked, and only a
//! certificate whose key matches it replaces the one in use. New handshakes get it; open
//! sockets keep the session they have. A failed load keeps the old certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::metrics::TlsMetrics;

/// The certificate files and what was last loaded from them.
#[derive(Debug)]
pub(super) struct Files {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
}

/// A certificate loaded from the files, with the digest of the bytes it came from.
pub(super) struct Loaded {
    pub(super) key: Arc<CertifiedKey>,
    digest: [u8; 32],
}

impl Files {
    pub(super) fn new(cert: &str, key: &str, provider: Arc<CryptoProvider>) -> Self {
        Self { cert: cert.into(), key: key.into(), provider }
    }

    /// Reads both files; `None` when their bytes are the ones `last` came from.
    ///
    /// # Errors
    /// A file cannot be read, holds no certificate or key, or the key is not the certificate's.
    pub(super) fn load(&self, last: Option<&[u8; 32]>) -> Result<Option<Loaded>, String> {
        let cert_pem = read(&self.cert)?;
        let key_pem = read(&self.key)?;
        let digest: [u8; 32] = Sha256::new().chain_update(&cert_pem).chain_update(&key_pem).finalize().into();
        if last == Some(&digest) {
            return Ok(None);
        }
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", self.cert.display()))?;
        if chain.is_empty() {
            return Err(format!("{}: no PEM certificate in it", self.cert.display()));
        }
        // The error names the file, never its content: the key is a secret.
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|_| format!("{}: no PEM private key in it (PKCS#8, PKCS#1 or SEC1)", self.key.display()))?;
        let key = CertifiedKey::from_der(chain, key, &self.provider)
            .map_err(|e| format!("{} and {} do not go together: {e}", self.cert.display(), self.key.display()))?;
        Ok(Some(Loaded { key: Arc::new(key), digest }))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The certificate every new handshake gets.
#[derive(Debug)]
pub(super) struct Current(RwLock<Arc<CertifiedKey>>);

impl Current {
    pub(super) fn new(key: Arc<CertifiedKey>) -> Self {
        Self(RwLock::new(key))
    }

    fn replace(&self, key: Arc<CertifiedKey>) {
        *self.0.write() = key;
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

/// Checks the files every `every` until `stop`, replacing the certificate when they change.
pub(super) async fn reload(
    files: Files,
    current: Arc<Current>,
    mut digest: [u8; 32],
    every: Duration,
    metrics: TlsMetrics,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match files.load(Some(&digest)) {
            Ok(None) => failing = false,
            Ok(Some(loaded)) => {
                failing = false;
                digest = loaded.digest;
                current.replace(loaded.key);
                metrics.reload("loaded");
                metrics.loaded_at.set(unix_now());
                tracing::info!(cert = %files.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                metrics.reload("failed");
                // Said once per failing spell, not every tick; the metric counts every try.
                if !failing {
                    tracing::warn!(error = %e, "TLS certificate not reloaded; the previous one stays in use");
                }
                failing = true;
            }
        }
    }
}

/// The first load, at startup: a failure stops the server from starting.
///
/// # Errors
/// As [`Files::load`].
pub(super) fn first(files: &Files, metrics: &TlsMetrics) -> Result<(Arc<CertifiedKey>, [u8; 32]), String> {
    let loaded = files.load(None)?.expect("a first load always loads");
    metrics.reload("loaded");
    metrics.loaded_at.set(unix_now());
    Ok((loaded.key, loaded.digest))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
