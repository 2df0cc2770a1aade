//! Size and count limits of the Pusher protocol, as plain data and pure checks.
//! Must not read configuration files or the environment: `config/` builds a `Limits`.

use serde::{Deserialize, Serialize};

/// Channels per connection by default: far above an Echo page with a few hundred channels, far
/// below what lets one socket hold megabytes of registry state.
const DEFAULT_MAX_SUBSCRIPTIONS: usize = 1000;

/// Per-app size and count limits, enforced on both the WebSocket and the REST paths.
///
/// The defaults are the values Pusher documents (see `pusher-protocol.md` §0 and §10).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest `data` of an event (REST trigger or client event), in bytes.
    pub max_event_data_bytes: usize,
    /// Longest event name, in characters.
    pub max_event_name_len: usize,
    /// Longest channel name, in characters (Pusher docs say 164; the SDKs allow 200).
    pub max_channel_name_len: usize,
    /// Most channels in one `POST /events` trigger.
    pub max_channels_per_trigger: usize,
    /// Most events in one `POST /batch_events` call.
    pub max_batch_events: usize,
    /// Most distinct users in one presence channel.
    pub max_presence_members: usize,
    /// Largest presence `user_info`, in bytes of its JSON text.
    pub max_presence_user_info_bytes: usize,
    /// Longest presence `user_id`, in characters.
    pub max_presence_user_id_len: usize,
    /// Client events one connection may send per second.
    pub client_events_per_second: u32,
    /// Most user ids kept from a signin's watchlist.
    pub max_watchlist_size: usize,
    /// Most channels one connection may be subscribed to at once (user channels included).
    pub max_subscriptions_per_connection: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_event_data_bytes: 10 * 1024,
            max_event_name_len: 200,
            max_channel_name_len: 200,
            max_channels_per_trigger: 100,
            max_batch_events: 10,
            max_presence_members: 100,
            max_presence_user_info_bytes: 1024,
            max_presence_user_id_len: 128,
            client_events_per_second: 10,
            max_watchlist_size: 100,
            max_subscriptions_per_connection: DEFAULT_MAX_SUBSCRIPTIONS,
        }
    }
}
