//! Builds a `Config`: the file's keys over the defaults, the `HERALD_` overlay, then `validate`.
//! Must not read the process environment (callers pass the variables) nor print or log anything.

use std::path::Path;

use serde::Deserialize;
use toml::{Table, Value};

use super::env::{self, SetBy};
use super::error::{ConfigError, Origin, Problem, friendly, redact};
use super::file::{self, KeyLines};
use super::path;
use super::validate::{Issue, validate};
use super::{AppConfig, Config};

/// Loads the configuration from the TOML file at `path` (or from the defaults alone when
/// `None`), overlays the `HERALD_…` variables of `env` (pass `std::env::vars()`; other
/// variables are ignored), and validates the result.
///
/// # Errors
///
/// [`ConfigError::Read`] if the file cannot be read; otherwise as [`load_str`].
pub fn load(path: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
    let text = match path {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?
        }
        None => String::new(),
    };
    load_str(&text, env)
}

/// Like [`load`], with the file's content given as `text` (empty text means the defaults).
///
/// # Errors
///
/// - [`ConfigError::File`]: TOML syntax errors, or values of the wrong type and unknown keys,
///   each with its line and key path.
/// - [`ConfigError::Env`]: variables naming unknown keys or holding values of the wrong type,
///   each by name.
/// - [`ConfigError::Invalid`]: broken [`validate`] rules, each with its key path and where the
///   value came from (file line or variable).
pub fn load_str(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
    let file = file::parse(text).map_err(ConfigError::File)?;
    let mut table = layered(file.table);
    let set_by = env::overlay(&mut table, env).map_err(ConfigError::Env)?;
    let config = Config::deserialize(table).map_err(|error| {
        let message = redact(None, friendly(error.message()));
        ConfigError::Invalid(vec![Problem { origin: Origin::Default, key: None, message }])
    })?;
    validate(&config).map_err(|issues| {
        let located = issues.into_iter().map(|issue| locate(issue, &file.lines, &set_by));
        ConfigError::Invalid(located.collect())
    })?;
    Ok(config)
}

/// The defaults with the file's keys laid over them. Tables merge key by key; anything else,
/// arrays included, is replaced: a file with `[[apps]]` replaces the default app list, one
/// without keeps it. Each app is completed with the app defaults, so the env overlay finds
/// (and takes the type of) every app key.
fn layered(file: Table) -> Table {
    // unwrap: every field of `Config` is a string, bool, integer, list or struct of those,
    // all of which TOML represents; a test serializes the defaults too.
    let mut table = Table::try_from(Config::default()).unwrap();
    merge(&mut table, file);
    if let Some(Value::Array(apps)) = table.get_mut("apps") {
        for app in apps {
            if let Value::Table(keys) = app {
                let mut full = app_defaults();
                merge(&mut full, std::mem::take(keys));
                *keys = full;
            }
        }
    }
    table
}

fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        let value = match (base.get_mut(&key), value) {
            (Some(Value::Table(inner)), Value::Table(over)) => {
                merge(inner, over);
                continue;
            }
            (_, value) => value,
        };
        base.insert(key, value);
    }
}

/// `AppConfig::default()` as a TOML table: the keys an app gets when it names only some.
pub(super) fn app_defaults() -> Table {
    // unwrap: `AppConfig` holds strings, bools, integers and `Limits` (integers only).
    Table::try_from(AppConfig::default()).unwrap()
}

/// Where the value an issue is about came from: the variable that set it (or a table above
/// it), else the file line that sets it (or the nearest table above it), else the defaults.
fn locate(issue: Issue, lines: &KeyLines, set_by: &SetBy) -> Problem {
    let from_env = path::self_and_ancestors(&issue.key).find_map(|key| set_by.get(key));
    let from_file = || path::self_and_ancestors(&issue.key).find_map(|key| lines.get(key));
    let origin = match from_env {
        Some(var) => Origin::Env(var.clone()),
        None => from_file().map_or(Origin::Default, Origin::Line),
    };
    Problem { origin, key: Some(issue.key), message: issue.message }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AdapterDriver, LogFormat};

    const HERALD_TOML: &str = include_str!("../../config/herald.toml");

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn lines(result: Result<Config, ConfigError>) -> Vec<String> {
        result.map(|_| Vec::new()).unwrap_or_else(|error| error.lines())
    }

    #[test]
    fn herald_toml_equals_the_defaults() {
        let config = load_str(HERALD_TOML, []).map_err(|e| e.to_string()).unwrap();
        assert_eq!(config, Config::default());
    }

    /// A field added to `Config` without a line in `config/herald.toml` fails here.
    #[test]
    fn herald_toml_lists_every_key() {
        fn missing(defaults: &Table, file: &Table, at: &str, out: &mut Vec<String>) {
            for (key, value) in defaults {
                let here = path::child_key(at, key);
                match (value, file.get(key)) {
                    (_, None) => out.push(here),
                    (Value::Table(d), Some(Value::Table(f))) => missing(d, f, &here, out),
                    (Value::Array(d), Some(Value::Array(f))) => {
                        for (index, (d, f)) in d.iter().zip(f).enumerate() {
                            if let (Value::Table(d), Value::Table(f)) = (d, f) {
                                missing(d, f, &path::child_index(&here, index), out);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let defaults = Table::try_from(Config::default()).unwrap();
        let file: Table = HERALD_TOML.parse().unwrap();
        let mut out = Vec::new();
        missing(&defaults, &file, "", &mut out);
        assert!(out.is_empty(), "keys missing from config/herald.toml: {out:?}");
    }

    #[test]
    fn secrets_never_reach_debug_output_or_error_messages() {
        let text = "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s3cr3t-value\"\n\
                    [[apps.webhooks]]\nurl = \"https://user:hunter2@hooks.example/x?token=tok-in-url\"\n\
                    headers = { \"X-Token\" = \"header-token\" }\n";
        let config = load_str(text, []).unwrap();
        let app = crate::apps::App::from(&config.apps[0]);
        for shown in [format!("{config:?}"), format!("{app:?}")] {
            for secret in ["s3cr3t-value", "header-token", "hunter2", "tok-in-url"] {
                assert!(!shown.contains(secret), "{secret} in {shown}");
            }
            assert!(shown.contains("X-Token"), "header names stay visible");
        }
        // Type errors quote the offending value; not for a secret.
        let bad = "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = 987654321\n\
                   [[apps.webhooks]]\nurl = \"https://h.example/\"\nheaders = { \"X-Token\" = 555666777 }\n";
        let text = load_str(bad, []).unwrap_err().to_string();
        assert!(text.contains("apps[0].secret"), "{text}");
        for secret in ["987654321", "555666777"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        let env = vars(&[("HERALD_APPS__0__WEBHOOKS__0__HEADERS__X_TOKEN", "424242")]);
        let text = load_str(
            "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n[[apps.webhooks]]\nurl = \"https://h.example/\"\n",
            env,
        )
        .map(|c| format!("{c:?}"))
        .unwrap_or_else(|e| e.to_string());
        assert!(!text.contains("424242"), "{text}");
    }

    #[test]
    fn numbers_have_maximums_so_no_deadline_can_overflow() {
        let text = "[websocket]\nactivity_timeout_secs = 9223372036854775807\n\
                    [webhooks]\nvacate_delay_ms = 9223372036854775807\n\
                    [[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n\
                    user_authentication_timeout_secs = 9223372036854775807\n";
        let found = lines(load_str(text, []));
        for key in
            ["websocket.activity_timeout_secs", "webhooks.vacate_delay_ms", "apps[0].user_authentication_timeout_secs"]
        {
            assert!(found.iter().any(|l| l.contains(key) && l.contains("must be at most")), "{key}: {found:?}");
        }
    }

    #[test]
    fn webhook_headers_must_be_valid_http_headers() {
        let text = "[[apps]]\nid = \"a\"\nkey = \"k\"\nsecret = \"s\"\n[[apps.webhooks]]\n\
                    url = \"https://h.example/\"\nheaders = { \"Bad Name\" = \"v\", \"X-Ok\" = \"line\\u0000break\" }\n";
        let found = lines(load_str(text, []));
        assert!(found.iter().any(|l| l.contains("`Bad Name` is not a valid HTTP header name")), "{found:?}");
        assert!(found.iter().any(|l| l.contains("the value of `X-Ok` is not a valid HTTP header value")), "{found:?}");
    }

    #[test]
    fn empty_file_means_defaults() {
        assert_eq!(load_str("", []).unwrap(), Config::default());
        assert_eq!(load(None, []).unwrap(), Config::default());
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let path = Path::new("/nonexistent/herald.toml");
        let error = load(Some(path), []).unwrap_err();
        assert!(matches!(error, ConfigError::Read { .. }));
        assert!(error.to_string().contains("/nonexistent/herald.toml"), "{error}");
    }

    #[test]
    fn file_without_apps_keeps_the_development_app() {
        let config = load_str("[server]\nport = 7000\n", []).unwrap();
        assert_eq!(config.server.port, 7000);
        assert_eq!(config.apps, vec![AppConfig::development()]);
    }

    #[test]
    fn file_apps_replace_the_default_list() {
        let text = "[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n";
        let config = load_str(text, []).unwrap();
        assert_eq!(config.apps.len(), 1);
        assert_eq!((config.apps[0].id.as_str(), config.apps[0].client_events), ("1", false));
    }

    #[test]
    fn env_sets_port_format_and_nested_limits() {
        let env = vars(&[
            ("HERALD_SERVER__PORT", "7000"),
            ("HERALD_WEBSOCKET__ACTIVITY_TIMEOUT_SECS", "30"),
            ("HERALD_LOG__FORMAT", "json"),
            ("HERALD_APPS__0__LIMITS__MAX_EVENT_DATA_BYTES", "20000"),
            ("HERALD_CONFIG", "/etc/herald.toml"),
            ("PATH", "/usr/bin"),
        ]);
        let config = load_str("", env).unwrap();
        assert_eq!(config.server.port, 7000);
        assert_eq!(config.websocket.activity_timeout_secs, 30);
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.apps[0].limits.max_event_data_bytes, 20000);
        assert_eq!(config.apps[0].key, "app-key");
    }

    #[test]
    fn env_overrides_the_file() {
        let text = "[server]\nport = 7000\n[[apps]]\nid = \"1\"\nkey = \"k\"\nsecret = \"s\"\n";
        let env = vars(&[("HERALD_SERVER__PORT", "7001"), ("HERALD_APPS__0__ID", "42")]);
        let config = load_str(text, env).unwrap();
        assert_eq!(config.server.port, 7001);
        assert_eq!((config.apps[0].id.as_str(), config.apps[0].key.as_str()), ("42", "k"));
    }

    #[test]
    fn env_appends_an_app() {
        let env = vars(&[
            ("HERALD_APPS__1__ID", "2"),
            ("HERALD_APPS__1__KEY", "key-2"),
            ("HERALD_APPS__1__SECRET", "secret-2"),
            ("HERALD_APPS__1__CLIENT_EVENTS", "true"),
        ]);
        let config = load_str("", env).unwrap();
        assert_eq!(config.apps.len(), 2);
        let app = &config.apps[1];
        assert_eq!((app.id.as_str(), app.key.as_str(), app.secret.as_str()), ("2", "key-2", "secret-2"));
        assert!(app.client_events);
        assert_eq!(app.limits, AppConfig::default().limits);
    }

    #[test]
    fn env_defines_the_only_app_of_an_empty_list() {
        let env = vars(&[("HERALD_APPS__0__ID", "1"), ("HERALD_APPS__0__KEY", "k"), ("HERALD_APPS__0__SECRET", "s")]);
        let config = load_str("apps = []\n", env).unwrap();
        assert_eq!(config.apps.len(), 1);
        assert!(!config.apps[0].client_events);
    }

    #[test]
    fn env_parses_bools_and_arrays() {
        let env = vars(&[
            ("HERALD_WEBSOCKET__REQUIRE_PROTOCOL_PARAM", "true"),
            ("HERALD_HTTP_API__CORS_ALLOWED_ORIGINS", r#"["https://a.example","https://b.example"]"#),
        ]);
        let config = load_str("", env).unwrap();
        assert!(config.websocket.require_protocol_param);
        assert_eq!(config.http_api.cors_allowed_origins, ["https://a.example", "https://b.example"]);
        assert_eq!(config.adapter.driver, AdapterDriver::Local);
    }

    #[test]
    fn env_unknown_key_and_bad_type_name_the_variable() {
        let env = vars(&[("HERALD_SERVER__PROT", "1"), ("HERALD_SERVER__PORT", "high")]);
        let error = load_str("", env).unwrap_err();
        assert!(matches!(error, ConfigError::Env(_)));
        let found = error.lines();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].starts_with("HERALD_SERVER__PORT: server.port: invalid type"), "{found:?}");
        assert!(found[1].starts_with("HERALD_SERVER__PROT: server.prot: unknown key"), "{found:?}");
    }

    #[test]
    fn file_errors_carry_lines_and_key_paths() {
        let found = lines(load_str("[server]\nport = 7000\nprot = 7001\n", []));
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("line 3: server.prot: unknown key"), "{found:?}");
        let found = lines(load_str("[websocket]\n\npong_timeout_secs = \"soon\"\n", []));
        assert!(found[0].starts_with("line 3: websocket.pong_timeout_secs: invalid type"), "{found:?}");
    }

    #[test]
    fn validation_issues_carry_lines_and_key_paths() {
        let text = "[[apps]]\nid = \"1\"\nkey = \"same\"\nsecret = \"s\"\n\n\
                    [[apps]]\nid = \"2\"\nkey = \"same\"\nsecret = \"s\"\n";
        let error = load_str(text, []).unwrap_err();
        assert!(matches!(error, ConfigError::Invalid(_)));
        let found = error.lines();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("line 8: apps[1].key: "), "{found:?}");
        assert!(found[0].contains("duplicate"), "{found:?}");
    }

    #[test]
    fn validation_issues_name_the_variable_or_the_table() {
        let env = vars(&[("HERALD_APPS__1__ID", "2"), ("HERALD_APPS__1__KEY", "app-key")]);
        let found = lines(load_str("", env));
        let duplicate = "HERALD_APPS__1__KEY: apps[1].key: duplicate app key `app-key` \
                         (also used by apps[0])";
        assert!(found.iter().any(|l| l == duplicate), "{found:?}");
        assert!(found.iter().any(|l| l.starts_with("HERALD_APPS__1__ID: apps[1].secret: ")), "{found:?}");

        let found = lines(load_str("[[apps]]\nid = \"1\"\nkey = \"k\"\n", []));
        assert_eq!(found, ["line 1: apps[0].secret: must not be empty"]);
    }
}
