//! The REST request path without HTTP, for fuzz targets and their property-test twins: the
//! query, the credentials, the body's MD5 and signature, then the event or batch body.
//! Must not be used by the server itself: it only drives the same functions the routes call.

use std::time::Duration;

use super::auth::{Query, check_credentials, check_signature, signed_paths};
use super::event_input::{EventIn, object};
use super::events::validate_batch;
use crate::apps::App;
use crate::protocol::server_event;

/// Whether the signed-request check (query, credentials, body MD5, signature) accepts it.
pub(crate) fn accepted(app: &App, method: &str, path: &str, query: &str, body: &[u8], now_unix: u64) -> bool {
    let Ok(q) = Query::parse(query) else {
        return false;
    };
    let window = Duration::from_secs(600).as_secs();
    let paths = signed_paths(path, "/prefix");
    assert!(paths.len() <= 4, "at most four candidate paths: {paths:?}");
    let ok =
        check_credentials(app, &q, now_unix, window).is_ok() && check_signature(app, method, &paths, &q, body).is_ok();
    assert!(!ok || q.get("auth_signature").is_some(), "accepted without a signature");
    ok
}

/// Runs one request through every check; panics only if an invariant breaks.
pub(crate) fn request(app: &App, method: &str, path: &str, query: &str, body: &[u8], now_unix: u64) {
    accepted(app, method, path, query, body, now_unix);
    if let Ok(event) = object::<EventIn>(body).map_err(super::ApiError::from).and_then(|e| e.validate(&app.limits)) {
        assert!(!event.channels.is_empty() && event.channels.len() <= app.limits.max_channels_per_trigger);
        assert!(event.data.len() <= app.limits.max_event_data_bytes);
        for channel in &event.channels {
            let frame = server_event::channel_event(&event.name, channel.as_str(), &event.data);
            let back: serde_json::Value = serde_json::from_str(&frame).expect("frames are JSON");
            assert_eq!(back["data"].as_str(), Some(event.data.as_str()), "data is relayed verbatim");
            assert_eq!(back["channel"].as_str(), Some(channel.as_str()));
        }
    }
    if let Ok(events) = validate_batch(body, &app.limits) {
        assert!(events.len() <= app.limits.max_batch_events);
    }
}
