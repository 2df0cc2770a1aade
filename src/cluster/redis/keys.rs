//! Redis key and bus-channel names. The keys of one channel share the hash tag
//! `{app:c:channel}`, those of one user `{app:u:user}` and those of one node `{node:id}`, so
//! every script touches a single slot and the same layout works on Redis Cluster, where the
//! channel's bus channel (sharded pub/sub) lives on the same shard as its keys.
//! Must not talk to Redis: names only.

/// Every name under one key prefix.
#[derive(Clone, Debug)]
pub(super) struct Keys {
    prefix: String,
}

/// The keys of one Pusher channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ChannelKeys {
    /// Hash node id → subscribed sockets on that node.
    pub(super) nodes: String,
    /// Hash user id → sockets of that presence user, cluster-wide.
    pub(super) users: String,
    /// Hash user id → the member's info (JSON), first socket's wins.
    pub(super) infos: String,
    /// Counter of presence transitions: the roster version.
    pub(super) version: String,
    /// The cache channel's last event.
    pub(super) cache: String,
    /// The bus channel.
    pub(super) bus: String,
    /// The token of a vacate held by the vacate delay.
    pub(super) vacated: String,
    /// Hash user id → the token of its removal held by the vacate delay.
    pub(super) removals: String,
    base: String,
}

impl ChannelKeys {
    /// Hash user id → that user's sockets on `node`.
    pub(super) fn node_users(&self, node: &str) -> String {
        format!("{}:nu:{node}", self.base)
    }
}

/// The keys of one signed-in user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct UserKeys {
    /// Hash node id → the user's signed-in sockets on that node.
    pub(super) nodes: String,
    /// The bus channel (frames to the user, terminations, online/offline for watchers).
    pub(super) bus: String,
}

/// The keys of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NodeKeys {
    /// Set of `app\nchannel` the node has subscribers on.
    pub(super) channels: String,
    /// Set of `app\nuser` signed in on the node.
    pub(super) users: String,
    /// Set of app ids whose connection slots the node holds.
    pub(super) apps: String,
    /// Present once the node was reaped: it must not come back with its old state.
    pub(super) reaped: String,
}

impl Keys {
    /// Names under `prefix`.
    pub(super) fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    /// The keys of `channel` of app `app`.
    pub(super) fn channel(&self, app: &str, channel: &str) -> ChannelKeys {
        let base = format!("{}:{{{app}:c:{channel}}}", self.prefix);
        ChannelKeys {
            nodes: format!("{base}:n"),
            users: format!("{base}:u"),
            infos: format!("{base}:i"),
            version: format!("{base}:v"),
            cache: format!("{base}:cache"),
            bus: format!("{base}:bus"),
            vacated: format!("{base}:vacated"),
            removals: format!("{base}:removals"),
            base,
        }
    }

    /// The keys of user `user` of app `app`.
    pub(super) fn user(&self, app: &str, user: &str) -> UserKeys {
        let base = format!("{}:{{{app}:u:{user}}}", self.prefix);
        UserKeys { nodes: format!("{base}:n"), bus: format!("{base}:bus") }
    }

    /// The keys of node `node`.
    pub(super) fn node(&self, node: &str) -> NodeKeys {
        let base = format!("{}:{{node:{node}}}", self.prefix);
        NodeKeys {
            channels: format!("{base}:channels"),
            users: format!("{base}:users"),
            apps: format!("{base}:apps"),
            reaped: format!("{base}:reaped"),
        }
    }

    /// Sorted set node id → lease expiry (Redis time, ms). Shares its slot with `reaping`.
    pub(super) fn nodes(&self) -> String {
        format!("{}:{{nodes}}:live", self.prefix)
    }

    /// Sorted set of dead nodes being reaped → when the reaper's claim runs out (ms).
    pub(super) fn reaping(&self) -> String {
        format!("{}:{{nodes}}:reaping", self.prefix)
    }

    /// Hash of app `app`'s usage on `day`: `messages`, `peak`, and `c:<node>` = that node's
    /// connections and when it said so (`count:ms`). Shares its slot with `connections`.
    pub(super) fn usage(&self, app: &str, day: u32) -> String {
        format!("{}:{{{app}:a}}:usage:{day}", self.prefix)
    }

    /// Hash node id → connections of app `app` on that node (apps with a connection quota).
    pub(super) fn connections(&self, app: &str) -> String {
        format!("{}:{{{app}:a}}:conns", self.prefix)
    }
}

/// The Redis Cluster hash slot of `key` (CRC16/XMODEM of its hash tag, mod 16384).
#[cfg(test)]
fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let close = bytes[open + 1..].iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &bytes[open + 1..open + 1 + close])
    });
    let mut crc: u16 = 0;
    for &b in tagged.unwrap_or(bytes) {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % 16384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channels_keys_and_bus_share_one_slot() {
        let keys = Keys::new("herald");
        for (app, channel) in [("1", "presence-room"), ("app}x", "a"), ("a{b", "private-x.y")] {
            let k = keys.channel(app, channel);
            let all = [
                &k.nodes,
                &k.users,
                &k.infos,
                &k.version,
                &k.cache,
                &k.bus,
                &k.vacated,
                &k.removals,
                &k.node_users("n1"),
            ];
            assert!(all.iter().all(|key| slot(key) == slot(&k.bus)), "{all:?}");
        }
        let u = keys.user("1", "we}ird{");
        assert_eq!(slot(&u.nodes), slot(&u.bus));
        assert_eq!(slot(&keys.nodes()), slot(&keys.reaping()));
        let n = keys.node("abc");
        assert!([&n.users, &n.apps, &n.reaped].iter().all(|key| slot(key) == slot(&n.channels)));
    }

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(slot("foo"), 12182);
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        assert_eq!(slot("123456789"), 12739);
    }
}
