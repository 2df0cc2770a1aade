//! Seam: fan-out and cluster-wide queries. `local` loops back into this node's registry; a
//! Redis adapter would publish on a bus and let every node deliver locally through the same calls.
//! Must not speak actix or Redis types in its signatures: protocol and registry types only.

mod local;

use bytestring::ByteString;

use crate::protocol::SocketId;
use crate::protocol::server_event::WatchlistStatus;
use crate::registry::ChannelStats;

pub use local::LocalAdapter;

/// Why the adapter could not do what was asked (the local adapter never fails).
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// The bus between nodes is unreachable.
    #[error("adapter unavailable: {0}")]
    Unavailable(String),
}

/// Fan-out and queries across every node serving the app.
///
/// Contract: frames are pre-encoded once by the caller and delivered byte-for-byte; delivery to
/// local sockets takes the same path on every driver, so per-channel order is the publish order
/// of one publisher. Queries answer for the whole cluster.
///
/// Presence `member_added`/`member_removed` are not published through here: the registry pushes
/// them to this node's subscribers under the channel lock, so that a concurrent joiner sees a
/// member either in its snapshot or as an event, never both. A cluster driver must forward them
/// (and decide "first socket of the user" cluster-wide) itself; the cache-channel store is also
/// node-local today and would move behind this seam with it.
#[async_trait::async_trait]
pub trait Adapter: Send + Sync {
    /// Delivers `frame` to every subscriber of `channel`, except the socket `except`.
    async fn publish(
        &self,
        app_id: &str,
        channel: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), AdapterError>;

    /// Delivers `frame` to every socket signed in as `user_id` (`#server-to-user-{id}`), except
    /// the socket `except`.
    async fn send_to_user(
        &self,
        app_id: &str,
        user_id: &str,
        frame: ByteString,
        except: Option<&SocketId>,
    ) -> Result<(), AdapterError>;

    /// Closes every socket signed in as `user_id`.
    async fn terminate_user(&self, app_id: &str, user_id: &str) -> Result<(), AdapterError>;

    /// Occupied channels whose names start with `prefix`, with their counts.
    async fn channels(&self, app_id: &str, prefix: &str) -> Result<Vec<ChannelStats>, AdapterError>;

    /// One channel's counts, `None` when unoccupied.
    async fn channel(&self, app_id: &str, channel: &str) -> Result<Option<ChannelStats>, AdapterError>;

    /// Distinct user ids of a presence channel, sorted.
    async fn presence_users(&self, app_id: &str, channel: &str) -> Result<Vec<String>, AdapterError>;

    /// Tells every socket watching `user_id` that it went online or offline.
    async fn watchlist_changed(&self, app_id: &str, user_id: &str, status: WatchlistStatus)
    -> Result<(), AdapterError>;

    /// Which of `user_ids` have a signed-in connection.
    async fn online_users(&self, app_id: &str, user_ids: &[String]) -> Result<Vec<String>, AdapterError>;
}
