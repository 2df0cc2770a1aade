//! `POST /apps/{id}/events` and `POST /apps/{id}/batch_events`: validate the whole request,
//! then encode each (event, channel) frame once and hand it to the bus.
//! Must not publish anything unless every event and channel of the request is valid.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use bytestring::ByteString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use super::auth::Signed;
use super::error::{ApiError, BadRequest};
use super::event_input::{EventIn, ValidEvent, object};
use super::info::{Attrs, ChannelMap, Info};
use super::{ApiDeps, json_empty, json_ok};
use crate::protocol::{ChannelName, Limits, server_event};

#[derive(Deserialize)]
struct BatchIn {
    #[serde(default)]
    batch: Option<Box<RawValue>>,
}

/// Triggers one event on one or more channels. Answers `{}`, or with `info` the attributes of
/// every channel: `{"channels":{"name":{…}}}`.
///
/// # Errors
/// 400/413 for an invalid event (nothing published); 503 when the cluster is unreachable.
pub(super) async fn trigger(deps: &ApiDeps, signed: &Signed) -> Result<HttpResponse, ApiError> {
    let event = object::<EventIn>(&signed.body)?.validate(&signed.app.limits)?;
    take_quota(deps, signed, event.channels.len())?;
    let app_id = signed.app.id.as_str();
    let reply = match event.info {
        Some(info) => {
            let mut channels = BTreeMap::new();
            for channel in &event.channels {
                channels.insert(channel.as_str().to_owned(), attrs(deps, app_id, channel, info).await?);
            }
            Some(ChannelMap { channels })
        }
        None => None,
    };
    publish(deps, app_id, &event).await?;
    tracing::debug!(channels = event.channels.len(), "event triggered");
    Ok(reply.map_or_else(json_empty, |r| json_ok(&r)))
}

/// Triggers up to `max_batch_events` events, in order. Answers `{}`, or when any item has
/// `info`, `{"batch":[{…},…]}` with one attribute object per item, in request order.
///
/// # Errors
/// 400/413 naming the first invalid item (nothing published); 503 when the cluster is
/// unreachable.
pub(super) async fn batch(deps: &ApiDeps, signed: &Signed) -> Result<HttpResponse, ApiError> {
    let events = validate_batch(&signed.body, &signed.app.limits)?;
    take_quota(deps, signed, events.iter().map(|e| e.channels.len()).sum())?;
    let app_id = signed.app.id.as_str();
    let mut replies = Vec::new();
    if events.iter().any(|e| e.info.is_some()) {
        for event in &events {
            let reply = match (event.info, event.channels.first()) {
                (Some(info), Some(channel)) => attrs(deps, app_id, channel, info).await?,
                (Some(_), None) | (None, _) => Attrs::default(),
            };
            replies.push(reply);
        }
    }
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            // Each event may fan out to thousands of sockets: let the worker's other tasks in.
            tokio::task::yield_now().await;
        }
        publish(deps, app_id, event).await?;
    }
    tracing::debug!(events = events.len(), "batch triggered");
    if replies.is_empty() { Ok(json_empty()) } else { Ok(json_ok(&BatchReply { batch: replies })) }
}

/// Counts the request's messages (one per event and channel) against the app's daily quota;
/// a request that would pass it is refused whole.
///
/// # Errors
/// 429 when the quota is reached.
fn take_quota(deps: &ApiDeps, signed: &Signed, messages: usize) -> Result<(), ApiError> {
    if deps.usage.take(&signed.app, messages as u64) {
        deps.metrics.app(&signed.app.id).messages.inc_by(messages as u64);
        Ok(())
    } else {
        Err(ApiError::QuotaReached { quota: signed.app.quota_messages_per_day })
    }
}

/// Every item of a `batch_events` body, validated; the first refused one names its index.
///
/// # Errors
/// 400/413 for the first invalid item, or a malformed or oversized batch.
pub(super) fn validate_batch(body: &[u8], limits: &Limits) -> Result<Vec<ValidEvent>, ApiError> {
    let raw = object::<BatchIn>(body)?.batch.ok_or(BadRequest::MissingField("batch"))?;
    let items: Vec<Box<RawValue>> = serde_json::from_str(raw.get())
        .map_err(|_| BadRequest::WrongType { field: "batch", expected: "an array of events" })?;
    if items.len() > limits.max_batch_events {
        let (count, limit) = (items.len(), limits.max_batch_events);
        return Err(BadRequest::TooManyBatchEvents { count, limit }.into());
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            object::<EventIn>(item.get().as_bytes())
                .map_err(ApiError::from)
                .and_then(|e| e.validate(limits))
                .map_err(|error| ApiError::InBatch { index, error: Box::new(error) })
        })
        .collect()
}

/// The attributes `info` asks for on `channel` (counted before publishing, so that a failed
/// query leaves nothing half-sent).
async fn attrs(deps: &ApiDeps, app_id: &str, channel: &ChannelName, info: Info) -> Result<Attrs, ApiError> {
    let stats = if info.user_count || info.subscription_count {
        deps.cluster.queries.channel(app_id, channel.as_str()).await?
    } else {
        None
    };
    Ok(info.trigger_attrs(channel.kind(), stats.as_ref()))
}

/// Encodes the frame once per channel; user channels go to the user's sockets, others to the
/// channel's subscribers, minus `socket_id` on both. A cache channel keeps the event before it
/// fans out, so a subscriber joining in between gets this event, not the one before it.
async fn publish(deps: &ApiDeps, app_id: &str, event: &ValidEvent) -> Result<(), ApiError> {
    let except = event.socket_id.as_ref();
    for (i, channel) in event.channels.iter().enumerate() {
        if i > 0 {
            // One channel's fan-out is the longest stretch this request holds its worker.
            tokio::task::yield_now().await;
        }
        let name = channel.as_str();
        if channel.is_cache() {
            let ttl = deps.settings.cache_ttl;
            deps.cluster.state.cache_put(app_id, name, &event.name, &event.data, ttl).await?;
        }
        let frame = ByteString::from(server_event::channel_event(&event.name, name, &event.data));
        match channel.user_id() {
            Some(user_id) => deps.cluster.bus.send_to_user(app_id, user_id, frame, except).await?,
            None => deps.cluster.bus.publish(app_id, name, frame, except).await?,
        }
    }
    deps.debug.emit(app_id, || {
        json!({
            "type": "api_message",
            "event": event.name,
            "channels": event.channels.iter().map(ChannelName::as_str).collect::<Vec<_>>(),
            "bytes": event.data.len(),
            "except": except.map(ToString::to_string),
            "preview": deps.debug.preview(&event.data),
        })
    });
    Ok(())
}

#[derive(Serialize)]
struct BatchReply {
    batch: Vec<Attrs>,
}
