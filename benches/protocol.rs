//! Criterion micro-benchmarks of the pure protocol hot path: parsing client frames, encoding
//! server frames, and verifying REST and channel signatures. Run: `cargo bench --bench protocol`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald::protocol::{self, server_event, signature};
use serde_json::value::RawValue;

const KEY: &str = "278d425bdf160c739803";
const SECRET: &str = "7ad3773142a6692b25b8";
const SOCKET_ID: &str = "123456.7890123";

fn parse(c: &mut Criterion) {
    let auth = signature::auth_token(KEY, SECRET, &signature::channel_string(SOCKET_ID, "private-orders.1"));
    let subscribe =
        format!(r#"{{"event":"pusher:subscribe","data":{{"auth":"{auth}","channel":"private-orders.1"}}}}"#);
    let client_event = r#"{"event":"client-typing","channel":"private-chat.1","data":{"name":"Ann","typing":true}}"#;
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("subscribe_private", |b| b.iter(|| protocol::parse(black_box(&subscribe)).unwrap()));
    g.bench_function("client_event", |b| b.iter(|| protocol::parse(black_box(client_event)).unwrap()));
    g.bench_function("ping", |b| b.iter(|| protocol::parse(black_box(r#"{"event":"pusher:ping","data":{}}"#))));
    g.finish();
}

fn encode(c: &mut Criterion) {
    let data = format!(r#"{{"order":{{"id":1,"status":"shipped","note":"{}"}}}}"#, "x".repeat(60));
    let ids: Vec<String> = (0..100).map(|i| format!("user-{i}")).collect();
    let infos: Vec<Box<RawValue>> = (0..100)
        .map(|i| RawValue::from_string(format!(r#"{{"name":"Member {i}","avatar":"/a/{i}.png"}}"#)).unwrap())
        .collect();
    let roster: Vec<server_event::RosterEntry<'_>> =
        ids.iter().zip(&infos).map(|(id, info)| (id.as_str(), Some(&**info))).collect();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("channel_event_100b", |b| {
        b.iter(|| server_event::channel_event(black_box("App\\Events\\OrderShipped"), "private-orders.1", &data))
    });
    g.bench_function("presence_snapshot_100", |b| {
        b.iter(|| server_event::presence_subscription_succeeded(black_box("presence-room.1"), &roster))
    });
    g.bench_function("member_added", |b| {
        b.iter(|| server_event::member_added(black_box("presence-room.1"), "user-1", Some(&*infos[1])))
    });
    g.finish();
}

fn verify(c: &mut Criterion) {
    let body = format!(
        r#"{{"name":"App\\Events\\OrderShipped","data":"{{\"order\":{{\"id\":1}}}}","channels":["private-orders.1"],"socket_id":"{SOCKET_ID}"}}"#
    );
    let md5 = signature::body_md5(body.as_bytes());
    let params: Vec<(String, String)> =
        [("auth_key", KEY), ("auth_timestamp", "1353088179"), ("auth_version", "1.0"), ("body_md5", md5.as_str())]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
    let sig = signature::sign(SECRET, &signature::rest_string("POST", "/apps/3/events", &params));
    let channel_auth = signature::auth_token(KEY, SECRET, &signature::channel_string(SOCKET_ID, "private-orders.1"));
    let channel_data = r#"{"user_id":"10","user_info":{"name":"Mr. Channels"}}"#;
    let presence_auth =
        signature::auth_token(KEY, SECRET, &signature::presence_string(SOCKET_ID, "presence-room.1", channel_data));
    let mut g = c.benchmark_group("verify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rest_signature", |b| {
        b.iter(|| {
            // What a trigger's check costs: body digest, canonical string, HMAC, compare.
            let md5_ok = signature::body_md5(black_box(body.as_bytes())) == md5;
            let s = signature::rest_string("POST", "/apps/3/events", black_box(&params));
            md5_ok && signature::verify(SECRET, &s, &sig)
        })
    });
    g.bench_function("private_channel_auth", |b| {
        b.iter(|| {
            let s = signature::channel_string(black_box(SOCKET_ID), "private-orders.1");
            signature::verify_auth(KEY, SECRET, black_box(&channel_auth), &s)
        })
    });
    g.bench_function("presence_channel_auth", |b| {
        b.iter(|| {
            let s = signature::presence_string(black_box(SOCKET_ID), "presence-room.1", channel_data);
            signature::verify_auth(KEY, SECRET, black_box(&presence_auth), &s)
        })
    });
    g.finish();
}

criterion_group!(benches, parse, encode, verify);
criterion_main!(benches);
