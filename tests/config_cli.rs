//! The `herald` binary's configuration commands.

use std::process::Command;

fn herald() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.env_remove("HERALD_CONFIG");
    c
}

fn write(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("herald-cli-{}", std::process::id()));
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
