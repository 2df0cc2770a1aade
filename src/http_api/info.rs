//! The `info` attribute lists of the REST API and the per-channel attribute objects they produce.
//! Must not query the cluster: callers pass the counts they fetched.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::protocol::ChannelKind;
use crate::registry::ChannelStats;

/// Which attributes an `info` comma list asked for (unknown names are ignored, as Pusher does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Info {
    /// `user_count`: distinct presence users.
    pub(super) user_count: bool,
    /// `subscription_count`: subscribed sockets.
    pub(super) subscription_count: bool,
    /// `cache`: the cached event of a cache channel.
    pub(super) cache: bool,
}

impl Info {
    /// Parses `user_count,subscription_count,…` (spaces around names tolerated).
    pub(super) fn parse(list: &str) -> Self {
        let mut info = Self::default();
        for name in list.split(',').map(str::trim) {
            match name {
                "user_count" => info.user_count = true,
                "subscription_count" => info.subscription_count = true,
                "cache" => info.cache = true,
                _ => {}
            }
        }
        info
    }

    /// The attributes a trigger reports for one channel, as the hosted service does:
    /// `subscription_count` on any channel, `user_count` on presence channels only (silently
    /// left out elsewhere); an unoccupied channel counts 0.
    pub(super) fn trigger_attrs(self, kind: ChannelKind, stats: Option<&ChannelStats>) -> Attrs {
        let presence = kind == ChannelKind::Presence;
        Attrs {
            user_count: (self.user_count && presence).then(|| stats.map_or(0, |s| s.user_count)),
            subscription_count: self.subscription_count.then(|| stats.map_or(0, |s| s.subscription_count)),
        }
    }

    /// The attributes `GET /channels` reports for one listed (occupied) channel.
    pub(super) fn list_attrs(self, stats: &ChannelStats) -> Attrs {
        Attrs {
            user_count: self.user_count.then_some(stats.user_count),
            subscription_count: self.subscription_count.then_some(stats.subscription_count),
        }
    }
}

/// One channel's attribute object; `{}` when nothing was asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub(super) struct Attrs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) user_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) subscription_count: Option<usize>,
}

/// `{"channels":{"name":{…}}}`: never `[]`, `{}` when empty (the PHP SDK needs an object).
#[derive(Debug, Default, Serialize)]
pub(super) struct ChannelMap {
    pub(super) channels: BTreeMap<String, Attrs>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists() {
        let i = Info::parse("user_count, subscription_count,,bogus");
        assert!(i.user_count && i.subscription_count && !i.cache);
        assert_eq!(Info::parse(""), Info::default());
        assert!(Info::parse("cache").cache);
    }

    #[test]
    fn trigger_attrs_follow_the_channel_kind() {
        let both = Info::parse("user_count,subscription_count");
        let stats = ChannelStats { name: "x".into(), subscription_count: 3, user_count: 2 };
        let p = both.trigger_attrs(ChannelKind::Presence, Some(&stats));
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"user_count":2,"subscription_count":3}"#);
        let p = Info::parse("user_count").trigger_attrs(ChannelKind::Presence, None);
        assert_eq!(serde_json::to_string(&p).unwrap(), r#"{"user_count":0}"#);
        let o = both.trigger_attrs(ChannelKind::Public, None);
        assert_eq!(serde_json::to_string(&o).unwrap(), r#"{"subscription_count":0}"#);
        let none = Info::parse("user_count").trigger_attrs(ChannelKind::Private, Some(&stats));
        assert_eq!(serde_json::to_string(&none).unwrap(), "{}");
    }
}
