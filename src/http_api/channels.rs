//! `GET /apps/{id}/channels`, `GET /apps/{id}/channels/{name}` and `…/{name}/users`:
//! occupancy, counts, cached events and presence users (pusher-protocol.md §6.3–6.5).
//! Must not change any state: these routes only query the cluster and its event cache.

use actix_web::HttpResponse;
use serde::Serialize;
use tokio::time::Instant;

use super::auth::Signed;
use super::error::{ApiError, BadRequest};
use super::info::{ChannelMap, Info};
use super::{ApiDeps, json_ok};
use crate::protocol::{ChannelKind, ChannelName};

/// Occupied channels, optionally filtered by prefix: `{"channels":{"name":{…}}}`.
///
/// # Errors
/// 400 when `user_count` is asked without a `presence-` prefix filter; 503 when the cluster is unreachable.
pub(super) async fn list(deps: &ApiDeps, signed: &Signed) -> Result<HttpResponse, ApiError> {
    let prefix = signed.query.get("filter_by_prefix").unwrap_or_default();
    let info = requested(signed);
    if info.user_count && !prefix.starts_with("presence-") {
        return Err(BadRequest::UserCountNeedsPresenceFilter.into());
    }
    let stats = deps.cluster.queries.channels(&signed.app.id, prefix).await?;
    let channels = stats.iter().map(|s| (s.name.clone(), info.list_attrs(s))).collect();
    Ok(json_ok(&ChannelMap { channels }))
}

#[derive(Serialize)]
struct ChannelReply {
    occupied: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<CacheReply>,
}

#[derive(Serialize)]
struct CacheReply {
    data: String,
    ttl: u64,
}

/// One channel: always `occupied`; `user_count` (presence only), `subscription_count` when
/// occupied and asked for; `cache` when asked for and a live event is cached.
///
/// # Errors
/// 400 for an invalid name or `user_count` on a non-presence channel; 503 when the cluster is unreachable.
pub(super) async fn show(deps: &ApiDeps, signed: &Signed, name: &str) -> Result<HttpResponse, ApiError> {
    let channel = path_channel(signed, name)?;
    let info = requested(signed);
    if info.user_count && channel.kind() != ChannelKind::Presence {
        return Err(BadRequest::UserCountOnNonPresence.into());
    }
    let app_id = signed.app.id.as_str();
    let stats = deps.cluster.queries.channel(app_id, name).await?;
    let cache = if info.cache && channel.is_cache() {
        let hit = deps.cluster.state.cache_get(app_id, name).await?;
        hit.map(|c| CacheReply { ttl: c.ttl_secs(Instant::now()), data: c.data })
    } else {
        None
    };
    Ok(json_ok(&ChannelReply {
        occupied: stats.is_some(),
        user_count: stats.as_ref().filter(|_| info.user_count).map(|s| s.user_count),
        subscription_count: stats.as_ref().filter(|_| info.subscription_count).map(|s| s.subscription_count),
        cache,
    }))
}

#[derive(Serialize)]
struct UsersReply {
    users: Vec<UserReply>,
}

#[derive(Serialize)]
struct UserReply {
    id: String,
}

/// Distinct users of a presence channel: `{"users":[{"id":"1"},…]}` (empty when unoccupied).
///
/// # Errors
/// 400 for an invalid name or a non-presence channel; 503 when the cluster is unreachable.
pub(super) async fn users(deps: &ApiDeps, signed: &Signed, name: &str) -> Result<HttpResponse, ApiError> {
    let channel = path_channel(signed, name)?;
    if channel.kind() != ChannelKind::Presence {
        return Err(BadRequest::UsersOnNonPresence.into());
    }
    let ids = deps.cluster.queries.presence_users(&signed.app.id, channel.as_str()).await?;
    Ok(json_ok(&UsersReply { users: ids.into_iter().map(|id| UserReply { id }).collect() }))
}

fn requested(signed: &Signed) -> Info {
    signed.query.get("info").map(Info::parse).unwrap_or_default()
}

fn path_channel(signed: &Signed, name: &str) -> Result<ChannelName, BadRequest> {
    ChannelName::parse(name, signed.app.limits.max_channel_name_len).map_err(|_| BadRequest::BadPathChannel)
}
