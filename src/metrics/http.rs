//! The metrics listener's routes: `/metrics`, `/health`, `/ready`.
//! Must not serve anything a client of the Pusher API would call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::{HttpResponse, web};

use super::Metrics;

/// Readiness: true from startup until draining begins. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Health {
    draining: Arc<AtomicBool>,
    fenced: Arc<AtomicBool>,
}

impl Health {
    /// Marks the node as draining: `/ready` fails and new sockets are refused.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Whether the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the node as fenced (it lost its cluster lease) or serving again: `/ready` fails
    /// while fenced. A short Redis blip does not fence, so it never takes every node out.
    pub fn set_fenced(&self, fenced: bool) {
        self.fenced.store(fenced, Ordering::Release);
    }
}

/// Registers the metrics routes.
pub fn configure(cfg: &mut web::ServiceConfig, metrics: Metrics, health: Health) {
    cfg.app_data(web::Data::new(metrics))
        .app_data(web::Data::new(health))
        .route("/metrics", web::get().to(render))
        .route("/health", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({"ok": true})) }))
        .route("/ready", web::get().to(ready));
}

async fn render(metrics: web::Data<Metrics>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(metrics.render())
}

async fn ready(health: web::Data<Health>) -> HttpResponse {
    if health.is_draining() {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({"ready": false, "draining": true}))
    } else if health.fenced.load(Ordering::Acquire) {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({"ready": false, "fenced": true}))
    } else {
        HttpResponse::Ok().json(serde_json::json!({"ready": true}))
    }
}
