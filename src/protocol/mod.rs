//! The Pusher Channels protocol as pure data and functions: parse, encode, sign, verify.
//! Must not do IO, read clocks or randomness, or name tokio/actix/dashmap.

mod channel;
mod client_event;
mod codes;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) mod fuzz;
mod ids;
mod limits;
mod origin;
mod presence;
pub mod server_event;
pub mod signature;
mod webhook;

pub use channel::{ChannelKind, ChannelName, USER_CHANNEL_PREFIX};
pub use client_event::{ClientEvent, ClientMessage, Signin, Subscribe, parse};
pub use codes::{CLOSE_MESSAGE_TOO_BIG, ErrorCode, ReconnectPolicy, SubscriptionErrorKind};
pub use error::ProtocolError;
pub use ids::{SocketId, is_valid_socket_id};
pub use limits::Limits;
pub use origin::{OriginPattern, OriginPolicy, is_valid_pattern as is_valid_origin_pattern};
pub use presence::{PresenceMember, UserData, canonical_id};
pub use webhook::{WebhookEvent, WebhookKind, body as webhook_body};
