//! Who a connection comes from: the TCP peer, or, behind a trusted proxy, the address the
//! proxy reports in `X-Forwarded-For`.
//! Must not trust a forwarded address from a peer that is not a configured proxy.

use std::net::IpAddr;

use ipnet::IpNet;

/// The client's address: `peer` unless `peer` is one of `trusted`, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy (each proxy appends
/// the address it received from; entries left of an untrusted one could be forged).
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(list) = forwarded_for else {
        return peer;
    };
    let mut last = peer;
    for hop in list.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // A malformed entry ends what can be believed.
            return last;
        };
        if !is_trusted(&ip) {
            return ip;
        }
        last = ip;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "127.0.0.1/32".parse().unwrap()];
        assert_eq!(client_ip(ip("203.0.113.9"), Some("1.2.3.4"), &trusted), ip("203.0.113.9"), "untrusted peer");
        assert_eq!(client_ip(ip("10.1.1.1"), None, &trusted), ip("10.1.1.1"));
        assert_eq!(client_ip(ip("10.1.1.1"), Some("198.51.100.7"), &trusted), ip("198.51.100.7"));
        assert_eq!(
            client_ip(ip("10.1.1.1"), Some("6.6.6.6, 198.51.100.7, 10.2.2.2"), &trusted),
            ip("198.51.100.7"),
            "the right-most untrusted hop; a forged left part is ignored"
        );
        assert_eq!(client_ip(ip("10.1.1.1"), Some("10.3.3.3, 10.2.2.2"), &trusted), ip("10.3.3.3"));
        assert_eq!(client_ip(ip("10.1.1.1"), Some("junk, 10.2.2.2"), &trusted), ip("10.2.2.2"));
        assert_eq!(client_ip(ip("127.0.0.1"), Some("2001:db8::1"), &trusted), ip("2001:db8::1"));
        assert_eq!(client_ip(ip("10.1.1.1"), Some("198.51.100.7"), &[]), ip("10.1.1.1"), "no proxies configured");
    }
}
