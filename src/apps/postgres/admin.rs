//! Changing apps in the database: what the admin API and `herald apps …` do, one function
//! each. Every change is a single statement, so the table's trigger announces it to every
//! node; every app written is first checked by the rules of a config file's `[[apps]]`.
//! Must not cache: the store's listener hears of each change like of any other.

use deadpool_postgres::Pool;
use serde_json::{Map, Value};

use super::rows;
use crate::config::{AppConfig, check_app_config};

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No app with that id.
    #[error("no app {0:?}")]
    NotFound(String),
    /// The id or key is taken.
    #[error("{0}")]
    Conflict(String),
    /// The app breaks a rule (each `key: message`).
    #[error("invalid app: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The database did not answer.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

fn db(e: impl std::fmt::Display) -> AdminError {
    AdminError::Unavailable(e.to_string())
}

fn from_pg(e: &tokio_postgres::Error) -> AdminError {
    if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
        return AdminError::Conflict("an app with that id or key exists".into());
    }
    AdminError::Unavailable(e.to_string())
}

/// A random lowercase hex string of `bytes` random bytes.
fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

/// An app as JSON (every `[[apps]]` key); without the secret unless `with_secret`.
pub fn to_json(app: &AppConfig, with_secret: bool) -> Value {
    let mut v = serde_json::to_value(app).expect("an AppConfig encodes");
    if !with_secret && let Value::Object(m) = &mut v {
        m.remove("secret");
    }
    v
}

fn checked(app: AppConfig) -> Result<AppConfig, AdminError> {
    let issues = check_app_config(&app, "app");
    if issues.is_empty() { Ok(app) } else { Err(AdminError::Invalid(issues.iter().map(ToString::to_string).collect())) }
}

/// `fields` over `base`, as an app (unknown keys are refused).
fn merged(base: Value, fields: &Map<String, Value>) -> Result<AppConfig, AdminError> {
    let Value::Object(mut all) = base else { unreachable!("apps encode as objects") };
    for (k, v) in fields {
        all.insert(k.clone(), v.clone());
    }
    serde_json::from_value(Value::Object(all)).map_err(|e| AdminError::Invalid(vec![e.to_string()]))
}

/// The `settings` column of an app: every key but the four with columns of their own.
fn settings(app: &AppConfig) -> Value {
    let mut v = to_json(app, true);
    if let Value::Object(m) = &mut v {
        for column in ["id", "key", "secret", "enabled"] {
            m.remove(column);
        }
    }
    v
}

/// Runs `sql` with the app's columns as `$1`–`$5` (id, key, secret, enabled, settings).
async fn write(pool: &Pool, sql: &str, app: &AppConfig) -> Result<u64, AdminError> {
    let client = pool.get().await.map_err(db)?;
    let s = settings(app);
    client.execute(sql, &[&app.id, &app.key, &app.secret, &app.enabled, &s]).await.map_err(|e| from_pg(&e))
}

/// Every app, ordered by id.
///
/// # Errors
/// The database did not answer.
pub async fn list(pool: &Pool) -> Result<Vec<AppConfig>, AdminError> {
    let client = pool.get().await.map_err(db)?;
    let sql = format!("SELECT {} FROM herald_apps ORDER BY id", rows::COLUMNS);
    let found = client.query(&sql, &[]).await.map_err(db)?;
    found.iter().map(|r| rows::app_config(r).map_err(|e| AdminError::Invalid(vec![e]))).collect()
}

/// One app.
///
/// # Errors
/// [`AdminError::NotFound`], or the database did not answer.
pub async fn get(pool: &Pool, id: &str) -> Result<AppConfig, AdminError> {
    let client = pool.get().await.map_err(db)?;
    let sql = format!("SELECT {} FROM herald_apps WHERE id = $1", rows::COLUMNS);
    let row = client.query_opt(&sql, &[&id]).await.map_err(db)?.ok_or_else(|| AdminError::NotFound(id.into()))?;
    rows::app_config(&row).map_err(|e| AdminError::Invalid(vec![e]))
}

/// Creates an app from `fields` (`id` required; `key` and `secret` generated when absent;
/// every other key as in `[[apps]]`, defaults otherwise).
///
/// # Errors
/// Invalid fields, a taken id or key, or the database did not answer.
pub async fn create(pool: &Pool, fields: &Map<String, Value>) -> Result<AppConfig, AdminError> {
    let mut fields = fields.clone();
    fields.entry("key").or_insert_with(|| Value::String(random_hex(10)));
    fields.entry("secret").or_insert_with(|| Value::String(random_hex(16)));
    let app = checked(merged(to_json(&AppConfig::default(), true), &fields)?)?;
    let sql = "INSERT INTO herald_apps (id, key, secret, enabled, settings) VALUES ($1, $2, $3, $4, $5)";
    write(pool, sql, &app).await?;
    Ok(app)
}

/// Changes the given fields of an app (`id` cannot change).
///
/// # Errors
/// [`AdminError::NotFound`], invalid fields, a taken key, or the database did not answer.
pub async fn update(pool: &Pool, id: &str, fields: &Map<String, Value>) -> Result<AppConfig, AdminError> {
    if fields.get("id").is_some_and(|v| v.as_str() != Some(id)) {
        return Err(AdminError::Invalid(vec!["app.id: cannot change (create a new app)".into()]));
    }
    let current = get(pool, id).await?;
    let app = checked(merged(to_json(&current, true), fields)?)?;
    let sql = "UPDATE herald_apps SET key = $2, secret = $3, enabled = $4, settings = $5 WHERE id = $1";
    match write(pool, sql, &app).await? {
        0 => Err(AdminError::NotFound(id.into())),
        _ => Ok(app),
    }
}

/// Gives an app a new random secret; the old one is refused from now on, on every node.
///
/// # Errors
/// [`AdminError::NotFound`], or the database did not answer.
pub async fn rotate_secret(pool: &Pool, id: &str) -> Result<AppConfig, AdminError> {
    let mut fields = Map::new();
    fields.insert("secret".into(), Value::String(random_hex(16)));
    update(pool, id, &fields).await
}

/// Deletes an app (its sockets close with 4003 on every node).
///
/// # Errors
/// [`AdminError::NotFound`], or the database did not answer.
pub async fn delete(pool: &Pool, id: &str) -> Result<(), AdminError> {
    let client = pool.get().await.map_err(db)?;
    match client.execute("DELETE FROM herald_apps WHERE id = $1", &[&id]).await.map_err(db)? {
        0 => Err(AdminError::NotFound(id.into())),
        _ => Ok(()),
    }
}
