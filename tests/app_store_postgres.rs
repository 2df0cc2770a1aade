//! The `postgres` app store against a real PostgreSQL (initdb + pg_ctl on a free port): apps
//! created, disabled and re-keyed in the database reach every node at once without a restart,
//! and a database outage keeps cached apps working while apps never seen are refused as
//! unavailable (retryable), never as unknown.

mod common;
use common::postgres::PostgresServer;
use common::*;
use herald::config::{AppStoreDriver, Config};
use serde_json::json;

fn pg_config(url: &str) -> Config {
    let mut cfg = config();
    cfg.app_store.driver = AppStoreDriver::Postgres;
    cfg.app_store.database_url = url.to_owned();
    cfg.app_store.timeout_ms = 1_000;
    cfg
}

async fn create_app(db: &tokio_postgres::Client, id: &str, key: &str, secret: &str, settings: serde_json::Value) {
    db.execute(
        "INSERT INTO herald_apps (id, key, secret, settings) VALUES ($1, $2, $3, $4)",
        &[&id, &key, &secret, &settings],
    )
    .await
    .unwrap();
}

fn api_for(s: &TestServer, id: &str, key: &str, secret: &str) -> Api {
    Api { app_id: id.into(), key: key.into(), secret: secret.into(), ..s.api() }
}

async fn migrated(pg: &PostgresServer) -> tokio_postgres::Client {
    let mut db = pg.client().await;
    herald::apps::postgres::schema::migrate(&mut db).await.unwrap();
    assert_eq!(herald::apps::postgres::schema::migrate(&mut db).await.unwrap(), 0, "migrations run once");
    db
}

/// Waits until the node's change listener is connected (changes before it would be missed).
async fn wait_listening(s: &TestServer) {
    wait_series(s, r#"herald_app_store_events_total{event="listening"} "#, 1.0).await;
}

#[tokio::test]
async fn apps_come_and_go_on_every_node_without_a_restart() {
    let pg = PostgresServer::start();
    let db = migrated(&pg).await;
    let (a, b) = (TestServer::start(pg_config(&pg.url())).await, TestServer::start(pg_config(&pg.url())).await);
    wait_listening(&a).await;
    wait_listening(&b).await;
    // An unknown key is unknown (4001), not "unavailable".
    let mut c = a.connect_raw("signup-key", "protocol=7").await;
    c.expect_error(Some(4001)).await;

    // A signup: the app exists on both nodes as soon as the row does (the miss is forgotten).
    create_app(
        &db,
        "signup",
        "signup-key",
        "s3cret",
        json!({"client_events": true, "limits": {"max_presence_members": 5}}),
    )
    .await;
    // Each node forgets the remembered miss when the insert's notification reaches it.
    for s in [&a, &b] {
        wait_series(s, r#"herald_app_store_events_total{event="notified"} "#, 1.0).await;
    }
    let mut on_a = a.connect("signup-key").await;
    let mut on_b = b.connect("signup-key").await;
    let (status, _) = api_for(&a, "signup", "signup-key", "s3cret")
        .post("/events", &json!({"name": "e", "channel": "c", "data": "{}"}))
        .await;
    assert_eq!(status, 200);

    // A secret rotated after a leak: the old one is refused, the new one accepted, at once; the
    // app's sockets reconnect to pick it up.
    db.execute("UPDATE herald_apps SET secret = 'rotated' WHERE id = 'signup'", &[]).await.unwrap();
    assert_eq!(on_a.expect_close().await, Some(4200));
    assert_eq!(on_b.expect_close().await, Some(4200));
    for s in [&a, &b] {
        let old = api_for(s, "signup", "signup-key", "s3cret");
        let new = api_for(s, "signup", "signup-key", "rotated");
        let body = json!({"name": "e", "channel": "c", "data": "{}"});
        assert_eq!(old.post("/events", &body).await.0, 401);
        assert_eq!(new.post("/events", &body).await.0, 200);
    }

    // Disabled for non-payment: open sockets close with 4003 on every node, REST answers 403.
    let mut on_a = a.connect("signup-key").await;
    let mut on_b = b.connect("signup-key").await;
    db.execute("UPDATE herald_apps SET enabled = false WHERE id = 'signup'", &[]).await.unwrap();
    on_a.expect_error(Some(4003)).await;
    assert_eq!(on_a.expect_close().await, Some(4003));
    on_b.expect_error(Some(4003)).await;
    let body = json!({"name": "e", "channel": "c", "data": "{}"});
    assert_eq!(api_for(&b, "signup", "signup-key", "rotated").post("/events", &body).await.0, 403);
    let mut c = b.connect_raw("signup-key", "protocol=7").await;
    c.expect_error(Some(4003)).await;

    // Deleted: unknown again.
    db.execute("DELETE FROM herald_apps WHERE id = 'signup'", &[]).await.unwrap();
    wait_series(&a, r#"herald_app_store_events_total{event="notified"} "#, 4.0).await;
    let mut c = a.connect_raw("signup-key", "protocol=7").await;
    c.expect_error(Some(4001)).await;
}

#[tokio::test]
async fn a_database_outage_keeps_cached_apps_and_refuses_others_as_unavailable() {
    let pg = PostgresServer::start();
    let db = migrated(&pg).await;
    create_app(&db, "known", "known-key", "k", json!({})).await;
    create_app(&db, "later", "later-key", "l", json!({})).await;
    let mut cfg = pg_config(&pg.url());
    cfg.app_store.cache_ttl_secs = 1;
    let s = TestServer::start(cfg).await;
    s.connect("known-key").await;
    drop(db);

    pg.stop();
    // Past its time to live the cached app is asked for again, fails, and is served anyway.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    s.connect("known-key").await;
    // Never seen: refused as unavailable (4100: reconnect later), not as unknown (4001).
    let mut c = s.connect_raw("later-key", "protocol=7").await;
    c.expect_error(Some(4100)).await;
    let (status, _) = api_for(&s, "later", "later-key", "l")
        .post("/events", &json!({"name": "e", "channel": "c", "data": "{}"}))
        .await;
    assert_eq!(status, 503, "REST: retryable");
    let m = s.metrics().await;
    assert!(m.contains(r#"herald_app_store_events_total{event="stale"}"#), "{m}");
    assert!(m.contains(r#"herald_app_store_events_total{event="unavailable"}"#), "{m}");

    // Back: the pool drops its dead connections and the app is found.
    pg.restart();
    s.connect("later-key").await;
}

#[test]
fn herald_db_migrate_applies_the_schema_once() {
    let pg = PostgresServer::start();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["db", "migrate"])
            .env_remove("HERALD_CONFIG")
            .env("HERALD_APP_STORE__DATABASE_URL", pg.url())
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(String::from_utf8_lossy(&first.stdout).trim(), "1 migration(s) applied");
    let again = run();
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), "0 migration(s) applied");
}

const ADMIN_TOKEN: &str = "admin-token-for-the-tests";

async fn admin(
    s: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/admin/apps{path}", s.metrics_base))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn the_admin_api_creates_changes_and_deletes_apps_on_every_node() {
    use reqwest::Method;
    let pg = PostgresServer::start();
    let _db = migrated(&pg).await;
    let mut cfg = pg_config(&pg.url());
    cfg.app_store.admin_token = ADMIN_TOKEN.into();
    let (a, b) = (TestServer::start(cfg.clone()).await, TestServer::start(cfg).await);
    wait_listening(&a).await;
    wait_listening(&b).await;

    // Without the token, or with another one: 401.
    let anonymous = reqwest::get(format!("{}/admin/apps", a.metrics_base)).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let wrong = reqwest::Client::new()
        .get(format!("{}/admin/apps", a.metrics_base))
        .header("authorization", "Bearer admin-token-for-the-testz")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    // A signup: created on one node, served by both.
    let (status, app) = admin(&a, Method::POST, "", Some(json!({"id": "acme", "client_events": true}))).await;
    assert_eq!(status, 201, "{app}");
    let (key, secret) = (app["key"].as_str().unwrap().to_owned(), app["secret"].as_str().unwrap().to_owned());
    assert!(key.len() >= 16 && secret.len() >= 32, "{app}");
    let mut on_b = b.connect(&key).await;
    let api = api_for(&a, "acme", &key, &secret);
    let event = json!({"name": "e", "channel": "c", "data": "{}"});
    assert_eq!(api.post("/events", &event).await.0, 200);
    assert_eq!(admin(&a, Method::POST, "", Some(json!({"id": "acme"}))).await.0, 409, "taken id");
    let (status, refused) = admin(&a, Method::POST, "", Some(json!({"id": "bad/id"}))).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(admin(&a, Method::POST, "", Some(json!({"id": "x", "no_such_key": 1}))).await.0, 422);

    // Read and change it; the list shows no secret.
    let (status, shown) = admin(&b, Method::GET, "/acme", None).await;
    assert_eq!((status, shown.get("secret")), (200, None));
    let (status, changed) = admin(&b, Method::PATCH, "/acme", Some(json!({"max_connections": 10}))).await;
    assert_eq!((status, changed["max_connections"].as_u64()), (200, Some(10)));
    let (_, list) = admin(&a, Method::GET, "", None).await;
    assert_eq!(list["apps"].as_array().unwrap().len(), 1);
    assert!(list["apps"][0].get("secret").is_none());

    // Rotated: the old secret is refused at once, the new one accepted; sockets reconnect.
    let (status, rotated) = admin(&a, Method::POST, "/acme/rotate-secret", None).await;
    assert_eq!(status, 200);
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(on_b.expect_close().await, Some(4200));
    assert_eq!(api_for(&b, "acme", &key, &secret).post("/events", &event).await.0, 401);
    assert_eq!(api_for(&b, "acme", &key, &new_secret).post("/events", &event).await.0, 200);

    // Disabled: open sockets close with 4003 on every node; enabled again: served.
    let mut on_a = a.connect(&key).await;
    let mut on_b = b.connect(&key).await;
    assert_eq!(admin(&b, Method::POST, "/acme/disable", None).await.0, 200);
    on_a.expect_error(Some(4003)).await;
    on_b.expect_error(Some(4003)).await;
    let notified = "herald_app_store_events_total{event=\"notified\"} ";
    let seen_by_a = series(&a, notified).await;
    assert_eq!(admin(&b, Method::POST, "/acme/enable", None).await.0, 200);
    // The node that answered applied the change before answering: served at once there.
    assert_eq!(api_for(&b, "acme", &key, &new_secret).post("/events", &event).await.0, 200);
    b.connect(&key).await;
    assert!(series(&b, "herald_app_store_events_total{event=\"applied\"} ").await >= 1.0);
    // Another node follows the table's notification.
    let deadline = tokio::time::Instant::now() + WAIT;
    while series(&a, notified).await <= seen_by_a {
        assert!(tokio::time::Instant::now() < deadline, "node A never saw the change");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    a.connect(&key).await;

    // Deleted.
    assert_eq!(admin(&a, Method::DELETE, "/acme", None).await.0, 204);
    assert_eq!(admin(&a, Method::GET, "/acme", None).await.0, 404);
    assert_eq!(admin(&a, Method::DELETE, "/acme", None).await.0, 404);
    // The admin API is not on the public port.
    let public = reqwest::get(format!("{}/admin/apps", a.http_base)).await.unwrap();
    assert_eq!(public.status().as_u16(), 404);
}

#[tokio::test]
async fn the_admin_api_says_so_when_apps_come_from_the_file() {
    let mut cfg = config();
    cfg.app_store.admin_token = ADMIN_TOKEN.into();
    let s = TestServer::start(cfg).await;
    assert_eq!(admin(&s, reqwest::Method::GET, "", None).await.0, 409);
}

#[test]
fn herald_apps_commands_change_the_database() {
    let pg = PostgresServer::start();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(args)
            .env_remove("HERALD_CONFIG")
            .env("HERALD_APP_STORE__DATABASE_URL", pg.url())
            .output()
            .unwrap()
    };
    assert!(run(&["db", "migrate"]).status.success());
    let created = run(&["apps", "create", "cli-app", "--json", r#"{"client_events": true}"#]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let app: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!((app["id"].as_str(), app["client_events"].as_bool()), (Some("cli-app"), Some(true)));
    assert!(app["secret"].as_str().is_some_and(|s| s.len() == 32));
    assert!(run(&["apps", "disable", "cli-app"]).status.success());
    let listed: serde_json::Value = serde_json::from_slice(&run(&["apps", "list"]).stdout).unwrap();
    assert_eq!(listed["apps"][0]["enabled"], false);
    assert!(listed["apps"][0].get("secret").is_none());
    let missing = run(&["apps", "show", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no app"));
    assert!(run(&["apps", "delete", "cli-app"]).status.success());
}

/// The value of one exact series on `s`'s `/metrics` (0 while absent).
async fn series(s: &TestServer, series: &str) -> f64 {
    let text = s.metrics().await;
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}
