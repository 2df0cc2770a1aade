//! Entry points of the fuzz targets (`tests/fuzz`, cargo-fuzz) and of their property-test
//! twins in `cargo test`: raw bytes in, every invariant checked by assertion.
//! Must not be part of a server build: compiled only for tests and with feature `fuzzing`.

use crate::apps::App;
use crate::config::AppConfig;
use crate::protocol::Limits;

/// The WebSocket frame reader. The first byte sets how many bytes each read delivers (1–256),
/// the rest is the client's byte stream; the message limit is 1 KiB, so limits are reached.
pub fn ws_frames(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    crate::ws::read_all(stream, usize::from(chunk) + 1, 1024);
}

/// The client-event parser and the field parsers behind it (UTF-8 text only, as the
/// transport guarantees), under tight limits so that every limit is reachable.
pub fn client_frame(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        crate::protocol::fuzz::client_frame(text, &tight_limits());
    }
}

/// The REST request path: `data` is `method \0 path \0 query \0 body`, checked against an app
/// whose key and secret the corpus uses (`fuzz-key` / `fuzz-secret`).
pub fn rest_request(data: &[u8]) {
    let mut parts = data.splitn(4, |b| *b == 0);
    let (Some(method), Some(path), Some(query)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let body = parts.next().unwrap_or_default();
    let (Ok(method), Ok(path), Ok(query)) =
        (std::str::from_utf8(method), std::str::from_utf8(path), std::str::from_utf8(query))
    else {
        return;
    };
    crate::http_api::fuzz::request(&fuzz_app(), method, path, query, body, FUZZ_NOW);
}

/// The clock the REST target runs at (`auth_timestamp` must be within 600 s of it).
pub const FUZZ_NOW: u64 = 1_700_000_000;

fn fuzz_app() -> App {
    let config = AppConfig {
        id: "fuzz".into(),
        key: "fuzz-key".into(),
        secret: "fuzz-secret".into(),
        limits: tight_limits(),
        ..AppConfig::default()
    };
    App::from(&config)
}

fn tight_limits() -> Limits {
    Limits {
        max_event_data_bytes: 256,
        max_event_name_len: 32,
        max_channel_name_len: 64,
        max_channels_per_trigger: 4,
        max_batch_events: 3,
        max_presence_user_info_bytes: 64,
        max_presence_user_id_len: 16,
        max_watchlist_size: 4,
        ..Limits::default()
    }
}

#[cfg(test)]
mod tests;
