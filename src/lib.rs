//! Herald: a self-hosted server for the Pusher Channels protocol.

pub mod protocol;
