//! Smoke test of the `herald-bench` load generator: every scenario at tiny sizes against an
//! in-process Herald, checking that it exits 0 and that its JSON line is sane. Seconds, not
//! minutes; timing targets live in `benches/`, never here.
mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// Generous: a scenario at these sizes takes 1–3 s even on a busy 2-core machine.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Runs `herald-bench <args…>` against `s` and returns the parsed JSON line (the last line).
async fn bench(s: &TestServer, secret: &str, args: &[&str]) -> Value {
    let port = s.addr().port().to_string();
    let pid = std::process::id().to_string();
    let common = [
        "--port",
        &port,
        "--app-id",
        APP_ID,
        "--key",
        KEY,
        "--secret",
        secret,
        "--server-pid",
        &pid,
        "--duration",
        "1",
        "--progress",
        "0",
    ];
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald-bench")).args(common).args(args).output();
    let out = tokio::time::timeout(RUN_LIMIT, run).await.expect("bench finishes in time").expect("bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "herald-bench {args:?} failed: {}\n{stdout}\n{stderr}", out.status);
    let last = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"));
    assert_eq!(v["tool"], "herald-bench");
    assert_eq!(v["schema"], 1);
    assert!(stdout.contains("metric"), "no table in:\n{stdout}");
    v
}

fn metric(v: &Value, name: &str) -> f64 {
    v["metrics"][name].as_f64().unwrap_or_else(|| panic!("no metric {name} in {v}"))
}

#[tokio::test]
async fn fanout_at_a_low_rate_loses_nothing() {
    let s = TestServer::default().await;
    let v = bench(&s, SECRET, &["fanout", "-c", "20", "-k", "2", "-r", "40", "-p", "2"]).await;
    assert_eq!(v["scenario"], "fanout");
    assert_eq!(metric(&v, "subscribers_ready"), 20.0);
    let published = metric(&v, "events_published");
    assert!(published >= 20.0, "{v}");
    assert_eq!(metric(&v, "deliveries_expected"), published * 10.0);
    assert_eq!(metric(&v, "deliveries"), metric(&v, "deliveries_expected"), "{v}");
    assert_eq!(metric(&v, "loss"), 0.0);
    assert_eq!(metric(&v, "errors"), 0.0, "{v}");
    assert_eq!(metric(&v, "rest_connections"), 2.0, "keep-alive: one connection per publisher");
    assert!(metric(&v, "latency_p99_ms") > 0.0);
    assert!(metric(&v, "latency_p50_ms") <= metric(&v, "latency_max_ms"));
    assert!(metric(&v, "server_cpu_us_per_delivery") >= 0.0);
    assert!(metric(&v, "server_rss_kb") > 0.0);
    assert!(metric(&v, "generator_cpu_ms") >= 0.0);
    let buckets = v["details"]["latency_buckets"].as_array().expect("latency buckets");
    let counted: f64 = buckets.iter().map(|b| b[1].as_f64().unwrap_or(0.0)).sum();
    assert_eq!(counted, metric(&v, "latency_samples"), "every sample in a bucket: {v}");
    assert!(v["details"]["deliveries_per_sec_samples"].as_array().is_some_and(|s| !s.is_empty()), "{v}");
    assert!(v["details"]["rss_samples"].as_array().is_some_and(|s| s.len() >= 2), "{v}");
    assert!(v["details"]["machine"]["cores"].as_u64().is_some_and(|c| c >= 1), "{v}");
    report_renders(&v).await;
}

/// `herald-bench report` on `v` saved as compare.sh saves it: a page with a chart, and the
/// charts as files.
async fn report_renders(v: &Value) {
    let dir = std::env::temp_dir().join(format!("herald-bench-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join(format!("{}.herald.1.json", v["scenario"].as_str().unwrap()));
    std::fs::write(&json, v.to_string()).unwrap();
    let (html, svgs) = (dir.join("report.html"), dir.join("svg"));
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald-bench"))
        .arg("report")
        .arg("--out")
        .arg(&html)
        .arg("--svg-dir")
        .arg(&svgs)
        .arg(&json)
        .output();
    let out = tokio::time::timeout(RUN_LIMIT, run).await.expect("report finishes in time").expect("report runs");
    assert!(out.status.success(), "herald-bench report failed: {}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(&html).expect("report.html written");
    let charts = std::fs::read_dir(&svgs).expect("svg dir written").count();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(page.contains("<svg") && page.contains("deliveries_per_sec"), "{page}");
    assert_eq!(page.matches("<svg").count(), charts, "each chart in the page is also a file");
    assert!(charts >= 3, "latency histogram, deliveries/s and RSS over time: {charts}");
}

#[tokio::test]
async fn connect_opens_and_holds_every_connection() {
    let s = TestServer::default().await;
    let v = bench(&s, SECRET, &["connect", "-c", "50", "--settle", "0.2"]).await;
    assert_eq!(metric(&v, "connected"), 50.0, "{v}");
    assert_eq!(metric(&v, "errors"), 0.0);
    assert_eq!(metric(&v, "disconnects_during_hold"), 0.0);
    assert!(metric(&v, "connects_per_sec") > 0.0);
    assert!(metric(&v, "server_rss_per_conn_bytes") >= 0.0);
}

#[tokio::test]
async fn presence_members_see_each_other_join_and_leave() {
    let s = TestServer::default().await;
    // Concurrent joins: every member must learn every other exactly once (snapshot or member_added).
    let v = bench(&s, SECRET, &["presence", "-c", "10"]).await;
    assert_eq!(metric(&v, "joined"), 10.0, "{v}");
    assert_eq!(metric(&v, "member_added"), 45.0, "{v}");
    assert_eq!(metric(&v, "incomplete_rosters"), 0.0, "{v}");
    assert_eq!(metric(&v, "member_removed_at_stayers"), 25.0, "{v}");
    assert_eq!(metric(&v, "phantom_removals"), 0.0, "no member removed twice, nor one never added: {v}");
    assert!(metric(&v, "join_latency_p99_ms") > 0.0);
    assert_eq!(metric(&v, "errors"), 0.0);
}

#[tokio::test]
async fn client_events_arrive_within_the_rate_limit() {
    let s = TestServer::default().await;
    let v = bench(&s, SECRET, &["client-events", "-p", "3", "-r", "5"]).await;
    assert_eq!(metric(&v, "sockets_ready"), 6.0, "{v}");
    let sent = metric(&v, "messages_sent");
    assert!(sent >= 6.0, "{v}");
    assert_eq!(metric(&v, "messages_received"), sent, "{v}");
    assert_eq!(metric(&v, "rate_limited"), 0.0);
    assert_eq!(metric(&v, "errors"), 0.0);
}

#[tokio::test]
async fn http_triggers_reuse_their_connections() {
    let s = TestServer::default().await;
    let v = bench(&s, SECRET, &["http", "-c", "2", "-r", "200"]).await;
    assert!(metric(&v, "requests_ok") >= 50.0, "{v}");
    assert_eq!(metric(&v, "non_200"), 0.0);
    assert_eq!(metric(&v, "tcp_connections"), 2.0, "{v}");
    assert!(metric(&v, "server_cpu_us_per_request") >= 0.0);
}

#[tokio::test]
async fn refused_triggers_are_counted_not_fatal() {
    let s = TestServer::default().await;
    let v = bench(&s, "wrong-secret", &["http", "-c", "1", "-r", "20"]).await;
    assert_eq!(metric(&v, "requests_ok"), 0.0);
    assert!(metric(&v, "non_200") > 0.0, "{v}");
    assert!(v["errors"][0].as_str().unwrap_or_default().contains("401"), "{v}");
}

#[tokio::test]
async fn flood_leaves_bystander_round_trips_unharmed() {
    let s = TestServer::default().await;
    // The default inbound budget closes the flooder (4100) within the second: that is expected.
    let v = bench(&s, SECRET, &["flood", "--flooders", "1", "--bystanders", "3", "--interval-ms", "20"]).await;
    assert_eq!(v["scenario"], "flood");
    assert_eq!(metric(&v, "bystanders_ready"), 3.0, "{v}");
    assert!(metric(&v, "bystander_round_trips") > 0.0, "{v}");
    assert_eq!(metric(&v, "bystander_timeouts"), 0.0, "{v}");
    assert_eq!(metric(&v, "bystander_disconnects"), 0.0, "{v}");
    assert_eq!(metric(&v, "errors"), 0.0, "{v}");
    assert!(metric(&v, "rtt_p50_ms") <= metric(&v, "rtt_max_ms"), "{v}");
    assert!(metric(&v, "flooder_messages_written") > 0.0, "{v}");
    assert!(metric(&v, "flooder_connections") >= 1.0, "{v}");
    assert!(metric(&v, "flooder_closes_code_4100") >= 1.0, "the flooder outran its budget: {v}");
    assert!(metric(&v, "server_cpu_ms") >= 0.0);
}

#[tokio::test]
async fn churn_cycles_and_the_gauges_return_to_zero() {
    let s = TestServer::default().await;
    let url = format!("{}/metrics", s.metrics_base);
    let args = [
        "churn",
        "-c",
        "6",
        "--channels-per-user",
        "3",
        "--channel-pool",
        "10",
        "--presence-pool",
        "2",
        "--hold-min-ms",
        "50",
        "--hold-max-ms",
        "200",
        "--rate",
        "20",
        "--sample-secs",
        "0.3",
        "--settle-secs",
        "10",
        "--metrics-url",
        &url,
    ];
    let v = bench(&s, SECRET, &args).await;
    assert_eq!(v["scenario"], "churn");
    assert!(metric(&v, "cycles") > 0.0, "{v}");
    assert!(metric(&v, "clean_leaves") > 0.0 && metric(&v, "abrupt_leaves") > 0.0, "{v}");
    assert_eq!(metric(&v, "cycles"), metric(&v, "clean_leaves") + metric(&v, "abrupt_leaves"), "{v}");
    assert!(metric(&v, "events_published") > 0.0, "{v}");
    assert!(metric(&v, "deliveries") > 0.0, "{v}");
    assert_eq!(metric(&v, "errors"), 0.0, "{v}");
    assert!(metric(&v, "herald_connections_peak") > 0.0, "the gauges were sampled: {v}");
    assert_eq!(v["details"]["gauges_at_baseline"], true, "{v}");
    for g in ["herald_connections", "herald_channels", "herald_presence_members", "herald_open_sockets"] {
        assert_eq!(metric(&v, &format!("{g}_end")), 0.0, "{g}: {v}");
    }
    let rss = v["details"]["rss_samples"].as_array().expect("rss samples");
    assert!(rss.len() >= 3, "baseline, samples and final: {v}");
    assert!(metric(&v, "server_rss_peak_kb") >= metric(&v, "server_rss_baseline_kb"), "{v}");
}
