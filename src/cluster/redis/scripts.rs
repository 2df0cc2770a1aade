//! The Lua scripts that decide cluster transitions, one round trip each; each touches the keys
//! of one channel, one user, one app or the node list only (one slot on Redis Cluster).
//! Must not hold decisions of its own: the logic is in `lua/*.lua`, documented there.

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
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            join: Script::new(include_str!("lua/join.lua")),
            leave: Script::new(include_str!("lua/leave.lua")),
            drop_node: Script::new(include_str!("lua/drop_node.lua")),
            register: Script::new(include_str!("lua/register.lua")),
            sign_in: Script::new(include_str!("lua/sign_in.lua")),
            sign_out: Script::new(include_str!("lua/sign_out.lua")),
            connect: Script::new(include_str!("lua/connect.lua")),
            disconnect: Script::new(include_str!("lua/disconnect.lua")),
            heartbeat: Script::new(include_str!("lua/heartbeat.lua")),
            claim: Script::new(include_str!("lua/claim.lua")),
            confirm: Script::new(include_str!("lua/confirm.lua")),
            gone: Script::new(include_str!("lua/gone.lua")),
        }
    }
}
