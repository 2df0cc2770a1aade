//! The console's routes on the metrics listener: the page, and its data behind the admin
//! token (`Authorization: Bearer …`, constant time).
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | /debug | the console page (no data in it) |
//! | GET | /debug/console.js | its script |
//! | GET | /admin/debug/apps | 200 `{"apps": [id…]}` |
//! | GET | /admin/debug/apps/{id}/events | 200 `text/event-stream`: one `data:` JSON event each; `event: missed` with `{"count": n}` for events it lost |
//! | GET | /admin/debug/apps/{id}/channels | 200 `{"channels": [{name, subscription_count, user_count, users?}]}` (cluster-wide) |

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use deadpool_postgres::Pool;
use serde_json::json;
use tokio::time::{Duration, Instant, MissedTickBehavior};

use super::{DebugTap, Next, Watch, page};
use crate::cluster::Queries;

/// A comment line on an idle stream this often, so proxies and browsers keep it open.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Presence channels whose members are listed; the rest show counts only.
const MAX_MEMBER_LISTS: usize = 50;

/// What the console's routes need.
#[derive(Clone)]
pub struct DebugDeps {
    /// The event hub.
    pub tap: DebugTap,
    /// `app_store.admin_token` (non-empty).
    pub token: String,
    /// The configuration file's app ids (static store).
    pub app_ids: Arc<[String]>,
    /// The PostgreSQL store's pool, whose apps are listed instead.
    pub pool: Option<Pool>,
    /// Cluster-wide channel queries.
    pub queries: Arc<dyn Queries>,
}

/// Registers the page and `/admin/debug/…`.
pub fn configure(cfg: &mut web::ServiceConfig, deps: DebugDeps) {
    cfg.app_data(web::Data::new(deps))
        .route("/debug", web::get().to(html))
        .route("/debug/", web::get().to(html))
        .route("/debug/console.js", web::get().to(script))
        .service(
            web::scope("/admin/debug/apps")
                .route("", web::get().to(apps))
                .route("/{id}/events", web::get().to(events))
                .route("/{id}/channels", web::get().to(channels)),
        );
}

fn secured(mut res: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    res.insert_header(("Content-Security-Policy", page::CSP))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"));
    res
}

async fn html() -> HttpResponse {
    secured(HttpResponse::Ok()).content_type("text/html; charset=utf-8").body(page::HTML)
}

async fn script() -> HttpResponse {
    secured(HttpResponse::Ok()).content_type("text/javascript; charset=utf-8").body(page::SCRIPT)
}

fn refused() -> HttpResponse {
    HttpResponse::Unauthorized().json(json!({ "error": "a valid admin token is required (Authorization: Bearer …)" }))
}

async fn apps(req: HttpRequest, deps: web::Data<DebugDeps>) -> HttpResponse {
    if !crate::admin::bearer_is(&req, &deps.token) {
        return refused();
    }
    let ids: Vec<String> = match &deps.pool {
        None => deps.app_ids.to_vec(),
        Some(pool) => match crate::apps::postgres::admin::list(pool).await {
            Ok(apps) => apps.into_iter().map(|a| a.id).collect(),
            Err(e) => {
                return HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({ "error": e.to_string() }));
            }
        },
    };
    HttpResponse::Ok().json(json!({ "apps": ids }))
}

async fn channels(req: HttpRequest, id: web::Path<String>, deps: web::Data<DebugDeps>) -> HttpResponse {
    if !crate::admin::bearer_is(&req, &deps.token) {
        return refused();
    }
    let unavailable = |e: crate::cluster::ClusterError| {
        HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({ "error": e.to_string() }))
    };
    let stats = match deps.queries.channels(&id, "").await {
        Ok(stats) => stats,
        Err(e) => return unavailable(e),
    };
    let mut out = Vec::with_capacity(stats.len());
    let mut listed = 0;
    for c in stats {
        let mut row = json!({
            "name": c.name,
            "subscription_count": c.subscription_count,
            "user_count": c.user_count,
        });
        if c.name.starts_with("presence-") && listed < MAX_MEMBER_LISTS {
            listed += 1;
            match deps.queries.presence_users(&id, &c.name).await {
                Ok(users) => row["users"] = json!(users),
                Err(e) => return unavailable(e),
            }
        }
        out.push(row);
    }
    HttpResponse::Ok().json(json!({ "channels": out }))
}

async fn events(req: HttpRequest, id: web::Path<String>, deps: web::Data<DebugDeps>) -> HttpResponse {
    if !crate::admin::bearer_is(&req, &deps.token) {
        return refused();
    }
    let feed = Feed::new(deps.tap.watch(&id));
    let body = futures_util::stream::unfold(feed, |mut feed| async move {
        let chunk = feed.next().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), feed))
    });
    secured(HttpResponse::Ok())
        .content_type("text/event-stream")
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// One console's stream: its events, what it missed, keep-alives.
struct Feed {
    watch: Watch,
    tick: tokio::time::Interval,
    started: bool,
    last_sent: Instant,
}

impl Feed {
    fn new(watch: Watch) -> Self {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self { watch, tick, started: false, last_sent: Instant::now() }
    }

    async fn next(&mut self) -> Option<Bytes> {
        if !self.started {
            self.started = true;
            return Some(Bytes::from_static(b"retry: 2000\nevent: ready\ndata: {}\n\n"));
        }
        loop {
            let chunk = tokio::select! {
                next = self.watch.next() => match next {
                    Next::Event(e) => Some(format!("data: {}\n\n", e.json)),
                    Next::Missed(n) => Some(missed(n)),
                    Next::Closed => return None,
                },
                _ = self.tick.tick() => match self.watch.shed_since() {
                    0 if self.last_sent.elapsed() >= KEEPALIVE => Some(": keep-alive\n\n".to_owned()),
                    0 => None,
                    n => Some(missed(n)),
                },
            };
            if let Some(chunk) = chunk {
                self.last_sent = Instant::now();
                return Some(Bytes::from(chunk));
            }
        }
    }
}

fn missed(n: u64) -> String {
    format!("event: missed\ndata: {{\"count\":{n}}}\n\n")
}
