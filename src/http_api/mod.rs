//! The Pusher REST API (pusher-protocol.md §6–7): signed requests that trigger events, query
//! channels and terminate users' connections.
//! Must not touch sockets or the registry's rosters directly: fan-out and queries go through
//! the `Adapter`; only the cache-channel store is written here.

mod auth;
mod body;
mod channels;
mod error;
mod event_input;
mod events;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod info;
mod serve;
mod users;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

pub use error::{ApiError, AuthError, BadRequest};

use crate::apps::AppStore;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::metrics::Metrics;
use serve::Endpoint;

/// What the REST API needs. Cheap to clone (handles only).
#[derive(Clone)]
pub struct ApiDeps {
    /// Apps by id.
    pub apps: Arc<dyn AppStore>,
    /// Delivery, the cache-channel store and the channel queries.
    pub cluster: Cluster,
    /// Request and rejection counters.
    pub metrics: Metrics,
    /// Usage counters and the daily message quota.
    pub usage: crate::usage::UsageMeter,
    /// The debug console's event hub (publishes are shown there).
    pub debug: crate::debug::DebugTap,
    /// Limits and timeouts.
    pub settings: ApiSettings,
}

/// The REST API's knobs, taken from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiSettings {
    /// Accepted clock skew of `auth_timestamp`, in seconds.
    pub timestamp_window_secs: u64,
    /// Largest request body, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Time allowed for the whole body to arrive (408 after it).
    pub body_timeout: Duration,
    /// Mount prefix stripped from the path before the signature is checked (may be empty).
    pub path_prefix: String,
    /// How long a cache channel keeps its last event.
    pub cache_ttl: Duration,
}

impl ApiSettings {
    /// The settings from `http_api`, `server.path_prefix` and `websocket.cache_ttl_secs`.
    pub fn from_config(config: &Config) -> Self {
        Self {
            timestamp_window_secs: config.http_api.timestamp_window_secs,
            max_body_bytes: config.http_api.max_body_bytes,
            body_timeout: Duration::from_secs(config.http_api.body_timeout_secs),
            path_prefix: config.server.path_prefix.clone(),
            cache_ttl: Duration::from_secs(config.websocket.cache_ttl_secs),
        }
    }
}

/// Registers the REST routes under `/apps` (mount inside the server's `path_prefix` scope).
/// Unknown paths under `/apps` get a JSON 404 and wrong methods a JSON 405; nothing outside
/// `/apps` is claimed, so the WebSocket route can share the scope.
pub fn configure(cfg: &mut web::ServiceConfig, deps: ApiDeps) {
    let mut scope = web::scope("/apps").app_data(web::Data::new(deps));
    for endpoint in Endpoint::ALL {
        let serve = move |req: HttpRequest, payload: web::Payload, deps: web::Data<ApiDeps>| {
            serve::serve(endpoint, req, payload, deps)
        };
        let refuse = move |deps: web::Data<ApiDeps>| serve::method_not_allowed(endpoint, deps);
        scope = scope.service(
            web::resource(endpoint.path())
                .route(web::method(endpoint.method()).to(serve))
                .default_service(web::to(refuse)),
        );
    }
    cfg.service(scope.default_service(web::to(serve::not_found)));
}

/// `200` with `body` as JSON.
fn json_ok(body: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// `200` with `{}` (the PHP SDK needs an object body, never an empty one).
fn json_empty() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body("{}")
}
