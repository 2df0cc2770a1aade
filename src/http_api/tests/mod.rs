//! End-to-end tests of the REST API over real parts: static app store, local cluster driver, registry.

mod errors;
mod events;
mod queries;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use bytestring::ByteString;
use serde_json::Value;

use super::{ApiDeps, ApiSettings};
use crate::apps::StaticAppStore;
use crate::cluster::Cluster;
use crate::config::AppConfig;
use crate::metrics::Metrics;
use crate::protocol::{ChannelName, PresenceMember, SocketId, signature};
use crate::registry::{OutboundRx, Registry, outbound};

pub(super) const ID: &str = "1";
pub(super) const KEY: &str = "key-1";
pub(super) const SECRET: &str = "secret-1";

/// Builds the service under test: `app!(deps)` or `app!(deps, "/pfx")` (mounted in a scope).
macro_rules! app {
    ($deps:expr) => {
        actix_web::test::init_service(
            actix_web::App::new().configure(|c| $crate::http_api::configure(c, $deps.clone())),
        )
        .await
    };
    ($deps:expr, $prefix:expr) => {
        actix_web::test::init_service(
            actix_web::App::new()
                .service(actix_web::web::scope($prefix).configure(|c| $crate::http_api::configure(c, $deps.clone()))),
        )
        .await
    };
}
pub(super) use app;

pub(super) struct Harness {
    pub(super) deps: ApiDeps,
    pub(super) registry: Registry,
    pub(super) metrics: Metrics,
}

pub(super) fn settings() -> ApiSettings {
    ApiSettings {
        timestamp_window_secs: 600,
        max_body_bytes: 64 * 1024,
        body_timeout: Duration::from_secs(5),
        path_prefix: String::new(),
        cache_ttl: Duration::from_secs(60),
    }
}

pub(super) fn harness() -> Harness {
    harness_with(settings())
}

pub(super) fn harness_with(settings: ApiSettings) -> Harness {
    let app = |id: &str, key: &str, secret: &str, enabled: bool| AppConfig {
        id: id.into(),
        key: key.into(),
        secret: secret.into(),
        enabled,
        ..AppConfig::default()
    };
    let apps = [app(ID, KEY, SECRET, true), app("2", "key-2", "secret-2", false)];
    let registry = Registry::default();
    let metrics = Metrics::new();
    let deps = ApiDeps {
        apps: std::sync::Arc::new(StaticAppStore::new(&apps)),
        cluster: Cluster::local(registry.clone()),
        metrics: metrics.clone(),
        usage: crate::usage::UsageMeter::new(Cluster::local(registry.clone()).usage, registry.clone()),
        debug: crate::debug::DebugTap::new(&crate::config::DebugConfig::default(), metrics.debug()),
        settings,
    };
    Harness { deps, registry, metrics }
}

pub(super) fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The query string an SDK sends: auth params (+ `body_md5` for a body) and `extra`, signed over
/// `METHOD\npath\nsorted params` with raw values, then `auth_signature` appended.
pub(super) fn signed_query(method: &str, path: &str, extra: &[(&str, &str)], body: &str) -> String {
    signed_query_as(KEY, SECRET, now(), method, path, extra, body)
}

pub(super) fn signed_query_as(
    key: &str,
    secret: &str,
    ts: u64,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> String {
    let mut params: Vec<(String, String)> = vec![
        ("auth_key".into(), key.into()),
        ("auth_timestamp".into(), ts.to_string()),
        ("auth_version".into(), "1.0".into()),
    ];
    if !body.is_empty() {
        params.push(("body_md5".into(), signature::body_md5(body.as_bytes())));
    }
    params.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let sig = signature::sign(secret, &signature::rest_string(method, path, &params));
    let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{}&auth_signature={sig}", query.join("&"))
}

/// A signed `POST /apps/1{sub}` with `body`.
pub(super) fn post(sub: &str, body: &str) -> TestRequest {
    let path = format!("/apps/{ID}{sub}");
    let q = signed_query("POST", &path, &[], body);
    TestRequest::post().uri(&format!("{path}?{q}")).set_payload(body.to_owned())
}

/// A signed `GET /apps/1{sub}` with query `extra`.
pub(super) fn get(sub: &str, extra: &[(&str, &str)]) -> TestRequest {
    let path = format!("/apps/{ID}{sub}");
    let q = signed_query("GET", &path, extra, "");
    TestRequest::get().uri(&format!("{path}?{q}"))
}

/// Sends `req`; returns the status and the JSON body (which must be JSON).
pub(super) async fn call<S, R>(app: &S, req: R) -> (StatusCode, Value)
where
    S: Service<R, Response = ServiceResponse, Error = actix_web::Error>,
{
    let resp = test::call_service(app, req).await;
    let status = resp.status();
    let body = test::read_body(resp).await;
    let json = serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    (status, json)
}

/// A socket of app 1 subscribed to `channels` (presence channels join as `user`).
pub(super) fn subscriber(h: &Harness, sid: (u64, u64), channels: &[&str], user: Option<&str>) -> OutboundRx {
    let (out, rx) = outbound(SocketId::from_parts(sid.0, sid.1), 64);
    let ns = h.registry.namespace(ID);
    assert!(ns.add_socket(&out, 0));
    for name in channels {
        let channel = ChannelName::parse(name, 200).unwrap();
        let member = user
            .filter(|_| name.starts_with("presence-"))
            .map(|u| PresenceMember { user_id: u.into(), user_info: None });
        ns.join(&channel, &out, member, 100);
    }
    rx
}

/// Frames queued for a socket right now (publishing is synchronous on the local driver).
pub(super) fn frames(rx: &mut OutboundRx) -> Vec<ByteString> {
    let mut buf = Vec::new();
    rx.drain_ready(&mut buf, 100);
    buf
}
