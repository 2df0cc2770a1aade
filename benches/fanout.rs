//! Criterion micro-benchmark of the in-process fan-out: one pre-encoded publish pushed to the
//! queues of 1k and 10k subscribers of one channel (`Namespace::publish`). Only the publish is
//! timed; the receivers are drained between batches so no queue fills.
//! Run: `cargo bench --bench fanout`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytestring::ByteString;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use herald::protocol::{ChannelName, SocketId, server_event};
use herald::registry::{OutboundRx, Registry, outbound};

/// Queue capacity per subscriber; receivers are drained every `DRAIN_EVERY` publishes.
const QUEUE: usize = 1024;
const DRAIN_EVERY: u64 = 512;

fn fanout(c: &mut Criterion) {
    let data = format!(r#"{{"t":1,"s":1,"p":"{}"}}"#, "x".repeat(80));
    let frame: ByteString = server_event::channel_event("bench", "bench-0", &data).into();
    let mut g = c.benchmark_group("fanout");
    for n in [1_000usize, 10_000] {
        let registry = Registry::default();
        let ns = registry.namespace("app");
        let channel = ChannelName::parse("bench-0", 200).unwrap();
        let mut receivers: Vec<OutboundRx> = (0..n)
            .map(|i| {
                let (tx, rx) = outbound(SocketId::from_parts(i as u64 + 1, 7), QUEUE);
                assert!(ns.add_socket(&tx, 0));
                ns.join(&channel, &tx, None, 100);
                rx
            })
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("publish", n), |b| {
            let mut scratch = Vec::with_capacity(QUEUE);
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for i in 0..iters {
                    let started = Instant::now();
                    let d = ns.publish("bench-0", black_box(&frame), None);
                    timed += started.elapsed();
                    assert_eq!(d.delivered, n, "a queue filled up");
                    if i % DRAIN_EVERY == DRAIN_EVERY - 1 || i + 1 == iters {
                        for rx in &mut receivers {
                            rx.drain_ready(&mut scratch, QUEUE);
                            scratch.clear();
                        }
                    }
                }
                timed
            })
        });
    }
    g.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
