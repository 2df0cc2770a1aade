//! Reads a request body with a size cap and one deadline for the whole body, so that large or
//! stalled uploads are dropped instead of holding a worker.
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
    payload: web::Payload,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    if declared_length(req).is_some_and(|len| len > limit) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    tokio::time::timeout(timeout, collect(payload, limit)).await.unwrap_or(Err(ApiError::BodyTimeout))
}

async fn collect(mut payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
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

fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers().get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
