//! Reads a request body with a size cap and one deadline for the whole body, so that large or
//! stalled uploads are dropped instead of holding a worker; and drains what a refused request
//! still sends, so its client reads the refusal instead of a broken pipe.
//! Must not parse the body: it returns the raw bytes `body_md5` covers.

use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::StreamExt;

use super::error::{ApiError, BadRequest};

/// The whole body, at most `limit` bytes, received within `timeout`.
///
/// # Errors
/// [`ApiError::BodyTooLarge`] (declared or actual size over `limit`), [`ApiError::BodyTimeout`],
/// or [`BadRequest::UnreadableBody`] when the connection fails mid-body.
pub(super) async fn read(
    req: &HttpRequest,
    payload: &mut web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    if declared_length(req).is_some_and(|len| len > limit) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    tokio::time::timeout(timeout, collect(payload, limit)).await.unwrap_or(Err(ApiError::BodyTimeout))
}

async fn collect(payload: &mut web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BadRequest::UnreadableBody)?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge { limit });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The most a refused request's remaining body is read for, before its connection is given up.
/// Far above any sane body (so a refusal of one is readable), far below a flood.
const DRAIN_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Reads and discards what is left of `payload`, at most `DRAIN_MAX_BYTES` within `timeout`.
///
/// A server that answers early and then closes makes the client's next write fail (`EPIPE`,
/// a reset), and Node's and PHP's HTTP clients report that instead of the status they were
/// sent. Draining lets the request finish, so the refusal is what the client reads; past the
/// bounds the connection is closed after the answer, as before.
pub(super) async fn drain(payload: &mut web::Payload, timeout: Duration) {
    let discard = async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = payload.next().await {
            seen += chunk.len();
            if seen > DRAIN_MAX_BYTES {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, discard).await;
}

fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers().get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
