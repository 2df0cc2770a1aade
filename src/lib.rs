//! Herald: a self-hosted server for the Pusher Channels protocol.

pub mod adapter;
pub mod apps;
pub mod config;
pub mod metrics;
pub mod protocol;
pub mod registry;
