//! Criterion micro-benchmark of the in-process fan-out: one pre-encoded publish pushed to the
//! queues of 1k and 10k subscribers of one channel (`Namespace::publish`). Only the publish is
//! timed; the receivers are drained between batches so no queue fills.
//!
//! `fanout-cross-worker`: the same publish from a thread that is no worker, to 1k subscribers
//! whose session tasks wait on another thread's runtime: `direct` queues were made off any
//! worker, so every push wakes its task there (an `eventfd` write each); `batched` queues
//! belong to that thread's worker, so their wakes go to its mailbox in one batch
//! (`registry::wake`). Only the publisher's side is timed.
//! Run: `cargo bench --bench fanout`.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// 1k receivers on a worker thread, each looping on its queue; their queues made on that
/// thread's worker (`batched`) or before it became one (`direct`).
fn cross_worker(c: &mut Criterion) {
    let data = format!(r#"{{"t":1,"s":1,"p":"{}"}}"#, "x".repeat(80));
    let frame: ByteString = server_event::channel_event("bench", "bench-0", &data).into();
    let mut g = c.benchmark_group("fanout-cross-worker");
    const N: usize = 1_000;
    for (mode, batched) in [("direct", false), ("batched", true)] {
        let registry = Registry::default();
        let ns = registry.namespace("app");
        let channel = ChannelName::parse("bench-0", 200).unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let ns_worker = ns.clone();
        let consumed = Arc::new(AtomicUsize::new(0));
        let consumed_worker = consumed.clone();
        let worker = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let queues: Vec<_> = (0..N)
                    .map(|i| {
                        if batched && i == 0 {
                            herald::registry::wake::enter_worker();
                        }
                        outbound(SocketId::from_parts(i as u64 + 1, 9), QUEUE)
                    })
                    .collect();
                for (tx, mut rx) in queues {
                    assert!(ns_worker.add_socket(&tx, 0));
                    ns_worker.join(&channel, &tx, None, 100);
                    let consumed = consumed_worker.clone();
                    tokio::task::spawn_local(async move {
                        while let herald::registry::Next::Frame(_) = rx.next().await {
                            consumed.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                    std::mem::forget(tx);
                }
                ready_tx.send(()).unwrap();
                let _ = stop_rx.await;
            });
        });
        ready_rx.recv().unwrap();
        g.throughput(Throughput::Elements(N as u64));
        g.bench_function(BenchmarkId::new(mode, N), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let before = consumed.load(Ordering::Relaxed);
                    let started = Instant::now();
                    let d = ns.publish("bench-0", black_box(&frame), None);
                    timed += started.elapsed();
                    assert_eq!(d.delivered, N, "a queue filled up");
                    // Untimed: every receiver took its frame (and registered again).
                    while consumed.load(Ordering::Relaxed) < before + N {
                        std::thread::yield_now();
                    }
                }
                timed
            });
        });
        let _ = stop_tx.send(());
        worker.join().unwrap();
    }
    g.finish();
}

criterion_group!(benches, fanout, cross_worker);
criterion_main!(benches);
