//! The `postgres` app store: apps in the `herald_apps` table, cached in memory, each change
//! announced by the table's trigger (`NOTIFY herald_apps`) and applied on every node at once;
//! the time to live is only a backstop.
//! Must not let a database outage refuse what it knows: cached apps keep working (stale
//! entries are served when the database does not answer); only apps it has never seen are
//! refused, as unavailable (a retryable answer), never as "no such app".

pub mod admin;
mod cache;
mod listen;
mod rows;
pub mod schema;

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_postgres::NoTls;

use super::{App, AppStore, AppStoreError};
use crate::metrics::Metrics;
use crate::protocol::ErrorCode;
use cache::{Cache, Found};

/// What the store needs.
#[derive(Clone, Debug)]
pub struct PostgresSettings {
    /// `postgres://…`.
    pub url: String,
    /// Pool size.
    pub pool_size: usize,
    /// Apply migrations when the listener connects.
    pub migrate: bool,
    /// Backstop time to live of a cached app.
    pub cache_ttl: Duration,
    /// Time an unknown key or id stays unknown.
    pub miss_ttl: Duration,
    /// Connect and query timeout.
    pub timeout: Duration,
}

/// Told when an app changed so that this node's open sockets of it must close (with this
/// code): disabled or deleted (4003), or its key or secret changed (4200, reconnect).
pub type OnChange = Arc<dyn Fn(&str, ErrorCode) + Send + Sync>;

/// The store. Cheap to share (`Arc`).
pub struct PostgresStore {
    pool: Pool,
    cache: Cache,
    timeout: Duration,
    metrics: Metrics,
    on_change: OnceLock<OnChange>,
}

/// The running store and its listener.
pub struct Postgres {
    /// The store, to hand to the server.
    pub store: Arc<PostgresStore>,
    listener: JoinHandle<()>,
}

impl Postgres {
    /// Stops listening for changes.
    pub fn stop(self) {
        self.listener.abort();
    }
}

/// A pool of connections to `url` (made lazily: the database may be down at startup).
///
/// # Errors
/// The URL is not a PostgreSQL connection string.
pub fn pool(url: &str, size: usize, timeout: Duration) -> Result<Pool, String> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| format!("app_store.database_url: {e}"))?;
    config.connect_timeout(timeout);
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| format!("app_store: {e}"))
}

impl PostgresStore {
    /// Builds the store and starts its change listener (which also migrates, when asked).
    ///
    /// # Errors
    /// The URL is not a PostgreSQL connection string.
    pub fn start(settings: PostgresSettings, metrics: Metrics) -> Result<Postgres, String> {
        let pool = pool(&settings.url, settings.pool_size, settings.timeout)?;
        let store = Arc::new(Self {
            pool,
            cache: Cache::new(settings.cache_ttl, settings.miss_ttl),
            timeout: settings.timeout,
            metrics,
            on_change: OnceLock::new(),
        });
        let listener = tokio::spawn(listen::run(store.clone(), settings));
        Ok(Postgres { store, listener })
    }

    /// The connection pool (the admin API changes apps through it).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Sets who closes sockets when their app changes (once, at startup).
    pub fn on_change(&self, f: OnChange) {
        let _ = self.on_change.set(f);
    }

    /// One app by a column (`key` or `id`), from the database.
    async fn fetch(&self, column: &str, value: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        let query = async {
            let client = self.pool.get().await.map_err(|e| e.to_string())?;
            let sql = format!("SELECT {} FROM herald_apps WHERE {column} = $1", rows::COLUMNS);
            client.query_opt(&sql, &[&value]).await.map_err(|e| e.to_string())
        };
        let row = match tokio::time::timeout(self.timeout, query).await {
            Ok(Ok(row)) => row,
            Ok(Err(e)) => return Err(AppStoreError::Unavailable(e)),
            Err(_) => return Err(AppStoreError::Unavailable("query timed out".into())),
        };
        let Some(row) = row else { return Ok(None) };
        match rows::app_config(&row) {
            Ok(config) => Ok(Some(Arc::new(App::from(&config)))),
            Err(e) => {
                // A row Herald cannot serve is refused like an unknown app, and said loudly.
                tracing::error!(error = %e, "app in the database is invalid; refusing it");
                self.metrics.app_store("invalid");
                Ok(None)
            }
        }
    }

    async fn find(&self, by_key: bool, k: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        let now = Instant::now();
        let found = if by_key { self.cache.by_key(k, now) } else { self.cache.by_id(k, now) };
        let stale = match found {
            Found::Fresh(app) => {
                self.metrics.app_store("hit");
                return Ok(app);
            }
            Found::Stale(app) => app,
            Found::Absent => None,
        };
        match self.fetch(if by_key { "key" } else { "id" }, k).await {
            Ok(Some(app)) => {
                self.metrics.app_store("fetched");
                self.cache.put(&app, now);
                Ok(Some(app))
            }
            Ok(None) => {
                self.metrics.app_store("unknown");
                self.cache.put_miss(by_key, k, now);
                Ok(None)
            }
            Err(e) => match stale {
                Some(app) => {
                    tracing::warn!(error = %e, app_id = %app.id, "app store unreachable; serving the cached app");
                    self.metrics.app_store("stale");
                    Ok(Some(app))
                }
                None => {
                    tracing::warn!(error = %e, "app store unreachable; refusing an app it has not cached");
                    self.metrics.app_store("unavailable");
                    Err(e)
                }
            },
        }
    }

    /// Applies one change notification: forgets the app, reads it again, and closes this
    /// node's sockets of it when it was disabled, deleted, re-keyed or given a new secret.
    /// Applies a change this node just made (the admin API) at once, as its notification
    /// will on every node: so the node that answered sees the new state on the next request.
    pub async fn refresh(&self, id: &str, key: &str) {
        let old_key = self.cache.cached_app(id).map(|a| a.key.clone()).filter(|k| k != key);
        let change = listen::Change { id: id.to_owned(), key: key.to_owned(), old_id: None, old_key };
        self.apply(change, "applied").await;
    }

    async fn changed(&self, change: listen::Change) {
        self.apply(change, "notified").await;
    }

    async fn apply(&self, change: listen::Change, event: &'static str) {
        let old = self
            .cache
            .cached_app(&change.id)
            .or_else(|| change.old_id.as_deref().and_then(|id| self.cache.cached_app(id)));
        let ids: Vec<&str> = [Some(change.id.as_str()), change.old_id.as_deref()].into_iter().flatten().collect();
        let keys: Vec<&str> = [Some(change.key.as_str()), change.old_key.as_deref()].into_iter().flatten().collect();
        self.cache.forget(&ids, &keys);
        self.metrics.app_store(event);
        let new = match self.fetch("id", &change.id).await {
            Ok(new) => new,
            Err(e) => {
                tracing::warn!(error = %e, app_id = %change.id, "changed app could not be read again");
                None
            }
        };
        if let Some(app) = &new {
            self.cache.put(app, Instant::now());
        }
        let Some(on_change) = self.on_change.get() else { return };
        let renamed = change.old_id.as_deref().filter(|old| *old != change.id);
        match &new {
            None => on_change(&change.id, ErrorCode::AppDisabled),
            Some(app) if !app.enabled => on_change(&app.id, ErrorCode::AppDisabled),
            Some(app) => {
                let rotated = old.as_ref().is_some_and(|o| o.secret != app.secret || o.key != app.key);
                if rotated {
                    on_change(&app.id, ErrorCode::ReconnectImmediately);
                }
            }
        }
        if let Some(old_id) = renamed {
            on_change(old_id, ErrorCode::ReconnectImmediately);
        }
    }
}

#[async_trait::async_trait]
impl AppStore for PostgresStore {
    async fn find_by_key(&self, key: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        self.find(true, key).await
    }

    async fn find_by_id(&self, id: &str) -> Result<Option<Arc<App>>, AppStoreError> {
        self.find(false, id).await
    }

    async fn all(&self) -> Result<Vec<Arc<App>>, AppStoreError> {
        let query = async {
            let client = self.pool.get().await.map_err(|e| e.to_string())?;
            let sql = format!("SELECT {} FROM herald_apps ORDER BY id", rows::COLUMNS);
            client.query(&sql, &[]).await.map_err(|e| e.to_string())
        };
        let rows = tokio::time::timeout(self.timeout, query)
            .await
            .map_err(|_| AppStoreError::Unavailable("query timed out".into()))?
            .map_err(AppStoreError::Unavailable)?;
        Ok(rows.iter().filter_map(|r| rows::app_config(r).ok()).map(|c| Arc::new(App::from(&c))).collect())
    }
}
