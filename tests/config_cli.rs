//! The `herald` binary's configuration commands.

use std::process::Command;

fn herald() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.env_remove("HERALD_CONFIG");
    c
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    // Under target/, not /tmp: nothing of a test run is left outside the build directory.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("herald-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_config_accepts_the_documented_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/herald.toml");
    let out = herald().args(["check-config", path]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}

#[test]
fn check_config_reports_line_and_key_and_exits_1() {
    let p = write("bad.toml", "[server]\nport = 6001\nprot = 1\n");
    let out = herald().args(["check-config", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("server.prot"), "{err}");
}

#[test]
fn check_config_reports_validation_problems() {
    let p = write(
        "dup.toml",
        "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n\n[[apps]]\nid = \"b\"\nkey = \"k\"\nsecret = \"s\"\n",
    );
    let out = herald().args(["check-config", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apps[1].key") && err.contains("line 8"), "{err}");
}

#[test]
fn environment_overlays_the_file() {
    let p = write("ok.toml", "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n");
    let out = herald()
        .args(["check-config", p.to_str().unwrap()])
        .env("HERALD_WEBSOCKET__ACTIVITY_TIMEOUT_SECS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HERALD_WEBSOCKET__ACTIVITY_TIMEOUT_SECS"), "{err}");
}

/// A secret of the wrong type is named by its key, never shown; nor is a webhook token.
#[test]
fn check_config_never_prints_a_secret() {
    let p = write(
        "secret.toml",
        "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = 31415926535\n\n[[apps.webhooks]]\nurl = \"https://h.example/\"\n\
         headers = { \"X-Token\" = 27182818284 }\n",
    );
    let out = herald().args(["check-config", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apps[0].secret"), "{err}");
    assert!(!err.contains("31415926535") && !err.contains("27182818284"), "{err}");
}

/// Numbers have ceilings: a timeout that would overflow a deadline is refused with the bound.
#[test]
fn check_config_refuses_numbers_above_their_maximum() {
    let p = write("huge.toml", "[websocket]\npong_timeout_secs = 9223372036854775807\n");
    let out = herald().args(["check-config", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("websocket.pong_timeout_secs: must be at most 3600"), "{err}");
}

#[test]
fn convert_echo_config_prints_a_valid_herald_toml() {
    let json = r#"{"authHost": "http://127.0.0.1:8000", "clients": [{"appId": "abc", "key": "k123"}],
        "database": "redis", "databaseConfig": {"redis": {"port": "6380", "keyPrefix": "laravel_database_"}},
        "devMode": false, "host": null, "port": "6002", "protocol": "http"}"#;
    let p = write("laravel-echo-server.json", json);
    let out = herald().args(["convert-echo-config", p.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(toml.contains("port = 6002") && toml.contains("auth_host = \"http://127.0.0.1:8000\""), "{toml}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP API"), "what is not taken over is said");
    let converted = write("converted.toml", &toml);
    let check = herald().args(["check-config", converted.to_str().unwrap()]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn laravel_echo_server_over_https_is_served_over_tls_or_refused() {
    // Its certificate paths become [server.tls]: a missing file stops the start, naming it.
    let p = write("https.json", r#"{"protocol": "https", "sslCertPath": "/no/c.pem", "sslKeyPath": "/no/k.pem"}"#);
    let out = herald().args(["--laravel-echo-server", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS") && err.contains("/no/c.pem"), "{err}");
    // An encrypted key cannot be read: refused rather than served over plain HTTP.
    let p = write(
        "pass.json",
        r#"{"protocol": "https", "sslCertPath": "/c.pem", "sslKeyPath": "/k.pem", "sslPassphrase": "s"}"#,
    );
    let out = herald().args(["--laravel-echo-server", p.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sslPassphrase"));
    let bad = write("bad.json", "[1, 2]");
    let out = herald().args(["convert-echo-config", bad.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

/// Kills the child when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn laravel_echo_server_json_starts_a_socketio_server() {
    use std::io::{BufRead, BufReader, Read, Write};
    let json = r#"{"authHost": "http://127.0.0.1:8000", "clients": [{"appId": "abc", "key": "k123"}],
        "host": "127.0.0.1", "port": 0, "protocol": "http", "subscribers": {"http": false, "redis": false}}"#;
    let p = write("start.json", json);
    let mut child = herald()
        .args(["--laravel-echo-server", p.to_str().unwrap()])
        .env("HERALD_METRICS__PORT", "0")
        .env("HERALD_METRICS__HOST", "127.0.0.1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _running = Running(child);
    let mut lines = BufReader::new(stderr).lines();
    // The process prints until it listens (or exits, which ends the lines and fails the test).
    let listening = lines.by_ref().map_while(Result::ok).find(|l| l.contains("herald listening")).expect("listening");
    std::thread::spawn(move || for _ in lines {});
    let addr = listening.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap().trim_matches('"').to_owned();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    write!(s, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#"0{"sid":""#), "an Engine.IO open packet: {answer}");
}
