//! The property-test twins of the fuzz targets: the same entry points and invariants, fed by
//! proptest with structured inputs (well-formed frames, JSON, signed requests) and their
//! mutations, so that `cargo test` on the stable toolchain explores past the first byte.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{FUZZ_NOW, client_frame, rest_request, ws_frames};
use crate::protocol::signature;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() }
}

/// One client frame as bytes: masked (usually), any opcode, each length form.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    let opcode = prop_oneof![Just(0x0u8), Just(0x1), Just(0x2), Just(0x8), Just(0x9), Just(0xA), 0u8..16];
    (any::<bool>(), opcode, prop::bool::weighted(0.9), prop::collection::vec(any::<u8>(), 0..300), 0u8..3).prop_map(
        |(fin, opcode, masked, payload, form)| {
            let mut out = vec![if fin { 0x80 | opcode } else { opcode }];
            let mask_bit = if masked { 0x80 } else { 0 };
            match (form, payload.len()) {
                (0, n) if n < 126 => out.push(mask_bit | n as u8),
                (1, n) | (0, n) if n <= 65_535 => {
                    out.push(mask_bit | 126);
                    out.extend_from_slice(&(n as u16).to_be_bytes());
                }
                (_, n) => {
                    out.push(mask_bit | 127);
                    out.extend_from_slice(&(n as u64).to_be_bytes());
                }
            }
            let key = [0x5a, 0x17, 0xc3, 0x09];
            if masked {
                out.extend_from_slice(&key);
            }
            out.extend(payload.iter().enumerate().map(|(i, b)| if masked { b ^ key[i % 4] } else { *b }));
            out
        },
    )
}

/// A stream of frames, with a few bytes flipped.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(frame(), 0..12), prop::collection::vec((any::<usize>(), any::<u8>()), 0..4)).prop_map(
        |(frames, flips)| {
            let mut bytes: Vec<u8> = frames.concat();
            for (at, bits) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] ^= bits;
                }
            }
            bytes
        },
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ws_reader_survives_any_bytes(chunk in any::<u8>(), bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut data = vec![chunk];
        data.extend(bytes);
        ws_frames(&data);
    }

    #[test]
    fn ws_reader_survives_mutated_frames(chunk in any::<u8>(), bytes in stream()) {
        let mut data = vec![chunk];
        data.extend(bytes);
        ws_frames(&data);
    }

    /// However the bytes are split across reads, well-formed text frames come out one by one.
    #[test]
    fn ws_reader_is_independent_of_read_sizes(texts in prop::collection::vec("[a-z{}\":,]{0,200}", 1..10), chunk in 1usize..64) {
        let bytes: Vec<u8> = texts.iter().flat_map(|t| masked_text(t)).collect();
        prop_assert_eq!(crate::ws::read_all(&bytes, chunk, 1024), texts.len());
    }
}

fn masked_text(text: &str) -> Vec<u8> {
    let mut out = vec![0x81];
    let n = text.len();
    if n < 126 {
        out.push(0x80 | n as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    }
    let key = [1u8, 2, 3, 4];
    out.extend_from_slice(&key);
    out.extend(text.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// JSON values shaped like what clients send, from a small vocabulary, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~]{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("pusher:subscribe"),
            Just("pusher:signin"),
            Just("private-a"),
            Just("presence-room"),
            Just("#server-to-user-1"),
            Just("client-typing"),
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        const WORDS: [&str; 10] = [
            "event",
            "channel",
            "data",
            "auth",
            "channel_data",
            "user_data",
            "user_id",
            "user_info",
            "id",
            "watchlist",
        ];
        let key = prop_oneof![prop::sample::select(&WORDS[..]).prop_map(str::to_owned), "[a-z_]{1,8}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key, inner.clone()), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            inner.prop_map(|v| Value::String(v.to_string())),
        ]
    })
}

fn client_json() -> impl Strategy<Value = String> {
    const KNOWN: [&str; 5] = ["pusher:subscribe", "pusher:unsubscribe", "pusher:signin", "pusher:ping", "client-x"];
    let event = prop_oneof![prop::sample::select(&KNOWN[..]).prop_map(str::to_owned), "[a-z:-]{0,12}"];
    (event, json_value(), prop::option::of("[ -~]{0,70}")).prop_map(|(event, data, channel)| {
        let mut frame = json!({"event": event, "data": data});
        if let Some(c) = channel {
            frame["channel"] = json!(c);
        }
        frame.to_string()
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_frames_survive_any_text(text in "\\PC{0,300}") {
        client_frame(text.as_bytes());
    }

    #[test]
    fn client_frames_survive_structured_json(text in client_json()) {
        client_frame(text.as_bytes());
    }
}

/// A REST request the way the SDKs sign it, with `extra` parameters.
fn signed(method: &str, path: &str, extra: &[(String, String)], body: &[u8], ts: u64) -> String {
    let mut params: Vec<(String, String)> = extra.to_vec();
    params.push(("auth_key".into(), "fuzz-key".into()));
    params.push(("auth_timestamp".into(), ts.to_string()));
    params.push(("auth_version".into(), "1.0".into()));
    if !body.is_empty() {
        params.push(("body_md5".into(), signature::body_md5(body)));
    }
    let sig = signature::sign("fuzz-secret", &signature::rest_string(method, path, &params));
    params.push(("auth_signature".into(), sig));
    form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

fn event_body() -> impl Strategy<Value = Vec<u8>> {
    let channel = prop_oneof![Just(json!("news")), Just(json!("presence-x")), "[ -~]{0,70}".prop_map(|s| json!(s))];
    let event = (
        prop::option::of("[ -~]{0,40}"),
        prop::option::of(json_value()),
        prop::collection::vec(channel, 0..6),
        prop::option::of("[0-9.]{0,8}"),
    )
        .prop_map(|(name, data, channels, socket_id)| -> Value {
            let mut e = json!({});
            if let Some(n) = name {
                e["name"] = json!(n);
            }
            if let Some(d) = data {
                e["data"] = d;
            }
            if channels.len() == 1 {
                e["channel"] = channels[0].clone();
            } else {
                e["channels"] = Value::Array(channels);
            }
            if let Some(s) = socket_id {
                e["socket_id"] = json!(s);
            }
            e
        });
    let event = event.boxed();
    prop_oneof![
        event.clone().prop_map(|e| e.to_string().into_bytes()),
        prop::collection::vec(event, 0..5).prop_map(|b| json!({"batch": b}).to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..300),
    ]
}

fn params() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-z_]{1,10}", "[ -~]{0,20}"), 0..4).prop_map(|kv| {
        let mut seen = std::collections::HashSet::new();
        kv.into_iter().filter(|(k, _)| !k.starts_with("auth_") && k != "body_md5" && seen.insert(k.clone())).collect()
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rest_requests_survive_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        rest_request(&bytes);
    }

    #[test]
    fn rest_bodies_survive_structured_json(body in event_body(), extra in params()) {
        let query = signed("POST", "/apps/fuzz/events", &extra, &body, FUZZ_NOW);
        let mut data = b"POST\0/apps/fuzz/events\0".to_vec();
        data.extend_from_slice(query.as_bytes());
        data.push(0);
        data.extend_from_slice(&body);
        rest_request(&data);
    }

    /// Whatever the parameters and body, the SDKs' signature is accepted, and any change to
    /// the body, a parameter or the signature is refused.
    #[test]
    fn signatures_accept_exactly_what_was_signed(body in event_body(), extra in params(), flip in any::<prop::sample::Index>(), skew in 0u64..=600) {
        let app = super::fuzz_app();
        let accepted = |query: &str, body: &[u8]| crate::http_api::fuzz::accepted(&app, "POST", "/apps/fuzz/events", query, body, FUZZ_NOW);
        let query = signed("POST", "/apps/fuzz/events", &extra, &body, FUZZ_NOW - skew);
        prop_assert!(accepted(&query, &body), "{query}");
        prop_assert!(accepted(&signed("POST", "/apps/fuzz/events", &extra, &body, FUZZ_NOW + skew), &body));
        let mut changed = body.clone();
        if changed.is_empty() { changed.push(b'x'); } else { let i = flip.index(changed.len()); changed[i] ^= 1; }
        prop_assert!(!accepted(&query, &changed), "a changed body is refused");
        let sig_at = query.find("auth_signature=").unwrap() + "auth_signature=".len();
        let mut forged = query.clone().into_bytes();
        let i = sig_at + flip.index(64);
        forged[i] = if forged[i] == b'0' { b'1' } else { b'0' };
        prop_assert!(!accepted(std::str::from_utf8(&forged).unwrap(), &body), "a changed signature is refused");
        prop_assert!(!accepted(&signed("POST", "/apps/fuzz/events", &extra, &body, FUZZ_NOW - 601), &body), "stale");
    }
}

/// Found by `client_frame`: a number no f64 holds is valid JSON; it is relayed byte for byte.
#[test]
fn client_events_keep_numbers_beyond_f64() {
    client_frame(br#"{"event": "client-GGWGG", "channel": "WWWWWWW", "data": {"name!": 222222222222222222e2225}}"#);
}

/// The seed corpora committed for cargo-fuzz (tests/fuzz/seeds) pass the same checks, and the
/// REST seeds are signed correctly (so the fuzzer starts from accepted requests).
#[test]
fn seed_corpora_replay() {
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/seeds");
    type Target = fn(&[u8]);
    let targets: [(&str, Target); 3] =
        [("ws_frames", ws_frames), ("client_frame", client_frame), ("rest_request", rest_request)];
    for (target, run) in targets {
        let mut n = 0;
        for entry in std::fs::read_dir(seeds.join(target)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            run(&bytes);
            if target == "rest_request" {
                let parts: Vec<&[u8]> = bytes.splitn(4, |b| *b == 0).collect();
                let text = |b: &[u8]| std::str::from_utf8(b).unwrap().to_owned();
                let (method, path, query) = (text(parts[0]), text(parts[1]), text(parts[2]));
                let app = super::fuzz_app();
                let ok = crate::http_api::fuzz::accepted(&app, &method, &path, &query, parts[3], FUZZ_NOW);
                assert!(ok, "seed {method} {path} is signed correctly");
            }
            n += 1;
        }
        assert!(n >= 4, "{target} has its seeds");
    }
}
