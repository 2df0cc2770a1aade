//! The Lua scripts that decide cluster transitions, one round trip each; each touches the keys
//! of one channel, one user, one app or the node list only (one slot on Redis Cluster).
//! Must not hold decisions of its own: the logic is in `lua/*.lua`, documented there, each
//! behind `lua/prelude.lua` (the roster version, presence publishes, the member_removed frame).

use redis::Script;

/// Every script, loaded once (`EVALSHA`, falling back to `EVAL` after a Redis restart).
pub(super) struct Scripts {
    pub(super) join: Script,
    pub(super) leave: Script,
    pub(super) drop_node: Script,
    pub(super) register: Script,
    pub(super) sign_in: Script,
    pub(super) sign_out: Script,
    pub(super) connect: Script,
    pub(super) disconnect: Script,
    pub(super) heartbeat: Script,
    pub(super) claim: Script,
    pub(super) confirm: Script,
    pub(super) gone: Script,
    pub(super) usage: Script,
}

/// A script from `lua/`, after the shared `lua/prelude.lua` (Lua has no includes).
macro_rules! script {
    ($name:literal) => {
        Script::new(concat!(include_str!("lua/prelude.lua"), include_str!(concat!("lua/", $name, ".lua"))))
    };
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            join: script!("join"),
            leave: script!("leave"),
            drop_node: script!("drop_node"),
            register: script!("register"),
            sign_in: script!("sign_in"),
            sign_out: script!("sign_out"),
            connect: script!("connect"),
            disconnect: script!("disconnect"),
            heartbeat: script!("heartbeat"),
            claim: script!("claim"),
            confirm: script!("confirm"),
            gone: script!("gone"),
            usage: script!("usage"),
        }
    }
}
