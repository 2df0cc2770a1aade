//! What a node remembers of the database: apps by key and by id, and recent misses.
//! Must not query: the store fills it, change notifications empty it.

use std::sync::Arc;

use dashmap::DashMap;
use tokio::time::{Duration, Instant};

use crate::apps::App;

/// One remembered answer: an app, or "no such app" (`None`).
#[derive(Clone)]
pub(super) struct Entry {
    pub(super) app: Option<Arc<App>>,
    at: Instant,
}

/// How fresh an entry is.
pub(super) enum Found {
    /// Within its time to live: answer with it.
    Fresh(Option<Arc<App>>),
    /// Past it: ask the database, and fall back to this app if the database does not answer.
    Stale(Option<Arc<App>>),
    /// Nothing remembered.
    Absent,
}

pub(super) struct Cache {
    by_key: DashMap<String, Entry>,
    by_id: DashMap<String, Entry>,
    ttl: Duration,
    miss_ttl: Duration,
}

impl Cache {
    pub(super) fn new(ttl: Duration, miss_ttl: Duration) -> Self {
        Self { by_key: DashMap::new(), by_id: DashMap::new(), ttl, miss_ttl }
    }

    fn lookup(&self, map: &DashMap<String, Entry>, k: &str, now: Instant) -> Found {
        let Some(entry) = map.get(k).map(|e| e.clone()) else { return Found::Absent };
        let ttl = if entry.app.is_some() { self.ttl } else { self.miss_ttl };
        if now.saturating_duration_since(entry.at) < ttl { Found::Fresh(entry.app) } else { Found::Stale(entry.app) }
    }

    pub(super) fn by_key(&self, key: &str, now: Instant) -> Found {
        self.lookup(&self.by_key, key, now)
    }

    pub(super) fn by_id(&self, id: &str, now: Instant) -> Found {
        self.lookup(&self.by_id, id, now)
    }

    /// The app cached under `id`, however old.
    pub(super) fn cached_app(&self, id: &str) -> Option<Arc<App>> {
        self.by_id.get(id).and_then(|e| e.app.clone())
    }

    /// Remembers an app under its key and id.
    pub(super) fn put(&self, app: &Arc<App>, now: Instant) {
        let entry = Entry { app: Some(app.clone()), at: now };
        self.by_key.insert(app.key.clone(), entry.clone());
        self.by_id.insert(app.id.clone(), entry);
    }

    /// Remembers that no app has this key (`by_key`) or id.
    pub(super) fn put_miss(&self, by_key: bool, k: &str, now: Instant) {
        let map = if by_key { &self.by_key } else { &self.by_id };
        map.insert(k.to_owned(), Entry { app: None, at: now });
    }

    /// Forgets everything known under these ids and keys (a change notification).
    pub(super) fn forget(&self, ids: &[&str], keys: &[&str]) {
        for id in ids {
            if let Some((_, e)) = self.by_id.remove(*id)
                && let Some(app) = e.app
            {
                self.by_key.remove(&app.key);
            }
        }
        for key in keys {
            if let Some((_, e)) = self.by_key.remove(*key)
                && let Some(app) = e.app
            {
                self.by_id.remove(&app.id);
            }
        }
    }

    /// Makes every entry stale (after notifications may have been missed): each is asked
    /// for again on its next use, and still answers if the database does not.
    pub(super) fn expire_all(&self) {
        let past = Instant::now().checked_sub(self.ttl.max(self.miss_ttl) + Duration::from_secs(1));
        let Some(past) = past else {
            self.by_key.clear();
            self.by_id.clear();
            return;
        };
        for mut e in self.by_key.iter_mut() {
            e.at = past;
        }
        for mut e in self.by_id.iter_mut() {
            e.at = past;
        }
    }

    /// Misses are dropped once stale, so made-up keys cannot fill memory.
    pub(super) fn sweep(&self, now: Instant) {
        let miss_ttl = self.miss_ttl;
        let keep = |e: &Entry| e.app.is_some() || now.saturating_duration_since(e.at) < miss_ttl;
        self.by_key.retain(|_, e| keep(e));
        self.by_id.retain(|_, e| keep(e));
    }
}
