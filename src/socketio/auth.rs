//! Server-side channel authorization, as laravel-echo-server does it: `POST channel_name`
//! (and Herald's Pusher-format `socket_id`, which Laravel's `pusher` broadcaster signs) to the
//! app's configured auth endpoint, with the client's cookie and the headers Echo sends.
//! Must not reach any host but the app's configured `auth_url`, wait past the timeout, read
//! past the size limit, or take more than `auth_concurrency` calls at once.

use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::Semaphore;
use tokio::time::{Duration, Instant};

use crate::protocol::{Limits, PresenceMember};

/// Headers from a client's `auth.headers` that are never forwarded: they describe the
/// connection or the body, which Herald makes itself.
const NOT_FORWARDED: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "proxy-authorization",
    "proxy-connection",
];

/// Most headers taken from one `auth.headers`, and the longest value.
const MAX_HEADERS: usize = 32;
const MAX_HEADER_VALUE: usize = 8 * 1024;

/// Why a subscription was not authorized, as the `subscription_error` status it gets.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Denied {
    /// The endpoint answered this non-2xx status (403: Laravel refused).
    #[error("the auth endpoint answered {0}")]
    Status(u16),
    /// The app has no auth endpoint configured.
    #[error("the app has no auth_host")]
    NotConfigured,
    /// A 2xx answer that is neither Laravel's nor Pusher's shape.
    #[error("the auth endpoint's answer is not usable: {0}")]
    Garbage(&'static str),
    /// Unreachable, or the connection failed.
    #[error("the auth endpoint could not be reached")]
    Unreachable,
    /// No answer within the timeout.
    #[error("the auth endpoint did not answer in time")]
    Timeout,
    /// Every auth call slot stayed taken for the whole timeout.
    #[error("too many auth calls in flight")]
    Busy,
}

impl Denied {
    /// The status the client's `subscription_error` carries.
    pub(super) fn status(&self) -> u16 {
        match self {
            Self::Status(s) => *s,
            Self::NotConfigured => 403,
            Self::Garbage(_) | Self::Unreachable => 502,
            Self::Timeout => 504,
            Self::Busy => 503,
        }
    }

    /// The bounded label of `herald_socketio_auth_total{outcome}`.
    pub(super) fn outcome(&self) -> &'static str {
        match self {
            Self::Status(_) => "denied",
            Self::NotConfigured => "not_configured",
            Self::Garbage(_) => "bad_answer",
            Self::Unreachable => "unreachable",
            Self::Timeout => "timeout",
            Self::Busy => "busy",
        }
    }
}

/// One node's auth caller, shared by every socket.io socket. Cheap to clone.
#[derive(Clone)]
pub(super) struct Authorizer {
    client: reqwest::Client,
    slots: Arc<Semaphore>,
    timeout: Duration,
    max_bytes: usize,
}

/// What one call needs, taken from the socket before the call starts (so the call owns it).
pub(super) struct Request {
    pub(super) url: Option<String>,
    pub(super) channel: String,
    pub(super) socket_id: String,
    pub(super) headers: HeaderMap,
    pub(super) presence: bool,
    pub(super) limits: Limits,
}

impl Authorizer {
    pub(super) fn new(timeout: Duration, concurrency: usize, max_bytes: usize) -> Self {
        // No redirects: a 3xx (Laravel's redirect to /login for a guest) is a refusal, and the
        // call never goes anywhere but the configured endpoint.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .build()
            .expect("the TLS backend initializes");
        Self { client, slots: Arc::new(Semaphore::new(concurrency)), timeout, max_bytes }
    }

    /// Asks the app whether the socket may subscribe; for presence, who it is.
    pub(super) async fn authorize(&self, req: Request) -> Result<Option<PresenceMember>, Denied> {
        let url = req.url.as_deref().ok_or(Denied::NotConfigured)?;
        let deadline = Instant::now() + self.timeout;
        let _slot = tokio::time::timeout_at(deadline, self.slots.acquire()).await.map_err(|_| Denied::Busy)?;
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("channel_name", &req.channel)
            .append_pair("socket_id", &req.socket_id)
            .finish();
        let call = async {
            let res = self
                .client
                .post(url)
                .headers(req.headers)
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(reqwest::header::ACCEPT, "application/json")
                .header("x-requested-with", "XMLHttpRequest")
                .body(body)
                .send()
                .await
                .map_err(|_| Denied::Unreachable)?;
            let status = res.status();
            if !status.is_success() {
                return Err(Denied::Status(status.as_u16()));
            }
            read_bounded(res, self.max_bytes).await
        };
        let answer = tokio::time::timeout_at(deadline, call).await.map_err(|_| Denied::Timeout)??;
        parse_answer(&answer, req.presence, &req.limits)
    }
}

async fn read_bounded(mut res: reqwest::Response, max: usize) -> Result<Vec<u8>, Denied> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|_| Denied::Unreachable)? {
        if body.len() + chunk.len() > max {
            return Err(Denied::Garbage("too large"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(default, borrow)]
    auth: Option<&'a RawValue>,
    #[serde(default, borrow)]
    channel_data: Option<&'a RawValue>,
}

/// Reads what Laravel answered: `true` (the `redis` broadcaster, private channels),
/// `{"channel_data": {…}}` (the `redis` broadcaster, presence) or `{"auth": "…",
/// "channel_data": "…"}` (the `pusher` broadcaster).
///
/// # Errors
/// [`Denied::Garbage`] for anything else, and for a presence answer without a usable member.
pub(super) fn parse_answer(body: &[u8], presence: bool, limits: &Limits) -> Result<Option<PresenceMember>, Denied> {
    let text = std::str::from_utf8(body).map_err(|_| Denied::Garbage("not UTF-8"))?.trim();
    if text == "true" {
        return if presence { Err(Denied::Garbage("presence needs channel_data")) } else { Ok(None) };
    }
    let answer: Answer<'_> = serde_json::from_str(text).map_err(|_| Denied::Garbage("not JSON of Laravel's shape"))?;
    match (answer.channel_data, presence) {
        (Some(data), true) => {
            // An object (redis broadcaster) or the JSON string the pusher broadcaster signed.
            let data = serde_json::from_str::<String>(data.get()).unwrap_or_else(|_| data.get().to_owned());
            PresenceMember::from_channel_data(&data, limits).map(Some).map_err(|_| Denied::Garbage("bad channel_data"))
        }
        (None, true) => Err(Denied::Garbage("presence needs channel_data")),
        (_, false) if answer.auth.is_some() || answer.channel_data.is_some() => Ok(None),
        (_, false) => Err(Denied::Garbage("neither true nor an auth answer")),
    }
}

/// The headers forwarded for one subscription: those in the client's `auth.headers` (string
/// values, never connection or body headers), then the handshake's `Cookie` (as
/// laravel-echo-server sends it, and over any the client named).
pub(super) fn forwarded_headers(auth_headers: Option<&serde_json::Value>, cookie: Option<&[u8]>) -> HeaderMap {
    let mut out = HeaderMap::new();
    if let Some(serde_json::Value::Object(map)) = auth_headers {
        for (name, value) in map.iter().take(MAX_HEADERS) {
            let Some(value) = value.as_str().filter(|v| v.len() <= MAX_HEADER_VALUE) else { continue };
            let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) else {
                continue;
            };
            if !NOT_FORWARDED.contains(&name.as_str()) {
                out.insert(name, value);
            }
        }
    }
    if let Some(cookie) = cookie.and_then(|c| HeaderValue::from_bytes(c).ok()) {
        out.insert(reqwest::header::COOKIE, cookie);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laravels_and_pushers_answers() {
        let l = Limits::default();
        assert_eq!(parse_answer(b"true", false, &l).map(|m| m.is_none()), Ok(true));
        assert_eq!(parse_answer(br#"{"auth":"key:sig"}"#, false, &l).map(|m| m.is_none()), Ok(true));
        let redis = parse_answer(br#"{"channel_data":{"user_id":1,"user_info":{"name":"Ann"}}}"#, true, &l).unwrap();
        let m = redis.expect("a member");
        assert_eq!((m.user_id.as_str(), m.user_info.unwrap().get()), ("1", r#"{"name":"Ann"}"#));
        let pusher = br#"{"auth":"k:s","channel_data":"{\"user_id\":\"u7\",\"user_info\":null}"}"#;
        assert_eq!(parse_answer(pusher, true, &l).unwrap().unwrap().user_id, "u7");
    }

    #[test]
    fn garbage_is_refused() {
        let l = Limits::default();
        for (body, presence) in [
            (&b"<html>login</html>"[..], false),
            (b"false", false),
            (b"{}", false),
            (b"true", true),
            (br#"{"auth":"k:s"}"#, true),
            (br#"{"channel_data":{"user_info":{}}}"#, true),
            (b"\xff", false),
        ] {
            assert!(matches!(parse_answer(body, presence, &l), Err(Denied::Garbage(_))), "{body:?}");
        }
    }

    #[test]
    fn only_safe_headers_are_forwarded() {
        let given = serde_json::json!({
            "X-CSRF-TOKEN": "t", "Authorization": "Bearer b", "Host": "evil", "Content-Length": "9",
            "X-Number": 5, "Cookie": "mine", "bad name": "x"
        });
        let h = forwarded_headers(Some(&given), Some(b"laravel_session=abc"));
        assert_eq!(h.get("x-csrf-token").unwrap(), "t");
        assert_eq!(h.get("authorization").unwrap(), "Bearer b");
        assert_eq!(h.get("cookie").unwrap(), "laravel_session=abc", "the handshake's cookie wins");
        assert!(h.get("host").is_none() && h.get("content-length").is_none() && h.get("x-number").is_none());
        assert_eq!(h.len(), 3);
    }
}
