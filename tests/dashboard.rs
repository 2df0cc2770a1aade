//! The Grafana dashboard (helm/herald/dashboards/herald.json) against a live Herald: every
//! metric a panel or a variable queries is on `/metrics`, with every label the queries filter
//! or group by. A labelled family is only exposed once one of its series was touched, so the
//! Herald runs everything the dashboard shows: the Redis bus, the PostgreSQL app store,
//! Laravel's redis broadcaster, socket.io and a webhook receiver, with real traffic on each,
//! and finally loses Redis so the cluster's failures are counted. The TLS row is checked
//! against a second Herald, one that terminates TLS ([server.tls], an rcgen certificate), after
//! a handshake that succeeds and one that fails.

mod common;
#[path = "dashboard/promql.rs"]
mod promql;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::hooks::{assert_valid, receiver};
use common::postgres::PostgresServer;
use common::redis::RedisServer;
use common::*;
use futures_util::{SinkExt, StreamExt};
use herald::config::{AppStoreDriver, Config};
use promql::{groupings, metrics_named, missing, panels, queries, selectors, split_row};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/helm/herald/dashboards/herald.json");

/// The collapsed row holding every TLS panel, checked against a Herald that terminates TLS.
const TLS_ROW: &str = "TLS";

/// What the TLS row must query, every one of them (and nothing else).
const TLS_METRICS: [&str; 3] = [
    "herald_tls_handshakes_total",
    "herald_tls_certificate_reloads_total",
    "herald_tls_certificate_loaded_timestamp_seconds",
];

/// What each area of the dashboard must query (any one of the names, per area).
const AREAS: [(&str, &[&str]); 12] = [
    ("connections", &["herald_connections"]),
    ("connects and disconnects", &["herald_connects_total", "herald_disconnects_total"]),
    ("deliveries", &["herald_ws_messages_total"]),
    ("REST API calls", &["herald_api_requests_total"]),
    ("REST API latency", &["herald_api_request_duration_seconds_bucket"]),
    ("refusals", &["herald_rejected_total"]),
    ("slow consumers", &["herald_slow_consumer_disconnects_total"]),
    ("webhooks", &["herald_webhook_requests_total", "herald_webhook_events_total"]),
    ("cluster bus", &["herald_bus_up", "herald_cluster_failures_total", "herald_cluster_nodes"]),
    ("usage per app", &["herald_app_messages_total"]),
    ("app store, socket.io and ingest", &["herald_app_store_events_total", "herald_socketio_auth_total"]),
    ("TLS", &TLS_METRICS),
];

fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).expect("the dashboard file");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

#[test]
fn the_dashboard_covers_every_area_with_sound_panels() {
    let d = dashboard();
    assert_eq!((d["uid"].as_str(), d["title"].as_str()), (Some("herald"), Some("Herald")));
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 36), "a current schemaVersion");
    let vars: BTreeMap<&str, &Value> =
        d["templating"]["list"].as_array().unwrap().iter().map(|v| (v["name"].as_str().unwrap(), v)).collect();
    assert_eq!(
        (vars["datasource"]["type"].as_str(), vars["datasource"]["query"].as_str()),
        (Some("datasource"), Some("prometheus"))
    );
    assert!(vars["instance"]["multi"] == true && vars["instance"]["includeAll"] == true, "per-node figures");

    let all = panels(&d["panels"]);
    let ids: BTreeSet<u64> = all.iter().map(|p| p["id"].as_u64().expect("a panel id")).collect();
    assert_eq!(ids.len(), all.len(), "panel ids are unique");
    assert!(
        all.iter().any(|p| p["type"] == "row" && p["collapsed"] == true && !p["panels"].as_array().unwrap().is_empty())
    );
    for p in all.iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap();
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}: the datasource variable");
        assert!(p["fieldConfig"]["defaults"]["unit"].is_string(), "{title}: a unit");
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{title}: targets"));
        assert!(!targets.is_empty(), "{title}: a query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let expr = t["expr"].as_str().unwrap();
            // Ranges follow Grafana's interval, never a fixed window.
            for range in expr.split('[').skip(1).map(|r| r.split(']').next().unwrap()) {
                assert!(["$__rate_interval", "$__range"].contains(&range), "{title}: [{range}] in {expr}");
            }
            if targets.len() > 1 || expr.contains(" by (") {
                assert!(t["legendFormat"].as_str().is_some_and(|l| !l.is_empty()), "{title}: a legend for {expr}");
            }
        }
    }

    let exprs = queries(&d);
    let named: BTreeSet<String> = exprs.iter().flat_map(|e| selectors(e)).map(|(m, _)| m).collect();
    for (area, metrics) in AREAS {
        assert!(metrics.iter().any(|m| named.contains(*m)), "no panel for {area} (one of {metrics:?})");
    }
    assert!(exprs.iter().any(|e| e.contains("sum by (instance)")), "per-node figures");
    assert!(exprs.iter().any(|e| e.contains("by (reason)")), "refusals by reason");
    assert!(exprs.iter().any(|e| e.contains("by (operation)")), "cluster failures by operation");
    assert!(exprs.iter().any(|e| e.starts_with("histogram_quantile(0.99")), "a latency quantile");

    // The TLS row: collapsed, each TLS metric in it and none elsewhere, so checking the rest
    // against one Herald and the row against a TLS one covers every panel.
    let (rest, tls) = split_row(&d, TLS_ROW);
    let row = &tls["panels"][0];
    assert!(row["collapsed"] == true, "the TLS row is collapsed (most deployments terminate TLS elsewhere)");
    assert_eq!(metrics_named(&tls), TLS_METRICS.iter().map(|m| (*m).to_owned()).collect(), "the TLS row's metrics");
    let elsewhere: Vec<String> = metrics_named(&rest).into_iter().filter(|m| m.starts_with("herald_tls_")).collect();
    assert!(elsewhere.is_empty(), "TLS metrics outside the TLS row: {elsewhere:?}");
    let tls_exprs = queries(&tls);
    let find = |metric: &str| -> &String {
        let mut found = tls_exprs.iter().filter(|e| e.contains(metric));
        let expr = found.next().unwrap_or_else(|| panic!("a TLS panel on {metric}"));
        assert!(found.next().is_none(), "one TLS panel on {metric}");
        expr
    };
    let handshakes = find("herald_tls_handshakes_total");
    assert!(
        handshakes.contains("by (outcome)") && handshakes.contains("rate("),
        "handshakes/s by outcome: {handshakes}"
    );
    let reloads = find("herald_tls_certificate_reloads_total");
    assert!(
        reloads.contains("outcome)") && reloads.contains("increase(") && reloads.contains("[$__range]"),
        "certificate loads by outcome over the range: {reloads}"
    );
    let age = find("herald_tls_certificate_loaded_timestamp_seconds");
    assert!(age.starts_with("time() - ") && age.contains("by (instance)"), "certificate age per node: {age}");
    // Nodes without TLS expose the gauge as 0: kept out, or their "age" would be 56 years.
    assert!(age.contains("> 0"), "nodes without TLS are left out: {age}");
}

#[test]
fn the_query_parser_finds_names_and_labels() {
    let expr = r#"histogram_quantile(0.99, sum by (le, endpoint) (rate(herald_a_bucket{instance=~"$instance", x="a,\"b"}[$__rate_interval])))"#;
    assert_eq!(selectors(expr), vec![("herald_a_bucket".to_owned(), vec!["instance".to_owned(), "x".to_owned()])]);
    assert_eq!(
        groupings(expr),
        vec![(vec!["le".to_owned(), "endpoint".to_owned()], vec!["herald_a_bucket".to_owned()])]
    );
    let var = r#"label_values(herald_b{instance=~"$instance"}, app_id)"#;
    assert_eq!(groupings(var), vec![(vec!["app_id".to_owned()], vec!["herald_b".to_owned()])]);
    assert!(selectors(r#"up{job="herald_c"} + my_herald_d"#).is_empty());
    let text = "# TYPE herald_b gauge\nherald_b{app_id=\"a\"} 1\nherald_e 0\n";
    assert!(
        missing(&json!({"panels": [], "templating": {"list": [{"type": "query", "query": var}]}}), text).is_empty()
    );
    let d = json!({"panels": [{"type": "row", "panels": [{"targets": [{"expr": "sum by (reason) (herald_e) + herald_f"}]}]}]});
    assert_eq!(
        missing(&d, text),
        [
            "herald_e: no label `reason` (queried in `sum by (reason) (herald_e) + herald_f`)",
            "herald_f: no sample on /metrics"
        ]
    );
}

/// One node on the Redis bus, with its apps in PostgreSQL (the test's row names its webhook
/// target), Laravel's redis broadcaster read from the same Redis, and socket.io on.
fn everything(redis_url: &str, pg_url: &str) -> Config {
    let mut c = cluster_config(redis_url);
    c.apps = Vec::new();
    c.app_store.driver = AppStoreDriver::Postgres;
    c.app_store.database_url = pg_url.to_owned();
    c.app_store.timeout_ms = 1_000;
    c.ingest.enabled = true;
    c.ingest.app_id = APP_ID.into();
    c.socketio.enabled = true;
    c.socketio.app_id = APP_ID.into();
    c.webhooks.batch_ms = 10;
    c
}

/// Polls `/metrics` until the series `name{labels}` is above 0, for at most `WAIT`.
async fn wait_positive(s: &TestServer, name: &str, labels: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while series(&s.metrics().await, name, labels) <= 0.0 {
        assert!(tokio::time::Instant::now() < deadline, "{name}{{{labels}}} stayed at 0");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The next socket.io frame starting with `want` (answering Engine.IO pings), by `deadline`.
async fn sio_frame(ws: &mut Socket, deadline: tokio::time::Instant, want: &str) -> String {
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.expect("a socket.io frame in time") {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => ws.send(Message::text("3")).await.unwrap(),
            Some(Ok(Message::Text(t))) if t.as_str().starts_with(want) => return t.as_str().to_owned(),
            Some(Ok(_)) => {}
            other => panic!("socket.io ended while waiting for {want}: {other:?}"),
        }
    }
}

/// A socket.io client (Engine.IO 4 over WebSocket) subscribing to a private channel of an
/// app without an auth endpoint: refused (403), and counted as `not_configured`.
async fn socketio_private_subscription_refused(s: &TestServer) {
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", s.addr());
    let (mut ws, _) = tokio::time::timeout(WAIT, connect_async(url)).await.expect("in time").expect("socket.io");
    let deadline = tokio::time::Instant::now() + WAIT;
    sio_frame(&mut ws, deadline, "0{").await;
    ws.send(Message::text("40")).await.unwrap();
    sio_frame(&mut ws, deadline, "40").await;
    ws.send(Message::text(r#"42["subscribe",{"channel":"private-dashboard"}]"#)).await.unwrap();
    let refused = sio_frame(&mut ws, deadline, r#"42["subscription_error""#).await;
    assert_eq!(refused, r#"42["subscription_error","private-dashboard",403]"#);
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_is_on_a_live_herald() {
    let d = dashboard();
    let mut redis = RedisServer::start().await;
    let pg = PostgresServer::start();
    let mut hooks = receiver(0, 200).await;
    let mut db = pg.client().await;
    herald::apps::postgres::schema::migrate(&mut db).await.unwrap();
    let settings = json!({"client_events": true, "webhooks": [{"url": hooks.url}]});
    db.execute(
        "INSERT INTO herald_apps (id, key, secret, settings) VALUES ($1, $2, $3, $4)",
        &[&APP_ID, &KEY, &SECRET, &settings],
    )
    .await
    .unwrap();
    let s = TestServer::start(everything(&redis.url(), &pg.url())).await;
    wait_series(&s, r#"herald_app_store_events_total{event="listening"} "#, 1.0).await;

    // A subscriber (its app's series, a bus subscription, a channel_occupied webhook) and a
    // REST publish over the bus to it.
    let mut c = s.connect(KEY).await;
    c.subscribe("news").await;
    let (status, _) = s.api().trigger("news", "posted", "{}").await;
    assert_eq!(status, 200);
    c.expect("posted").await;
    let hook = hooks.next().await;
    assert_valid(&hook);
    assert_eq!(hook.events()[0], json!({"name": "channel_occupied", "channel": "news"}));
    wait_positive(&s, "herald_webhook_requests_total", r#"app_id="test-app",outcome="sent""#).await;

    // Refusals: a REST request without a channel, and an unknown app key.
    let (status, _) = s.api().post("/events", &json!({"name": "e", "data": "{}"})).await;
    assert_eq!(status, 400);
    let mut stranger = s.connect_raw("no-such-key", "protocol=7").await;
    stranger.expect_error(Some(4001)).await;

    // A broadcast from Laravel's redis broadcaster reaches the subscriber.
    let payload = r#"{"event":"shipped","data":{"id":1},"socket":null}"#;
    let reply = redis.command(&["PUBLISH", "laravel_database_news", payload]).await;
    assert!(reply.starts_with(':'), "{reply}");
    c.expect("shipped").await;
    wait_positive(&s, "herald_ingest_messages_total", r#"outcome="delivered""#).await;

    socketio_private_subscription_refused(&s).await;
    wait_positive(&s, "herald_socketio_auth_total", r#"outcome="not_configured""#).await;

    // The bus lost: a REST publish is refused (503), and the failure counted by operation.
    redis.kill();
    let (status, _) = s.api().trigger("news", "lost", "{}").await;
    assert_eq!(status, 503);
    wait_positive(&s, "herald_cluster_failures_total", r#"operation="publish""#).await;

    let text = s.metrics().await;
    // The TLS row is checked against a TLS node (below); this one serves plain ws://, so its
    // certificate gauge is 0, which the age panel leaves out.
    let (without_tls, _) = split_row(&d, TLS_ROW);
    let missing = missing(&without_tls, &text);
    assert!(
        missing.is_empty(),
        "the dashboard queries what /metrics lacks:\n{}\n\n/metrics:\n{text}",
        missing.join("\n")
    );
    assert_eq!(unlabelled(&text, "herald_tls_certificate_loaded_timestamp_seconds"), 0.0, "no certificate here");
    assert!(!text.contains("herald_tls_handshakes_total{"), "no handshake on a plain port");
    s.stop().await;
}

/// A fresh certificate for localhost, written as tls.crt and tls.key (a mounted
/// kubernetes.io/tls Secret's names) in a directory of its own.
fn write_cert(name: &str) -> (PathBuf, CertificateDer<'static>) {
    let dir = std::env::temp_dir().join(format!("herald-dashboard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), signing_key.serialize_pem()).unwrap();
    (dir, cert.der().clone())
}

/// A node terminating TLS on its main port with the certificate in `dir`.
fn tls_node(dir: &Path) -> Config {
    let mut c = config();
    c.server.tls.cert_file = dir.join("tls.crt").display().to_string();
    c.server.tls.key_file = dir.join("tls.key").display().to_string();
    c
}

/// A rustls client trusting exactly `root`, offering HTTP/1.1 (as browsers and pusher-js do).
fn trusting(root: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(cfg))
}

#[tokio::test]
async fn every_metric_the_tls_row_queries_is_on_a_tls_herald() {
    let (_, tls) = split_row(&dashboard(), TLS_ROW);
    let (dir, cert) = write_cert("tls");
    let s = TestServer::start(tls_node(&dir)).await;

    // The certificate loaded at startup: counted, and its time set.
    let text = s.metrics().await;
    assert_eq!(series(&text, "herald_tls_certificate_reloads_total", r#"outcome="loaded""#), 1.0);
    let loaded = unlabelled(&text, "herald_tls_certificate_loaded_timestamp_seconds");
    let now = now_secs() as f64;
    assert!(loaded > 0.0 && (now - loaded).abs() <= WAIT.as_secs_f64() + 1.0, "loaded at {loaded}, now {now}");

    // One handshake that succeeds, from a client trusting the certificate.
    let tcp = TcpStream::connect(s.addr()).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let stream = tokio::time::timeout(WAIT, trusting(&cert).connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("the handshake succeeds");
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    wait_positive(&s, "herald_tls_handshakes_total", r#"outcome="ok""#).await;

    // Plain HTTP on the TLS port (what an ingress left on backend-protocol HTTP sends): not
    // a ClientHello, so a failed handshake, and the connection closed.
    let mut plain = TcpStream::connect(s.addr()).await.unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, plain.read_to_end(&mut rest)).await.expect("closed in time").ok();
    wait_positive(&s, "herald_tls_handshakes_total", r#"outcome="failed""#).await;

    let text = s.metrics().await;
    assert_eq!(series(&text, "herald_tls_handshakes_total", r#"outcome="ok""#), 1.0, "{text}");
    assert_eq!(series(&text, "herald_tls_handshakes_total", r#"outcome="failed""#), 1.0, "{text}");
    let missing = missing(&tls, &text);
    assert!(
        missing.is_empty(),
        "the TLS row queries what /metrics lacks:\n{}\n\n/metrics:\n{text}",
        missing.join("\n")
    );
    drop(stream);
    s.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
