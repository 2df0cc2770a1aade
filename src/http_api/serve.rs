//! The one request path every REST route shares: authenticate, dispatch to the endpoint,
//! turn errors into responses, then log and count the outcome with a bounded endpoint label.
//! Must not implement an endpoint itself, nor log bodies, query values or signatures.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use tokio::time::Instant;
use tracing::Instrument;

use super::error::ApiError;
use super::{ApiDeps, auth, body, channels, events, users};

/// The REST endpoints, each with its route and metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Endpoint {
    Events,
    BatchEvents,
    Channels,
    Channel,
    ChannelUsers,
    TerminateConnections,
}

/// Label of requests that matched no route (bounded, like the endpoint labels).
const UNKNOWN: &str = "unknown";

impl Endpoint {
    /// Every endpoint, in registration order.
    pub(super) const ALL: [Self; 6] = [
        Self::Events,
        Self::BatchEvents,
        Self::Channels,
        Self::Channel,
        Self::ChannelUsers,
        Self::TerminateConnections,
    ];

    /// The metrics label.
    pub(super) const fn label(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::BatchEvents => "batch_events",
            Self::Channels => "channels",
            Self::Channel => "channel",
            Self::ChannelUsers => "channel_users",
            Self::TerminateConnections => "terminate_connections",
        }
    }

    /// The route, relative to `/apps`.
    pub(super) const fn path(self) -> &'static str {
        match self {
            Self::Events => "/{app_id}/events",
            Self::BatchEvents => "/{app_id}/batch_events",
            Self::Channels => "/{app_id}/channels",
            Self::Channel => "/{app_id}/channels/{channel_name}",
            Self::ChannelUsers => "/{app_id}/channels/{channel_name}/users",
            Self::TerminateConnections => "/{app_id}/users/{user_id}/terminate_connections",
        }
    }

    /// The method the route answers.
    pub(super) fn method(self) -> Method {
        match self {
            Self::Events | Self::BatchEvents | Self::TerminateConnections => Method::POST,
            Self::Channels | Self::Channel | Self::ChannelUsers => Method::GET,
        }
    }
}

/// Serves one request to `endpoint`.
pub(super) async fn serve(
    endpoint: Endpoint,
    req: HttpRequest,
    payload: web::Payload,
    deps: web::Data<ApiDeps>,
) -> HttpResponse {
    let started = Instant::now();
    let app_id = req.match_info().get("app_id").unwrap_or_default();
    let span = tracing::debug_span!("api_request", endpoint = endpoint.label(), app_id);
    let mut payload = payload;
    let result = handle(endpoint, &req, &mut payload, &deps).instrument(span.clone()).await;
    if matches!(&result, Err(e) if !matches!(e, ApiError::BodyTimeout)) {
        // Refused before (or while) its body was read: let the client finish sending it.
        body::drain(&mut payload, deps.settings.body_timeout).await;
    }
    let response = span.in_scope(|| respond(&deps, result));
    finish(&deps, endpoint.label(), &response, started);
    response
}

async fn handle(
    endpoint: Endpoint,
    req: &HttpRequest,
    payload: &mut web::Payload,
    deps: &ApiDeps,
) -> Result<HttpResponse, ApiError> {
    let signed = auth::authenticate(req, payload, deps).await?;
    let param = |name: &str| req.match_info().get(name).unwrap_or_default();
    match endpoint {
        Endpoint::Events => events::trigger(deps, &signed).await,
        Endpoint::BatchEvents => events::batch(deps, &signed).await,
        Endpoint::Channels => channels::list(deps, &signed).await,
        Endpoint::Channel => channels::show(deps, &signed, param("channel_name")).await,
        Endpoint::ChannelUsers => channels::users(deps, &signed, param("channel_name")).await,
        Endpoint::TerminateConnections => users::terminate(deps, &signed, param("user_id")).await,
    }
}

/// A known route called with another method: JSON 405.
pub(super) async fn method_not_allowed(endpoint: Endpoint, deps: web::Data<ApiDeps>) -> HttpResponse {
    let response = respond(&deps, Err(ApiError::MethodNotAllowed));
    finish(&deps, endpoint.label(), &response, Instant::now());
    response
}

/// Anything else under `/apps`: JSON 404.
pub(super) async fn not_found(deps: web::Data<ApiDeps>) -> HttpResponse {
    let response = respond(&deps, Err(ApiError::RouteNotFound));
    finish(&deps, UNKNOWN, &response, Instant::now());
    response
}

fn respond(deps: &ApiDeps, result: Result<HttpResponse, ApiError>) -> HttpResponse {
    match result {
        Ok(response) => response,
        Err(err) => {
            if err.is_internal() {
                // The source carries the infrastructure detail; the client only sees "unavailable".
                let source = std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default();
                tracing::warn!(error = %err, source, "REST API request failed");
            } else {
                tracing::debug!(error = %err, "REST API request refused");
            }
            if let Some(why) = err.rejection() {
                deps.metrics.reject(why);
            }
            err.error_response()
        }
    }
}

fn finish(deps: &ApiDeps, label: &str, response: &HttpResponse, started: Instant) {
    let status = response.status().as_u16();
    deps.metrics.api_request(label, status, started.elapsed().as_secs_f64());
    tracing::debug!(endpoint = label, status, "REST API request done");
}
