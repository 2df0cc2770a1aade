//! placeholder until the REST API lands
#![allow(missing_docs)]
use std::sync::Arc;
use std::time::Duration;
use actix_web::web;
use crate::{adapter::Adapter, apps::AppStore, metrics::Metrics, registry::Registry};
#[derive(Clone)]
pub struct ApiDeps { pub apps: Arc<dyn AppStore>, pub adapter: Arc<dyn Adapter>, pub registry: Registry, pub metrics: Metrics, pub settings: ApiSettings }
#[derive(Clone, Debug)]
pub struct ApiSettings { pub timestamp_window_secs: u64, pub max_body_bytes: usize, pub body_timeout: Duration, pub path_prefix: String, pub cache_ttl: Duration }
pub fn configure(_cfg: &mut web::ServiceConfig, _deps: ApiDeps) {}
