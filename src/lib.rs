//! Herald: a self-hosted server for the Pusher Channels protocol.
//!
//! Layout (dependencies point down this list, never up):
//! - [`server`]: composition root; builds everything from [`config`] and runs shutdown.
//! - [`ws`]: the WebSocket transport: the `/app/{key}` upgrade (an actix-http upgrade service
//!   that takes the TCP stream over) and the per-socket session task.
//! - [`socketio`]: Echo's socket.io connector (laravel-echo-server's protocol) through
//!   socketioxide, on the same port, each socket a `Connection` like a Pusher one.
//! - [`tls`]: TLS on the main listener (rustls), its certificate reloaded when the files change.
//! - [`net`]: the accepted byte streams (plain TCP or TLS) as the sessions drive them.
//! - [`admission`]: node-wide limits on open sockets, new sockets per second and per address.
//! - [`http_api`]: the signed Pusher REST API.
//! - [`admin`]: the admin API (apps in PostgreSQL), on the metrics listener.
//! - [`debug`]: the live debug console (page and event stream), on the metrics listener.
//! - [`ingest`]: Laravel's `redis` broadcaster as an event source.
//! - [`connection`]: per-socket protocol rules (subscribe, presence, client events, signin).
//! - [`cluster`]: seams Bus, ClusterState and Queries; drivers local (this node) and Redis.
//! - [`apps`]: seam for where apps come from (static config today).
//! - [`registry`]: this node's sockets, channels, rosters, users and cache.
//! - [`rate_limit`]: token buckets.
//! - [`usage`]: per-app messages and connections per day, the daily message quota.
//! - [`metrics`]: Prometheus handles and the `/metrics` `/health` `/ready` routes.
//! - [`webhooks`]: batched, signed, retried webhook delivery.
//! - [`shutdown`]: signals and the gradual drain.
//! - [`config`]: the typed configuration, file + `HERALD_` environment overlay.
//! - [`protocol`]: the pure Pusher protocol: parse, encode, sign, verify, codes.
//! - `fuzzing` (tests and feature `fuzzing` only): entry points of the fuzz targets.

pub mod admin;
pub mod admission;
pub mod apps;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod debug;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod http_api;
pub mod ingest;
pub mod metrics;
pub mod net;
pub mod protocol;
pub mod rate_limit;
pub mod registry;
pub mod server;
pub mod shutdown;
pub mod socketio;
pub mod tls;
pub mod usage;
pub mod webhooks;
pub mod ws;
