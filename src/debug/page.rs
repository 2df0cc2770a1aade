//! The console page: plain HTML and JavaScript, no build step, served by Herald itself.
//! Must hold no data: everything it shows it fetches with the admin token the user types.

/// The page.
pub(super) const HTML: &str = include_str!("console.html");

/// Its script (a file of its own, so the policy below needs no inline script).
pub(super) const SCRIPT: &str = include_str!("console.js");

/// Only this page's own script and requests; inline styles only.
pub(super) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
                              connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                              frame-ancestors 'none'";
