//! Graceful shutdown: `/ready` fails, upgrades get 503, open sockets get 4200.

mod common;
use common::*;

#[tokio::test]
async fn drain_refuses_new_sockets_and_closes_open_ones_with_4200() {
    let mut cfg = config();
    cfg.shutdown.ready_grace_secs = 2;
    cfg.shutdown.drain_secs = 1;
    let s = TestServer::start(cfg).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut c = s.connect(KEY).await;
        c.subscribe("news").await;
        clients.push(c);
    }
    let ready = reqwest::get(format!("{}/ready", s.metrics_base)).await.unwrap();
    assert_eq!(ready.status(), 200);

    s.running.as_ref().unwrap().shutdown();

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let st = reqwest::get(format!("{}/ready", s.metrics_base)).await.unwrap().status();
        if st == 503 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "/ready never failed");
        tokio::task::yield_now().await;
    }
    let url = format!("{}/app/{KEY}?protocol=7", s.ws_base);
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected HTTP 503 while draining, got {other:?}"),
    }

    for c in &mut clients {
        let err = c.expect("pusher:error").await;
        assert_eq!(err["data"]["code"], 4200);
        assert_eq!(c.expect_close().await, Some(4200));
    }
    s.stop().await;
}

/// The binary: a second SIGTERM during the drain exits at once (status 130); logs go to stderr
/// without ANSI colour codes, since it is not a terminal.
#[tokio::test]
async fn a_second_signal_during_the_drain_exits_at_once() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = std::env::temp_dir().join(format!("herald-second-signal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("herald.toml");
    // A long grace period: without the second signal the drain would take ten minutes.
    let toml = "[server]\nhost = \"127.0.0.1\"\nport = 0\n[metrics]\nhost = \"127.0.0.1\"\nport = 0\n\
                [shutdown]\nready_grace_secs = 600\ndrain_secs = 600\n";
    std::fs::write(&file, toml).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--config")
        .arg(&file)
        .env_remove("HERALD_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut wait_for = async |needle: &str| loop {
        let line = tokio::time::timeout(WAIT, lines.next_line()).await.expect("a log line in time").unwrap();
        let line = line.unwrap_or_else(|| panic!("stderr ended before {needle:?}: {seen:?}"));
        seen.push(line.clone());
        if line.contains(needle) {
            return seen.clone();
        }
    };
    wait_for("herald listening").await;
    let kill = |pid: &str| std::process::Command::new("kill").args(["-TERM", pid]).status().unwrap();
    assert!(kill(&pid).success());
    let logged = wait_for("shutdown signal received").await;
    assert!(kill(&pid).success());
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("exits at once").unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(logged.iter().all(|l| !l.contains('\u{1b}')), "no ANSI codes in {logged:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
