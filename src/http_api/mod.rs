//! placeholder until the REST API lands
#![allow(missing_docs)]
use crate::{adapter::Adapter, apps::AppStore, metrics::Metrics, registry::Registry};
use actix_web::web;
use std::sync::Arc;
use std::time::Duration;
#[derive(Clone)]
pub struct ApiDeps {
    pub apps: Arc<dyn AppStore>,
    pub adapter: Arc<dyn Adapter>,
    pub registry: Registry,
    pub metrics: Metrics,
    pub settings: ApiSettings,
}
#[derive(Clone, Debug)]
pub struct ApiSettings {
    pub timestamp_window_secs: u64,
    pub max_body_bytes: usize,
    pub body_timeout: Duration,
    pub path_prefix: String,
    pub cache_ttl: Duration,
}
pub fn configure(_cfg: &mut web::ServiceConfig, _deps: ApiDeps) {}
