//! The admin API, on the metrics listener (never the public port): create, list, show,
//! update, disable/enable, rotate the secret of, and delete apps in the PostgreSQL app store.
//! `Authorization: Bearer <admin.token>`, compared in constant time and never logged.
//! Must not change apps except through `apps::postgres::admin` (one statement each, which the
//! table's trigger announces to every node).
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | GET | /admin/apps | | 200 `{"apps": [app…]}` (no secrets) |
//! | POST | /admin/apps | app fields, `id` required | 201 app with its `secret` |
//! | GET | /admin/apps/{id} | | 200 app (no secret) |
//! | PATCH | /admin/apps/{id} | fields to change | 200 app |
//! | POST | /admin/apps/{id}/disable, /enable | | 200 app |
//! | POST | /admin/apps/{id}/rotate-secret | | 200 app with its new `secret` |
//! | DELETE | /admin/apps/{id} | | 204 |
//! | GET | /admin/apps/{id}/usage | | 200 today's messages and peak connections (any store) |

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use deadpool_postgres::Pool;
use serde_json::{Map, Value, json};

use crate::apps::postgres::PostgresStore;
use crate::apps::postgres::admin::{self, AdminError};
use crate::protocol::signature::secrets_equal;

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminDeps {
    /// `admin.token`.
    pub token: String,
    /// The PostgreSQL store; `None` with the static store (apps come from the file).
    pub store: Option<Arc<PostgresStore>>,
    /// Usage counters (any store).
    pub usage: crate::usage::UsageMeter,
}

/// Registers `/admin/…` (only call it with a non-empty token).
pub fn configure(cfg: &mut web::ServiceConfig, deps: AdminDeps) {
    cfg.app_data(web::Data::new(deps)).service(
        web::scope("/admin/apps")
            .route("", web::get().to(list))
            .route("", web::post().to(create))
            .route("/{id}", web::get().to(show))
            .route("/{id}", web::patch().to(update))
            .route("/{id}", web::delete().to(delete))
            .route("/{id}/disable", web::post().to(disable))
            .route("/{id}/enable", web::post().to(enable))
            .route("/{id}/rotate-secret", web::post().to(rotate))
            .route("/{id}/usage", web::get().to(usage)),
    );
}

fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message }))
}

/// Why a request is answered before it reaches the database.
#[derive(Clone, Copy, Debug)]
enum Refused {
    /// No token, or not the admin token.
    Token,
    /// Apps come from the configuration file.
    Static,
    /// The body is not a JSON object.
    Body,
}

impl Refused {
    fn response(self) -> HttpResponse {
        match self {
            Self::Token => error(StatusCode::UNAUTHORIZED, "a valid admin token is required (Authorization: Bearer …)"),
            Self::Static => {
                error(StatusCode::CONFLICT, "apps come from the configuration file (app_store.driver = \"static\")")
            }
            Self::Body => error(StatusCode::BAD_REQUEST, "the body must be a JSON object of app fields"),
        }
    }
}

/// Whether the request holds the admin token.
fn token(req: &HttpRequest, deps: &AdminDeps) -> Result<(), Refused> {
    if bearer_is(req, &deps.token) {
        Ok(())
    } else {
        tracing::debug!("admin request refused: bad or missing token");
        Err(Refused::Token)
    }
}

/// Whether `req` carries `Authorization: Bearer <token>` (constant time; `token` non-empty).
pub(crate) fn bearer_is(req: &HttpRequest, token: &str) -> bool {
    let given =
        req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    !token.is_empty() && given.is_some_and(|t| secrets_equal(token, t))
}

/// The pool, once the request proved it holds the token.
fn authorized<'a>(req: &HttpRequest, deps: &'a AdminDeps) -> Result<&'a Pool, Refused> {
    token(req, deps)?;
    deps.store.as_ref().map(|s| s.pool()).ok_or(Refused::Static)
}

fn failed(e: &AdminError) -> HttpResponse {
    let status = match e {
        AdminError::NotFound(_) => StatusCode::NOT_FOUND,
        AdminError::Conflict(_) => StatusCode::CONFLICT,
        AdminError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AdminError::Unavailable(_) => {
            tracing::warn!(error = %e, "admin request failed");
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    error(status, &e.to_string())
}

fn fields(body: &web::Bytes) -> Result<Map<String, Value>, Refused> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(Refused::Body),
    }
}

macro_rules! pool_or_return {
    ($req:expr, $deps:expr) => {
        match authorized(&$req, &$deps) {
            Ok(pool) => pool,
            Err(refused) => return refused.response(),
        }
    };
}

async fn list(req: HttpRequest, deps: web::Data<AdminDeps>) -> HttpResponse {
    let pool = pool_or_return!(req, deps);
    match admin::list(pool).await {
        Ok(apps) => HttpResponse::Ok()
            .json(json!({ "apps": apps.iter().map(|a| admin::to_json(a, false)).collect::<Vec<_>>() })),
        Err(e) => failed(&e),
    }
}

async fn create(req: HttpRequest, body: web::Bytes, deps: web::Data<AdminDeps>) -> HttpResponse {
    let pool = pool_or_return!(req, deps);
    let fields = match fields(&body) {
        Ok(f) => f,
        Err(refused) => return refused.response(),
    };
    match admin::create(pool, &fields).await {
        Ok(app) => {
            tracing::info!(app_id = %app.id, "app created");
            refresh(&deps, &app.id, &app.key).await;
            HttpResponse::Created().json(admin::to_json(&app, true))
        }
        Err(e) => failed(&e),
    }
}

async fn show(req: HttpRequest, id: web::Path<String>, deps: web::Data<AdminDeps>) -> HttpResponse {
    let pool = pool_or_return!(req, deps);
    match admin::get(pool, &id).await {
        Ok(app) => HttpResponse::Ok().json(admin::to_json(&app, false)),
        Err(e) => failed(&e),
    }
}

/// Applies an app change on this node at once (every node, this one included, also gets the
/// table's notification): a request right after the answer sees the change here.
async fn refresh(deps: &AdminDeps, id: &str, key: &str) {
    if let Some(store) = &deps.store {
        store.refresh(id, key).await;
    }
}

async fn change(pool: &Pool, deps: &AdminDeps, id: &str, fields: &Map<String, Value>, what: &str) -> HttpResponse {
    match admin::update(pool, id, fields).await {
        Ok(app) => {
            tracing::info!(app_id = %app.id, change = what, "app changed");
            refresh(deps, &app.id, &app.key).await;
            HttpResponse::Ok().json(admin::to_json(&app, false))
        }
        Err(e) => failed(&e),
    }
}

async fn update(req: HttpRequest, id: web::Path<String>, body: web::Bytes, deps: web::Data<AdminDeps>) -> HttpResponse {
    let pool = pool_or_return!(req, deps);
    match fields(&body) {
        Ok(fields) => change(pool, &deps, &id, &fields, "update").await,
        Err(refused) => refused.response(),
    }
}

async fn switch(req: &HttpRequest, id: &str, deps: &AdminDeps, enabled: bool) -> HttpResponse {
    let pool = pool_or_return!(req, deps);
    let mut fields = Map::new();
    fields.insert("enabled".into(), Value::Bool(enabled));
    change(pool, deps, id, &fields, if enabled { "enable" } else { "disable" }).await
}

async fn disable(req: HttpRequest, id: web::Path<String>, deps: web::Data<AdminDeps>) -> HttpResponse {
    switch(&req, &id, &deps, false).await
}

async fn enable(req: HttpRequest, id: web::Path<String>, deps: web::Data<AdminDeps>) -> HttpResponse {
    switch(&req, &id, &deps, true).await
}

async fn rotate(req: HttpRequest, id: web::Path<String>, deps: web::Data<AdminDeps>) -> HttpResponse {
    let pool = pool_or_return!(req, deps);
    match admin::rotate_secret(pool, &id).await {
        Ok(app) => {
            tracing::info!(app_id = %app.id, "app secret rotated");
            refresh(&deps, &app.id, &app.key).await;
            HttpResponse::Ok().json(admin::to_json(&app, true))
        }
        Err(e) => failed(&e),
    }
}

async fn delete(req: HttpRequest, id: web::Path<String>, deps: web::Data<AdminDeps>) -> HttpResponse {
    let pool = pool_or_return!(req, deps);
    match admin::delete(pool, &id).await {
        Ok(()) => {
            tracing::info!(app_id = %id, "app deleted");
            refresh(&deps, &id, "").await;
            HttpResponse::NoContent().finish()
        }
        Err(e) => failed(&e),
    }
}

async fn usage(req: HttpRequest, id: web::Path<String>, deps: web::Data<AdminDeps>) -> HttpResponse {
    if let Err(refused) = token(&req, &deps) {
        return refused.response();
    }
    let today = deps.usage.today(&id).await;
    HttpResponse::Ok().json(json!({
        "app_id": id.as_str(),
        "day": crate::usage::date(today.day),
        "messages": today.messages,
        "peak_connections": today.peak_connections,
    }))
}
