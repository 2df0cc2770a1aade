//! `POST /apps/{id}/users/{user_id}/terminate_connections`: closes every socket signed in as the
//! user (pusher-protocol.md §6.6, §4.4).
//! Must not touch presence membership: only signed-in connections are terminated.

use actix_web::HttpResponse;

use super::auth::Signed;
use super::error::ApiError;
use super::{ApiDeps, json_empty};

/// Asks every node to close the user's sockets (with 4009); answers `{}`.
///
/// # Errors
/// 503 when the cluster is unreachable.
pub(super) async fn terminate(deps: &ApiDeps, signed: &Signed, user_id: &str) -> Result<HttpResponse, ApiError> {
    deps.cluster.bus.terminate_user(&signed.app.id, user_id).await?;
    tracing::debug!("user connections terminated");
    Ok(json_empty())
}
