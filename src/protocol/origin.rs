//! Allowed origins of an app's WebSocket connections: `*`, `scheme://host[:port]`, or
//! `scheme://*.domain[:port]` (any subdomain, not the domain itself).
//! Must not do IO: pure matching of the `Origin` header a browser sent.

/// One allowed origin, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: String,
    /// The host, lowercase; for a wildcard, the part after `*.` (`example.com`).
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

/// Parts of an origin: scheme, host (lowercase), explicit port.
fn split(origin: &str) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = origin.split_once("://")?;
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.') {
        return None;
    }
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return None;
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p.parse::<u16>().ok()?)),
        _ => (rest, None),
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase(), port))
}

/// The port a scheme implies, so `https://a.com` and `https://a.com:443` are one origin.
fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

impl OriginPattern {
    /// Parses one configured pattern; `None` if it is not an origin (a path, a bare host…).
    /// `*` is handled by the caller (it allows everything).
    pub fn parse(pattern: &str) -> Option<Self> {
        let (scheme, host, port) = split(pattern)?;
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => (domain.to_owned(), true),
            Some(_) => return None,
            None if host.contains('*') => return None,
            None => (host, false),
        };
        let port = port.or_else(|| default_port(&scheme));
        Some(Self { scheme, host, wildcard, port })
    }

    /// Whether a browser's `Origin` header value matches.
    pub fn matches(&self, origin: &str) -> bool {
        let Some((scheme, host, port)) = split(origin) else { return false };
        let port = port.or_else(|| default_port(&scheme));
        if scheme != self.scheme || port != self.port {
            return false;
        }
        if self.wildcard {
            host.strip_suffix(&self.host).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        } else {
            host == self.host
        }
    }
}

/// An app's rule for the `Origin` of its WebSocket connections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OriginPolicy {
    /// Empty: any origin.
    allowed: Vec<OriginPattern>,
    any: bool,
    /// Refuse connections that send no `Origin` (non-browser clients).
    require: bool,
}

impl OriginPolicy {
    /// Builds the policy from configured patterns (already validated: invalid ones are
    /// skipped) and whether an `Origin` is required.
    pub fn new(patterns: &[String], require: bool) -> Self {
        let any = patterns.is_empty() || patterns.iter().any(|p| p == "*");
        let allowed = patterns.iter().filter_map(|p| OriginPattern::parse(p)).collect();
        Self { allowed, any, require }
    }

    /// Whether a connection with this `Origin` header (or none) may open.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            None => !self.require,
            Some(_) if self.any => true,
            Some(o) => self.allowed.iter().any(|p| p.matches(o)),
        }
    }
}

/// Whether a configured pattern is valid: `*` or an origin (see [`OriginPattern::parse`]).
pub fn is_valid_pattern(pattern: &str) -> bool {
    pattern == "*" || OriginPattern::parse(pattern).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard_origins() {
        let p = OriginPolicy::new(&["https://app.example.com".into(), "https://*.example.org".into()], false);
        assert!(p.allows(Some("https://app.example.com")));
        assert!(p.allows(Some("https://APP.example.com:443")), "case and default port");
        assert!(!p.allows(Some("http://app.example.com")), "scheme");
        assert!(!p.allows(Some("https://app.example.com:8443")), "port");
        assert!(!p.allows(Some("https://evil-app.example.com")));
        assert!(p.allows(Some("https://a.b.example.org")));
        assert!(!p.allows(Some("https://example.org")), "a wildcard is for subdomains");
        assert!(!p.allows(Some("https://badexample.org")));
        assert!(!p.allows(Some("null")), "opaque origins");
        assert!(p.allows(None), "no Origin: a non-browser client");
        assert!(!OriginPolicy::new(&[], true).allows(None));
        assert!(OriginPolicy::new(&[], false).allows(Some("https://anything")));
        assert!(OriginPolicy::new(&["*".into()], false).allows(Some("http://x")));
    }

    #[test]
    fn patterns_are_checked() {
        for ok in ["*", "http://localhost:8000", "https://*.example.com", "http://127.0.0.1"] {
            assert!(is_valid_pattern(ok), "{ok}");
        }
        for bad in ["example.com", "https://example.com/", "https://*", "https://a.*.com", "https://x:99999", ""] {
            assert!(!is_valid_pattern(bad), "{bad}");
        }
    }
}
