//! Load benchmark: starts Herald in this process (127.0.0.1, free port, the development app)
//! and runs the `herald-bench` generator against it, one scenario after another, at sizes
//! that fit a 2-core machine. The generator is a separate process, so the CPU and RSS read
//! for this process's PID are Herald's alone.
//!
//! Run: `cargo bench --bench load` (all), `cargo bench --bench load -- fanout` (names
//! containing "fanout"), `-- --quick` for 2-second phases. Under `cargo test` it does nothing.

use std::process::Stdio;

use herald::config::{AppConfig, Config};
use herald::server;
use serde_json::Value;

/// One generator run: a label and the scenario's arguments.
struct Case {
    name: &'static str,
    args: &'static [&'static str],
    /// Metrics shown in the summary table.
    show: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "fanout-1k-100eps",
        args: &["fanout", "-c", "1000", "-k", "1", "-r", "100", "-p", "2"],
        show: &["deliveries_per_sec", "loss", "latency_p50_ms", "latency_p99_ms", "server_cpu_us_per_delivery"],
    },
    Case {
        name: "fanout-1k-saturate",
        args: &["fanout", "-c", "1000", "-k", "1", "-r", "0", "-p", "4"],
        show: &["deliveries_per_sec", "loss", "latency_p99_ms", "server_cpu_us_per_delivery", "generator_cpu_pct"],
    },
    Case {
        name: "connect-5k",
        args: &["connect", "-c", "5000"],
        show: &["connects_per_sec", "errors", "connect_latency_p99_ms", "server_rss_per_conn_bytes"],
    },
    Case {
        name: "presence-100",
        args: &["presence", "-c", "100"],
        show: &["join_latency_p50_ms", "join_latency_p99_ms", "member_added", "incomplete_rosters"],
    },
    Case {
        name: "client-events-100pairs",
        args: &["client-events", "-p", "100", "-r", "10"],
        show: &["msgs_per_sec", "loss", "latency_p50_ms", "latency_p99_ms", "server_cpu_us_per_message"],
    },
    Case {
        name: "http-16",
        args: &["http", "-c", "16"],
        show: &["requests_per_sec", "latency_p50_ms", "latency_p99_ms", "tcp_connections", "server_cpu_us_per_request"],
    },
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("load: skipped (run it with `cargo bench --bench load`)");
        return;
    }
    // Herald holds every generator connection in this process.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let quick = args.iter().any(|a| a == "--quick");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let cases: Vec<&Case> =
        CASES.iter().filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str()))).collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(&cases, quick));
}

async fn run(cases: &[&Case], quick: bool) {
    let mut config = Config::default();
    config.server.host = "127.0.0.1".into();
    config.server.port = 0;
    config.metrics.host = "127.0.0.1".into();
    config.metrics.port = 0;
    config.shutdown.drain_secs = 0;
    config.apps = vec![AppConfig::development()];
    let running = server::start(config).await.expect("herald starts");
    let port = running.addr.port().to_string();
    let pid = std::process::id().to_string();
    let duration = if quick { "2" } else { "10" };
    let mut results = Vec::new();
    for case in cases {
        eprintln!("\n== {} ({})", case.name, case.args.join(" "));
        let common = ["--port", &port, "--server-pid", &pid, "--duration", duration, "--progress", "2"];
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald-bench"))
            .args(common)
            .args(case.args)
            .stderr(Stdio::inherit())
            .output()
            .await
            .expect("herald-bench runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        print!("{stdout}");
        let json = stdout.lines().last().and_then(|l| serde_json::from_str::<Value>(l).ok());
        match (out.status.success(), json) {
            (true, Some(v)) => results.push((case, v)),
            (ok, _) => eprintln!("{}: generator failed (exit ok: {ok})", case.name),
        }
    }
    running.shutdown();
    running.wait().await;
    println!("\nsummary (Herald in-process, herald-bench as a separate process, {duration} s phases)");
    for (case, v) in results {
        let cells: Vec<String> =
            case.show.iter().map(|m| format!("{m}={}", v["metrics"].get(*m).unwrap_or(&Value::Null))).collect();
        println!("  {:<24} {}", case.name, cells.join("  "));
    }
}
