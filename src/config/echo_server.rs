//! `laravel-echo-server.json` → `herald.toml`: what a laravel-echo-server user already has,
//! converted key by key, with a comment for every setting Herald does not take over.
//! Must not read files or start anything: text in, text out (`herald convert-echo-config`
//! prints it, `herald --laravel-echo-server FILE` loads it like a config file).

use serde::Deserialize;
use serde_json::Value;

/// The converted configuration.
#[derive(Debug)]
pub struct Converted {
    /// A complete `herald.toml`.
    pub toml: String,
    /// Settings not converted, one line each (also in `toml` as comments).
    pub notes: Vec<String>,
    /// Settings Herald cannot honour that change what clients see (an encrypted TLS key):
    /// starting from this file should refuse rather than serve something else.
    pub blocking: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct EchoServer {
    auth_host: Option<Value>,
    auth_endpoint: Option<String>,
    clients: Vec<Client>,
    database: Option<String>,
    database_config: DatabaseConfig,
    dev_mode: bool,
    host: Option<String>,
    port: Option<Value>,
    protocol: Option<String>,
    ssl_cert_path: Option<String>,
    ssl_key_path: Option<String>,
    ssl_cert_chain_path: Option<String>,
    ssl_passphrase: Option<String>,
    socketio: serde_json::Map<String, Value>,
    subscribers: Option<Subscribers>,
    api_origin_allow: Option<ApiOriginAllow>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Client {
    app_id: String,
    key: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DatabaseConfig {
    redis: RedisConfig,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RedisConfig {
    host: Option<String>,
    port: Option<Value>,
    password: Option<String>,
    db: Option<Value>,
    key_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(default)]
struct Subscribers {
    http: bool,
    redis: bool,
}

impl Default for Subscribers {
    fn default() -> Self {
        Self { http: true, redis: true }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ApiOriginAllow {
    allow_cors: bool,
    allow_origin: String,
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| quote(s)).collect::<Vec<_>>().join(", "))
}

/// A JSON string or number as text (laravel-echo-server accepts `"6001"` and `6001`).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Converts the JSON text of a `laravel-echo-server.json`.
///
/// # Errors
/// The text is not a JSON object of laravel-echo-server's shape.
pub fn convert(json: &str) -> Result<Converted, String> {
    let bad = |e: String| format!("not a laravel-echo-server.json: {e}");
    let value: Value = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
    if !value.is_object() {
        return Err(bad("not a JSON object".into()));
    }
    let echo: EchoServer = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    let mut notes = Vec::new();
    let mut blocking = Vec::new();
    let mut out = String::from("# Converted from laravel-echo-server.json by `herald convert-echo-config`.\n");

    let port = echo.port.as_ref().and_then(text).unwrap_or_else(|| "6001".into());
    let port: u16 = port.parse().map_err(|_| format!("port {port:?} is not a port number"))?;
    let host = echo.host.filter(|h| !h.is_empty()).unwrap_or_else(|| "0.0.0.0".into());
    out.push_str(&format!("\n[server]\nhost = {}\nport = {port}\n", quote(&host)));
    let given = |v: &Option<String>| v.as_deref().is_some_and(|p| !p.is_empty());
    if echo.protocol.as_deref() == Some("https") {
        match (&echo.ssl_cert_path, &echo.ssl_key_path) {
            (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => {
                out.push_str(&format!("\n[server.tls]\ncert_file = {}\nkey_file = {}\n", quote(cert), quote(key)));
            }
            _ => blocking.push("protocol \"https\" needs sslCertPath and sslKeyPath".to_owned()),
        }
        if given(&echo.ssl_cert_chain_path) {
            blocking.push(
                "sslCertChainPath: Herald reads the whole chain from one file; append the chain's certificates \
                 to the sslCertPath file (or write server.tls.cert_file in a herald.toml)"
                    .to_owned(),
            );
        }
        if given(&echo.ssl_passphrase) {
            blocking.push("sslPassphrase: Herald reads unencrypted keys only; decrypt the key file".to_owned());
        }
    } else if given(&echo.ssl_cert_path) || given(&echo.ssl_key_path) {
        notes.push("sslCertPath/sslKeyPath are ignored with protocol \"http\"".into());
    }

    out.push_str(&format!("\n[log]\nlevel = {}\n", quote(if echo.dev_mode { "debug" } else { "info" })));

    // Its HTTP API's CORS settings govern Herald's REST API; socket.io polling keeps socket.io
    // 2's default (any origin), as laravel-echo-server served it.
    if let Some(cors) = echo.api_origin_allow.filter(|c| c.allow_cors) {
        let origins: Vec<String> =
            cors.allow_origin.split(',').map(str::trim).filter(|o| !o.is_empty()).map(str::to_owned).collect();
        out.push_str(&format!("\n[http_api]\ncors_allowed_origins = {}\n", list(&origins)));
    }

    let subscribers = echo.subscribers.unwrap_or_default();
    if echo.database.as_deref() == Some("sqlite") {
        notes.push("database \"sqlite\" (presence storage) is not needed: Herald keeps presence itself".into());
    }
    if subscribers.redis {
        let r = &echo.database_config.redis;
        let host = r.host.clone().unwrap_or_else(|| "127.0.0.1".into());
        let port = r.port.as_ref().and_then(text).unwrap_or_else(|| "6379".into());
        let db = r.db.as_ref().and_then(text).unwrap_or_else(|| "0".into());
        let auth =
            r.password.as_deref().filter(|p| !p.is_empty()).map(|p| format!(":{}@", percent(p))).unwrap_or_default();
        if !auth.is_empty() {
            notes.push("the Redis password is in ingest.redis_url: move it to HERALD_INGEST__REDIS_URL".into());
        }
        out.push_str(&format!(
            "\n[ingest]\n# Laravel's redis broadcaster, read as laravel-echo-server read it.\nenabled = true\n\
             redis_url = {}\nkey_prefix = {}\n",
            quote(&format!("redis://{auth}{host}:{port}/{db}")),
            quote(r.key_prefix.as_deref().unwrap_or(""))
        ));
    }
    if subscribers.http || !echo.clients.is_empty() {
        notes.push(
            "its HTTP API (/apps/{id}/status, /channels, /channels/{name}[/users], POST /apps/{id}/events with \
             ?auth_key=) is not served: use Pusher's signed REST API with the app's id, key and secret (any \
             Pusher server SDK; see README)"
                .into(),
        );
    }

    let mut sio = String::from("\n[socketio]\nenabled = true\n");
    for (key, herald_key) in [("pingInterval", "ping_interval_ms"), ("pingTimeout", "ping_timeout_ms")] {
        if let Some(ms) = echo.socketio.get(key).and_then(Value::as_u64) {
            sio.push_str(&format!("{herald_key} = {ms}\n"));
        }
    }
    if let Some(path) = echo.socketio.get("path").and_then(Value::as_str) {
        sio.push_str(&format!("path = {}\n", quote(path.trim_end_matches('/'))));
    }
    let ignored: Vec<&str> = echo
        .socketio
        .keys()
        .map(String::as_str)
        .filter(|k| !matches!(*k, "pingInterval" | "pingTimeout" | "path"))
        .collect();
    if !ignored.is_empty() {
        notes.push(format!("socketio options not taken over: {}", ignored.join(", ")));
    }
    out.push_str(&sio);

    let client = echo.clients.first();
    if echo.clients.len() > 1 {
        notes.push(format!(
            "{} clients: only the first becomes the app; add the others as [[apps]]",
            echo.clients.len()
        ));
    }
    let id = client.map_or("laravel-echo-server", |c| c.app_id.as_str());
    let secret = client.map(|c| c.key.as_str()).filter(|k| !k.is_empty());
    let auth_host = match &echo.auth_host {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(hosts)) => {
            if hosts.len() > 1 {
                notes.push("authHost lists several hosts: Herald calls the first".into());
            }
            hosts.first().and_then(Value::as_str).unwrap_or("http://localhost").to_owned()
        }
        _ => "http://localhost".into(),
    };
    out.push_str(&format!(
        "\n[[apps]]\n# The app Echo's socket.io clients (and Laravel's broadcasts) belong to.\nid = {}\nkey = {}\n\
         # The secret signs Herald's REST API (laravel-echo-server's client key).\nsecret = {}\nclient_events = true\n\
         auth_host = {}\nauth_endpoint = {}\n",
        quote(id),
        quote(id),
        quote(secret.unwrap_or("change-me")),
        quote(auth_host.trim_end_matches('/')),
        quote(echo.auth_endpoint.as_deref().unwrap_or("/broadcasting/auth"))
    ));
    if secret.is_none() {
        notes.push("no client key: set apps[0].secret (it signs the REST API)".into());
    }
    for line in blocking.iter().chain(&notes) {
        out.push_str(&format!("# NOT CONVERTED: {line}\n"));
    }
    Ok(Converted { toml: out, notes, blocking })
}

fn percent(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// laravel-echo-server's own `init` output, as users have it.
    const SAMPLE: &str = r#"{
        "authHost": "http://localhost:8000",
        "authEndpoint": "/broadcasting/auth",
        "clients": [{"appId": "d9f0a1b2c3", "key": "0123456789abcdef0123456789abcdef"}],
        "database": "redis",
        "databaseConfig": {
            "redis": {"port": "6380", "host": "127.0.0.1", "password": "p@ss", "db": 2, "keyPrefix": "laravel_database_"},
            "sqlite": {"databasePath": "/database/laravel-echo-server.sqlite"}
        },
        "devMode": true,
        "host": null,
        "port": "6001",
        "protocol": "http",
        "socketio": {"pingInterval": 10000, "transports": ["websocket"]},
        "secureOptions": 67108864,
        "sslCertPath": "",
        "sslKeyPath": "",
        "sslCertChainPath": "",
        "sslPassphrase": "",
        "subscribers": {"http": true, "redis": true},
        "apiOriginAllow": {"allowCors": true, "allowOrigin": "http://localhost:80", "allowMethods": "GET, POST", "allowHeaders": "Origin"}
    }"#;

    #[test]
    fn a_sample_file_becomes_a_valid_config() {
        let c = convert(SAMPLE).unwrap();
        let cfg = crate::config::load_str(&c.toml, Vec::new()).unwrap_or_else(|e| panic!("{e}\n{}", c.toml));
        assert_eq!((cfg.server.host.as_str(), cfg.server.port), ("0.0.0.0", 6001));
        assert_eq!(cfg.log.level, "debug");
        assert!(cfg.ingest.enabled && cfg.socketio.enabled);
        assert_eq!(cfg.ingest.redis_url, "redis://:p%40ss@127.0.0.1:6380/2");
        assert_eq!(cfg.ingest.key_prefix, "laravel_database_");
        assert_eq!(cfg.socketio.ping_interval_ms, 10_000);
        assert_eq!(cfg.http_api.cors_allowed_origins, ["http://localhost:80"]);
        let app = &cfg.apps[0];
        assert_eq!((app.id.as_str(), app.secret.as_str()), ("d9f0a1b2c3", "0123456789abcdef0123456789abcdef"));
        assert_eq!(
            (app.auth_host.as_str(), app.auth_endpoint.as_str()),
            ("http://localhost:8000", "/broadcasting/auth")
        );
        assert!(c.blocking.is_empty());
        assert!(c.notes.iter().any(|n| n.contains("HTTP API")), "{:?}", c.notes);
        assert!(c.notes.iter().any(|n| n.contains("transports")), "{:?}", c.notes);
        assert!(c.toml.contains("# NOT CONVERTED: "));
    }

    #[test]
    fn https_becomes_tls_and_defaults_fill_in() {
        let c = convert(r#"{"protocol": "https", "sslCertPath": "/c.pem", "sslKeyPath": "/k.pem"}"#).unwrap();
        assert!(c.blocking.is_empty(), "{:?}", c.blocking);
        let cfg = crate::config::load_str(&c.toml, Vec::new()).unwrap();
        assert_eq!((cfg.server.tls.cert_file.as_str(), cfg.server.tls.key_file.as_str()), ("/c.pem", "/k.pem"));
        let c = convert(r#"{"protocol": "https", "sslCertPath": "/c", "sslKeyPath": "/k", "sslPassphrase": "x"}"#);
        assert_eq!(c.unwrap().blocking.len(), 1);
        let c = convert(r#"{"protocol": "https", "sslCertPath": "/c", "sslKeyPath": "/k", "sslCertChainPath": "/ca"}"#);
        assert_eq!(c.unwrap().blocking.len(), 1);
        assert_eq!(convert(r#"{"protocol": "https"}"#).unwrap().blocking.len(), 1);
        let c = convert("{}").unwrap();
        let cfg = crate::config::load_str(&c.toml, Vec::new()).unwrap();
        assert_eq!(cfg.server.port, 6001);
        assert_eq!(cfg.ingest.redis_url, "redis://127.0.0.1:6379/0");
        assert_eq!(cfg.apps[0].auth_host, "http://localhost");
        assert!(convert("[]").is_err());
        assert!(convert(r#"{"port": "http"}"#).is_err());
    }
}
