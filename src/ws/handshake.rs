//! The `/app/{key}` upgrade: draining, app key, enabled, protocol version, quota.
//! Must not run the socket: an accepted socket is handed to `session::run`.

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Session};
use tokio::time::Instant;

use super::{WsDeps, session};
use crate::apps::App;
use crate::connection::Connection;
use crate::metrics::Rejection;
use crate::protocol::{ErrorCode, SocketId, server_event};
use crate::registry::outbound;

/// Why a connection was refused at open time.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("App key {0} does not exist")]
    UnknownApp(String),
    #[error("App is disabled")]
    Disabled,
    #[error("Application is over connection quota")]
    OverQuota,
    #[error("Invalid protocol version format")]
    BadVersion,
    #[error("Unsupported protocol version")]
    Unsupported,
    #[error("No protocol version supplied")]
    NoProtocol,
    #[error("Temporarily unable to look up the app")]
    StoreDown,
}

impl Refusal {
    fn code(&self) -> (ErrorCode, Rejection) {
        match self {
            Self::UnknownApp(_) => (ErrorCode::AppNotFound, Rejection::UnknownApp),
            Self::Disabled => (ErrorCode::AppDisabled, Rejection::AppDisabled),
            Self::OverQuota => (ErrorCode::OverConnectionQuota, Rejection::OverQuota),
            Self::BadVersion => (ErrorCode::InvalidVersionFormat, Rejection::BadProtocol),
            Self::Unsupported => (ErrorCode::UnsupportedProtocol, Rejection::BadProtocol),
            Self::NoProtocol => (ErrorCode::NoProtocol, Rejection::BadProtocol),
            Self::StoreDown => (ErrorCode::OverCapacity, Rejection::UnknownApp),
        }
    }
}

/// Protocol versions 5–7 are identical on the wire for what Herald does.
fn check_protocol(query: &str, required: bool) -> Result<(), Refusal> {
    let value = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "protocol").map(|(_, v)| v);
    match value {
        None if required => Err(Refusal::NoProtocol),
        None => Ok(()),
        Some(v) => match v.parse::<u32>() {
            Err(_) => Err(Refusal::BadVersion),
            Ok(5..=7) => Ok(()),
            Ok(_) => Err(Refusal::Unsupported),
        },
    }
}

async fn find_app(deps: &WsDeps, key: &str, query: &str) -> Result<std::sync::Arc<App>, Refusal> {
    let app = match deps.apps.find_by_key(key).await {
        Ok(Some(app)) => app,
        Ok(None) => return Err(Refusal::UnknownApp(key.chars().take(64).collect())),
        Err(e) => {
            tracing::warn!(error = %e, "app store unavailable");
            return Err(Refusal::StoreDown);
        }
    };
    if !app.enabled {
        return Err(Refusal::Disabled);
    }
    check_protocol(query, deps.settings.require_protocol_param)?;
    Ok(app)
}

/// `GET /app/{key}`: refuses with a Pusher code, or upgrades and spawns the session.
pub(super) async fn connect(
    req: HttpRequest,
    body: web::Payload,
    key: web::Path<String>,
    deps: web::Data<WsDeps>,
) -> actix_web::Result<HttpResponse> {
    if deps.health.is_draining() {
        deps.conn.metrics.reject(Rejection::Draining);
        return Ok(HttpResponse::ServiceUnavailable().json(serde_json::json!({"error": "draining"})));
    }
    let found = find_app(&deps, &key, req.query_string()).await;
    let (response, session, stream) = actix_ws::handle(&req, body)?;
    let app = match found {
        Ok(app) => app,
        Err(refusal) => {
            actix_web::rt::spawn(refuse(session, &refusal, &deps));
            return Ok(response);
        }
    };
    let sid = SocketId::from_parts(rand::random::<u32>().into(), rand::random::<u32>().into());
    let (tx, rx) = outbound(sid, deps.settings.outbound_queue_frames);
    let ns = deps.conn.registry.namespace(&app.id);
    if !ns.add_socket(&tx, app.max_connections) {
        actix_web::rt::spawn(refuse(session, &Refusal::OverQuota, &deps));
        return Ok(response);
    }
    let conn = Connection::new(app, ns, tx, deps.conn.clone(), Instant::now());
    actix_web::rt::spawn(session::run(conn, session, stream, rx, deps.settings.clone()));
    Ok(response)
}

/// Sends the refusal as `pusher:error` and closes with the same code.
fn refuse(mut session: Session, refusal: &Refusal, deps: &WsDeps) -> impl Future<Output = ()> + 'static {
    let (code, why) = refusal.code();
    deps.conn.metrics.reject(why);
    tracing::debug!(code = code.code(), reason = why.as_str(), "connection refused");
    let message = refusal.to_string();
    async move {
        let _ = session.text(server_event::error(Some(code), &message)).await;
        let reason = CloseReason { code: CloseCode::Other(code.code()), description: Some(message) };
        let _ = session.close(Some(reason)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_param() {
        assert!(check_protocol("protocol=7&client=js&version=8.4.0&flash=false", false).is_ok());
        assert!(check_protocol("protocol=5", false).is_ok());
        assert!(check_protocol("", false).is_ok());
        assert!(matches!(check_protocol("", true), Err(Refusal::NoProtocol)));
        assert!(matches!(check_protocol("protocol=abc", false), Err(Refusal::BadVersion)));
        assert!(matches!(check_protocol("protocol=4", false), Err(Refusal::Unsupported)));
        assert!(matches!(check_protocol("protocol=8", false), Err(Refusal::Unsupported)));
    }
}
