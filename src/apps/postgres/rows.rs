//! A `herald_apps` row as the `AppConfig` the static store is built from, checked by the same
//! rules as a config file's `[[apps]]`. Must not query: callers bring rows.

use serde_json::{Map, Value};
use tokio_postgres::Row;

use crate::config::{AppConfig, check_app_config};

/// The columns every lookup selects, in the order [`app_config`] reads them.
pub(crate) const COLUMNS: &str = "id, key, secret, enabled, settings";

/// The app a row describes.
///
/// # Errors
/// `settings` is not an object of `[[apps]]` keys, or breaks a rule (the message says which).
pub(crate) fn app_config(row: &Row) -> Result<AppConfig, String> {
    let (id, key, secret, enabled): (String, String, String, bool) = (row.get(0), row.get(1), row.get(2), row.get(3));
    let settings: Value = row.get(4);
    let Value::Object(mut fields) = settings else { return Err(format!("app {id}: settings is not a JSON object")) };
    for column in ["id", "key", "secret", "enabled"] {
        fields.remove(column);
    }
    let mut all = Map::new();
    all.insert("id".into(), Value::String(id.clone()));
    all.insert("key".into(), Value::String(key));
    all.insert("secret".into(), Value::String(secret));
    all.insert("enabled".into(), Value::Bool(enabled));
    all.extend(fields);
    let app: AppConfig = serde_json::from_value(Value::Object(all)).map_err(|e| format!("app {id}: settings: {e}"))?;
    let issues = check_app_config(&app, "app");
    if !issues.is_empty() {
        let issues: Vec<String> = issues.iter().map(ToString::to_string).collect();
        return Err(format!("app {id}: {}", issues.join("; ")));
    }
    Ok(app)
}
