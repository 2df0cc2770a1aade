//! TLS on the main listener (`[server.tls]`): rustls, no OpenSSL.
//! Must not know HTTP: this turns accepted TCP streams into TLS streams, nothing else.
//!
//! Each accepted connection gets a handshake within `handshake_timeout`, among at most
//! `max_handshakes` at once on the node (a connection above that is closed at once: a
//! handshake is the expensive part of a connect, and a flood of them must not starve the
//! sockets already open). ALPN offers `http/1.1` only: WebSocket upgrades are HTTP/1.1.
//! The certificate comes from [`certs::Current`], which a task reloads when the files change.

mod certs;
mod socket;

pub use socket::TlsSocket;

use std::io;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::version::{TLS12, TLS13};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Duration;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::config::TlsConfig;
use crate::metrics::TlsMetrics;

/// The main listener's TLS: cheap to clone (one per worker).
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    handshakes: Arc<Semaphore>,
    timeout: Duration,
    metrics: TlsMetrics,
}

impl Tls {
    /// Loads the certificate and starts its reload task (stopped by `stop`).
    ///
    /// # Errors
    /// The files cannot be read or do not hold a certificate and its key.
    pub fn start(cfg: &TlsConfig, metrics: TlsMetrics, stop: CancellationToken) -> io::Result<Self> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let files = certs::Files::new(&cfg.cert_file, &cfg.key_file, provider.clone());
        let (key, digest) = certs::first(&files, &metrics).map_err(io::Error::other)?;
        let current = Arc::new(certs::Current::new(key));
        let versions: &[&rustls::SupportedProtocolVersion] =
            if cfg.min_version == "1.3" { &[&TLS13] } else { &[&TLS13, &TLS12] };
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Tickets let a reconnecting client resume without a full handshake.
        config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(io::Error::other)?;
        if cfg.reload_interval_secs > 0 {
            let every = Duration::from_secs(cfg.reload_interval_secs);
            tokio::spawn(certs::reload(files, current, digest, every, metrics.clone(), stop));
        }
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshakes: Arc::new(Semaphore::new(cfg.max_handshakes)),
            timeout: Duration::from_millis(cfg.handshake_timeout_ms),
            metrics,
        })
    }

    /// The TLS stream of an accepted connection, or `None` (counted) if its handshake failed,
    /// timed out or found the node at `max_handshakes`.
    pub async fn accept(&self, tcp: TcpStream) -> Option<TlsStream<TcpStream>> {
        let Ok(_permit) = self.handshakes.try_acquire() else {
            self.metrics.handshake("busy");
            return None;
        };
        match tokio::time::timeout(self.timeout, self.acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => {
                self.metrics.handshake("ok");
                Some(stream)
            }
            Ok(Err(e)) => {
                self.metrics.handshake("failed");
                tracing::debug!(error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                self.metrics.handshake("timeout");
                None
            }
        }
    }
}
