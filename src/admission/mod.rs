//! Node-wide admission of new sockets: how many may be open at once, how fast new ones may
//! arrive (a token bucket, so a reconnect storm is refused cheaply instead of accepted all at
//! once), and optionally how many one client address may hold.
//! Must not know the Pusher protocol: transports ask for a `Permit` before the upgrade and
//! answer a refusal as HTTP (503 or 429), before any handshake work is done.

mod client_ip;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use ipnet::IpNet;
use parking_lot::Mutex;
use prometheus::IntGauge;
use tokio::time::Instant;

pub use client_ip::client_ip;

use crate::rate_limit::TokenBucket;

/// The node's admission limits (0 turns a limit off).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionSettings {
    /// Sockets open at once, every state included.
    pub max_connections: usize,
    /// New sockets per second on average.
    pub per_second: u32,
    /// New sockets at once, above that rate.
    pub burst: u32,
    /// Sockets one client address may hold.
    pub max_per_ip: usize,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpNet>,
}

/// Why a new socket was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `max_connections` sockets are open.
    #[error("this node is at its connection limit")]
    NodeFull,
    /// New sockets arrive faster than the node admits them.
    #[error("too many new connections; retry later")]
    TooFast,
    /// The client address holds `max_per_ip` sockets.
    #[error("too many connections from this address")]
    AddressFull,
}

/// Admission control shared by every worker. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Admission {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: AdmissionSettings,
    open: AtomicUsize,
    rate: Option<Mutex<TokenBucket>>,
    per_ip: DashMap<IpAddr, usize>,
    gauge: IntGauge,
}

/// One admitted socket: its place is given back when the permit is dropped, however the socket
/// ends (closed, refused later on, or its task cancelled).
#[derive(Debug)]
pub struct Permit {
    inner: Arc<Inner>,
    /// The address counted against `max_per_ip`, when that limit is on.
    ip: Option<IpAddr>,
}

impl Admission {
    /// Admission with `settings`; `gauge` follows the number of open sockets.
    pub fn new(settings: AdmissionSettings, gauge: IntGauge, now: Instant) -> Self {
        let rate = (settings.per_second > 0)
            .then(|| Mutex::new(TokenBucket::with_burst(settings.per_second as f32, settings.burst as f32, now)));
        Self { inner: Arc::new(Inner { settings, open: AtomicUsize::new(0), rate, per_ip: DashMap::new(), gauge }) }
    }

    /// The node's limits.
    pub fn settings(&self) -> &AdmissionSettings {
        &self.inner.settings
    }

    /// Admits one new socket from `ip` at `now`, or says why not. Cheap either way: refusals
    /// cost a few atomic operations.
    ///
    /// # Errors
    /// [`Refused`] when a limit is reached; nothing is held then.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<Permit, Refused> {
        let inner = &self.inner;
        let max = inner.settings.max_connections;
        let before = inner.open.fetch_add(1, Ordering::AcqRel);
        let refused = if max != 0 && before >= max {
            Some(Refused::NodeFull)
        } else if inner.rate.as_ref().is_some_and(|bucket| !bucket.lock().try_take(now)) {
            Some(Refused::TooFast)
        } else {
            None
        };
        if let Some(why) = refused {
            inner.open.fetch_sub(1, Ordering::AcqRel);
            return Err(why);
        }
        let mut permit = Permit { inner: inner.clone(), ip: None };
        inner.gauge.inc();
        let per_ip = inner.settings.max_per_ip;
        if per_ip != 0 {
            let mut held = inner.per_ip.entry(ip).or_insert(0);
            if *held >= per_ip {
                drop(held);
                inner.per_ip.remove_if(&ip, |_, n| *n == 0);
                // Dropping the permit gives its place back.
                return Err(Refused::AddressFull);
            }
            *held += 1;
            permit.ip = Some(ip);
        }
        Ok(permit)
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let inner = &self.inner;
        inner.open.fetch_sub(1, Ordering::AcqRel);
        inner.gauge.dec();
        let Some(ip) = self.ip else {
            return;
        };
        if let Entry::Occupied(mut held) = inner.per_ip.entry(ip) {
            *held.get_mut() -= 1;
            if *held.get() == 0 {
                held.remove();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Duration;

    fn admission(max: usize, per_second: u32, burst: u32, per_ip: usize) -> Admission {
        let settings = AdmissionSettings {
            max_connections: max,
            per_second,
            burst,
            max_per_ip: per_ip,
            trusted_proxies: Vec::new(),
        };
        Admission::new(settings, IntGauge::new("t", "t").unwrap(), Instant::now())
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn node_limit_counts_open_permits() {
        let a = admission(2, 0, 0, 0);
        let now = Instant::now();
        let (p1, p2) = (a.admit(A, now).unwrap(), a.admit(B, now).unwrap());
        assert_eq!(a.admit(A, now).unwrap_err(), Refused::NodeFull);
        assert_eq!(a.open(), 2, "a refusal holds nothing");
        drop(p1);
        let p3 = a.admit(A, now).unwrap();
        assert_eq!(a.inner.gauge.get(), 2);
        drop((p2, p3));
        assert_eq!((a.open(), a.inner.gauge.get()), (0, 0));
    }

    #[test]
    fn new_connections_are_rate_limited() {
        let a = admission(0, 10, 20, 0);
        let now = Instant::now();
        let held: Vec<Permit> = (0..20).map(|_| a.admit(A, now).unwrap()).collect();
        assert_eq!(a.admit(A, now).unwrap_err(), Refused::TooFast);
        assert!(a.admit(A, now + Duration::from_millis(100)).is_ok(), "one more per tenth of a second");
        drop(held);
        assert_eq!(a.admit(A, now + Duration::from_millis(100)).unwrap_err(), Refused::TooFast, "a rate, not a count");
    }

    #[test]
    fn per_address_limit() {
        let a = admission(0, 0, 0, 2);
        let now = Instant::now();
        let held: Vec<Permit> = (0..2).map(|_| a.admit(A, now).unwrap()).collect();
        assert_eq!(a.admit(A, now).unwrap_err(), Refused::AddressFull);
        let other = a.admit(B, now).unwrap();
        drop(held);
        drop(other);
        assert!(a.inner.per_ip.is_empty(), "no entry left per address");
        assert_eq!(a.open(), 0);
    }
}
