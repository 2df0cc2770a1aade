//! The change listener: one connection of its own that `LISTEN`s to `herald_apps` (and runs the
//! migrations first when asked), reconnecting with backoff. Each (re)connect makes the whole
//! cache stale, since changes made while it was away were not heard.
//! Must not block lookups: it only forgets and re-reads what changed.

use std::sync::Arc;

use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::time::{Duration, sleep};
use tokio_postgres::{AsyncMessage, NoTls};

use super::{PostgresSettings, PostgresStore, schema};

/// One `NOTIFY herald_apps` payload, as the trigger writes it.
#[derive(Debug, Deserialize)]
pub(super) struct Change {
    pub(super) id: String,
    pub(super) key: String,
    #[serde(default)]
    pub(super) old_id: Option<String>,
    #[serde(default)]
    pub(super) old_key: Option<String>,
}

/// Notifications waiting to be applied; past it the cache is expired as a whole instead.
const QUEUE: usize = 1024;

pub(super) async fn run(store: Arc<PostgresStore>, settings: PostgresSettings) {
    let mut backoff = Duration::from_millis(100);
    let mut sweep = tokio::time::interval(settings.miss_ttl.max(Duration::from_secs(1)));
    loop {
        match listen(&store, &settings, &mut sweep).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => tracing::warn!(error = %e, "app store change listener lost; reconnecting"),
        }
        store.metrics.app_store("listener_lost");
        sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen(
    store: &PostgresStore,
    settings: &PostgresSettings,
    sweep: &mut tokio::time::Interval,
) -> Result<(), String> {
    let connect = tokio_postgres::connect(&settings.url, NoTls);
    let (mut client, mut connection) = tokio::time::timeout(settings.timeout, connect)
        .await
        .map_err(|_| "connect timed out")?
        .map_err(|e| e.to_string())?;
    let (tx, mut rx) = mpsc::channel::<Option<String>>(QUEUE);
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.try_send(Some(n.payload().to_owned())).is_err() {
                        // Too many at once: expire everything rather than lose one.
                        let _ = tx.try_send(None);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "app store listener connection failed");
                    break;
                }
            }
        }
    });
    let result = async {
        if settings.migrate {
            let ran = schema::migrate(&mut client).await.map_err(|e| format!("migrations failed: {e}"))?;
            if ran > 0 {
                tracing::info!(migrations = ran, "app store schema migrated");
            }
        }
        client.batch_execute("LISTEN herald_apps").await.map_err(|e| e.to_string())?;
        store.cache.expire_all();
        store.metrics.app_store("listening");
        tracing::info!("listening for app changes");
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Some(payload)) => match serde_json::from_str::<Change>(&payload) {
                        Ok(change) => store.changed(change).await,
                        Err(e) => tracing::warn!(error = %e, "unreadable app change notification"),
                    },
                    Some(None) => store.cache.expire_all(),
                    None => return Err("listener connection closed".to_owned()),
                },
                _ = sweep.tick() => store.cache.sweep(tokio::time::Instant::now()),
            }
        }
    }
    .await;
    driver.abort();
    result
}
