//! The signed-request check every REST route runs first (pusher-protocol.md §7): find the app,
//! check key, version, timestamp, `body_md5` and the HMAC over the canonical string.
//! Must not interpret the body or non-auth parameters (handlers do), nor log or echo signatures.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::HttpRequest;
use actix_web::web::{self, Bytes};

use super::error::{ApiError, AuthError, BadRequest};
use super::{ApiDeps, body};
use crate::apps::App;
use crate::protocol::signature;

/// The decoded query: keys lower-cased, values percent-decoded, each key at most once.
#[derive(Debug)]
pub(super) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes a raw query string (`+` is a space, as in `application/x-www-form-urlencoded`).
    ///
    /// # Errors
    /// [`BadRequest::DuplicateParam`] when a key appears twice: the canonical string would be
    /// ambiguous and no SDK sends one.
    pub(super) fn parse(raw: &str) -> Result<Self, BadRequest> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut seen = HashSet::new();
        for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
            let key = k.to_ascii_lowercase();
            if !seen.insert(key.clone()) {
                return Err(BadRequest::DuplicateParam(key));
            }
            pairs.push((key, v.into_owned()));
        }
        Ok(Self { pairs })
    }

    /// The value of `key` (lower-case).
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A request that passed the check: its app, decoded query and raw body.
#[derive(Debug)]
pub(super) struct Signed {
    /// The app named in the path, enabled.
    pub(super) app: Arc<App>,
    /// The decoded query.
    pub(super) query: Query,
    /// The body exactly as received (what `body_md5` covers).
    pub(super) body: Bytes,
}

/// Runs the whole check: app lookup (404/403), credentials (401) before the body is read, then
/// the body (413/408) and its MD5 and the signature (401).
///
/// # Errors
/// The first check that fails, as an [`ApiError`].
pub(super) async fn authenticate(
    req: &HttpRequest,
    payload: &mut web::Payload,
    deps: &ApiDeps,
) -> Result<Signed, ApiError> {
    let app_id = req.match_info().get("app_id").unwrap_or_default();
    let app = deps.apps.find_by_id(app_id).await?.ok_or(ApiError::AppNotFound)?;
    if !app.enabled {
        return Err(ApiError::AppDisabled);
    }
    let settings = &deps.settings;
    let query = Query::parse(req.query_string())?;
    check_credentials(&app, &query, unix_now(), settings.timestamp_window_secs)?;
    let body = body::read(req, payload, settings.max_body_bytes, settings.body_timeout).await?;
    let paths = signed_paths(req.path(), &settings.path_prefix);
    check_signature(&app, req.method().as_str(), &paths, &query, &body)?;
    Ok(Signed { app, query, body })
}

/// Checks everything that does not need the body: `auth_key`, `auth_version`,
/// `auth_timestamp` within `window_secs` of `now_unix`, and that a signature is present.
///
/// # Errors
/// The first [`AuthError`] found.
pub(super) fn check_credentials(app: &App, query: &Query, now_unix: u64, window_secs: u64) -> Result<(), AuthError> {
    match query.get("auth_key") {
        None => return Err(AuthError::MissingKey),
        Some(key) if key != app.key => return Err(AuthError::WrongKey),
        Some(_) => {}
    }
    if query.get("auth_version").is_some_and(|v| v != "1.0") {
        return Err(AuthError::UnsupportedVersion);
    }
    let ts: u64 = query
        .get("auth_timestamp")
        .ok_or(AuthError::MissingTimestamp)?
        .parse()
        .map_err(|_| AuthError::InvalidTimestamp)?;
    if ts.abs_diff(now_unix) > window_secs {
        return Err(AuthError::StaleTimestamp { window_secs });
    }
    if query.get("auth_signature").is_none() {
        return Err(AuthError::MissingSignature);
    }
    Ok(())
}

/// Checks `body_md5` against `body`, then the HMAC of `METHOD\nPATH\nparams` for each candidate
/// path (the signature is valid if any matches), compared in constant time.
///
/// # Errors
/// [`AuthError::MissingBodyMd5`] / [`AuthError::BodyMd5Mismatch`] / [`AuthError::BadSignature`].
pub(super) fn check_signature(
    app: &App,
    method: &str,
    paths: &[String],
    query: &Query,
    body: &[u8],
) -> Result<(), AuthError> {
    match query.get("body_md5") {
        None if body.is_empty() => {}
        None => return Err(AuthError::MissingBodyMd5),
        Some(md5) if !md5.eq_ignore_ascii_case(&signature::body_md5(body)) => {
            return Err(AuthError::BodyMd5Mismatch);
        }
        Some(_) => {}
    }
    let given = query.get("auth_signature").ok_or(AuthError::MissingSignature)?;
    let secret = app.secret.expose();
    let valid =
        paths.iter().any(|path| signature::verify(secret, &signature::rest_string(method, path, &query.pairs), given));
    if valid { Ok(()) } else { Err(AuthError::BadSignature) }
}

/// The paths a client may have signed: the request path without the mount prefix (trap §11.1),
/// then the full path, each as received and percent-decoded; duplicates removed.
pub(super) fn signed_paths(raw_path: &str, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(4);
    for path in [strip_prefix(raw_path, prefix), raw_path] {
        for candidate in [Some(path.to_owned()), percent_decode(path)].into_iter().flatten() {
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

/// `path` without the mount `prefix` (trailing `/` of the prefix ignored), when it has it.
fn strip_prefix<'a>(path: &'a str, prefix: &str) -> &'a str {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return path;
    }
    path.strip_prefix(prefix).filter(|rest| rest.starts_with('/')).unwrap_or(path)
}

/// `%XX`-decodes a path (`+` stays `+`); `None` when nothing was encoded or the result is not
/// UTF-8. Malformed escapes are kept literally.
fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(std::borrow::Cow::into_owned)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::{AppFeatures, Secret};
    use crate::protocol::Limits;

    const TS: u64 = 1_353_088_179;

    fn app() -> App {
        App {
            id: "3".into(),
            key: "278d425bdf160c739803".into(),
            secret: Secret::new("7ad3773142a6692b25b8"),
            enabled: true,
            max_connections: 0,
            features: AppFeatures::default(),
            limits: Limits::default(),
            webhooks: Vec::new(),
            auth_url: None,
            quota_messages_per_day: 0,
            origins: Default::default(),
        }
    }

    fn check(method: &str, path: &str, query: &str, body: &[u8], now: u64) -> Result<(), AuthError> {
        let q = Query::parse(query).unwrap();
        check_credentials(&app(), &q, now, 600)?;
        check_signature(&app(), method, &signed_paths(path, ""), &q, body)
    }

    const TRIGGER_BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
    const TRIGGER_QUERY: &str = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c";

    #[test]
    fn protocol_vectors() {
        assert_eq!(check("POST", "/apps/3/events", TRIGGER_QUERY, TRIGGER_BODY.as_bytes(), TS), Ok(()));
        let list = "filter_by_prefix=presence-&info=user_count&auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&auth_signature=16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291";
        assert_eq!(check("GET", "/apps/3/channels", list, b"", TS), Ok(()));
        // Guzzle percent-encodes the comma; the signature is over the decoded value.
        let show = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&info=user_count%2Csubscription_count&auth_signature=377ee9260ea002a70c0d40cd887d55cb36db9f7f821297f5efacbcce66be356d";
        assert_eq!(check("GET", "/apps/3/channels/presence-foobar", show, b"", TS), Ok(()));
        assert_eq!(check("GET", "/apps/3/channels/presence-foobar", &show.replace("%2C", ","), b"", TS), Ok(()));
    }

    #[test]
    fn each_failure_is_named() {
        let body = TRIGGER_BODY.as_bytes();
        let post = |q: &str, b: &[u8], now: u64| check("POST", "/apps/3/events", q, b, now);
        assert_eq!(post(TRIGGER_QUERY, body, TS + 600), Ok(()));
        assert_eq!(post(TRIGGER_QUERY, body, TS - 600), Ok(()));
        assert_eq!(post(TRIGGER_QUERY, body, TS + 601), Err(AuthError::StaleTimestamp { window_secs: 600 }));
        assert_eq!(post(TRIGGER_QUERY, body, TS - 601), Err(AuthError::StaleTimestamp { window_secs: 600 }));
        assert_eq!(post(TRIGGER_QUERY, b"{}", TS), Err(AuthError::BodyMd5Mismatch));
        assert_eq!(post(&TRIGGER_QUERY.replace("auth_key=278d", "auth_key=999d"), body, TS), Err(AuthError::WrongKey));
        assert_eq!(
            post(&TRIGGER_QUERY.replace("auth_version=1.0", "auth_version=2.0"), body, TS),
            Err(AuthError::UnsupportedVersion)
        );
        assert_eq!(post(&TRIGGER_QUERY.replace("1353088179", "soon"), body, TS), Err(AuthError::InvalidTimestamp));
        assert_eq!(post(&TRIGGER_QUERY.replace("=da45", "=da46"), body, TS), Err(AuthError::BadSignature));
        assert_eq!(post(&TRIGGER_QUERY.replace("=da45", "=zz"), body, TS), Err(AuthError::BadSignature));
        let no_sig = TRIGGER_QUERY.split("&auth_signature").next().unwrap();
        assert_eq!(post(no_sig, body, TS), Err(AuthError::MissingSignature));
        let no_md5 = TRIGGER_QUERY.replace("body_md5=ec365a775a4cd0599faeb73354201b6f&", "");
        assert_eq!(post(&no_md5, body, TS), Err(AuthError::MissingBodyMd5));
        assert_eq!(post("auth_timestamp=1", body, TS), Err(AuthError::MissingKey));
        assert_eq!(post("auth_key=278d425bdf160c739803", body, TS), Err(AuthError::MissingTimestamp));
        // body_md5 on an empty body must be the MD5 of nothing.
        let empty_md5 = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&body_md5=99914b932bd37a50b983c5e7c90ae93b&auth_signature=00";
        assert_eq!(check("GET", "/apps/3/channels", empty_md5, b"", TS), Err(AuthError::BodyMd5Mismatch));
        // Signed for another method or path.
        assert_eq!(check("PUT", "/apps/3/events", TRIGGER_QUERY, body, TS), Err(AuthError::BadSignature));
        assert_eq!(check("POST", "/apps/3/batch_events", TRIGGER_QUERY, body, TS), Err(AuthError::BadSignature));
    }

    #[test]
    fn query_keys_are_case_insensitive_and_unique() {
        let q = Query::parse("Info=a%2Cb&x=1+2").unwrap();
        assert_eq!(q.get("info"), Some("a,b"));
        assert_eq!(q.get("x"), Some("1 2"));
        assert_eq!(Query::parse("a=1&A=2").unwrap_err(), BadRequest::DuplicateParam("a".into()));
    }

    #[test]
    fn candidate_paths() {
        assert_eq!(signed_paths("/apps/3/events", ""), vec!["/apps/3/events"]);
        assert_eq!(signed_paths("/pfx/apps/3/events", "/pfx/"), vec!["/apps/3/events", "/pfx/apps/3/events"]);
        assert_eq!(signed_paths("/pfxapps/3", "/pfx"), vec!["/pfxapps/3"]);
        assert_eq!(
            signed_paths("/apps/3/channels/%23server-to-user-1", ""),
            vec!["/apps/3/channels/%23server-to-user-1", "/apps/3/channels/#server-to-user-1"]
        );
        assert_eq!(percent_decode("/a%2"), Some("/a%2".into()));
        assert_eq!(percent_decode("/a%zz+"), Some("/a%zz+".into()));
        assert_eq!(percent_decode("/a%ff"), None);
    }
}
