//! The node's lease and what follows from it: renewing it, reaping dead nodes, fencing this one
//! when it lost its lease, and registering this node's local truth again after a gap.
//!
//! - Every `heartbeat` the node renews its lease (an expiry in Redis time) and claims dead
//!   nodes; a claim goes to exactly one node (a script), which removes the dead node's shares
//!   channel by channel (each change announced once, through `Transitions`) and marks it
//!   reaped. A claim that its reaper did not finish runs out and is taken again.
//! - A node that could not renew for a whole lease, or finds itself marked reaped, is fenced:
//!   its sockets are asked to reconnect (4200) and new ones refused, so no client keeps state
//!   the others may have reaped. Once Redis answers again and its sockets are gone, it removes
//!   whatever it still had registered and serves again.
//! - After the bus connection dropped (or any state command failed), the node subscribes to
//!   its bus channels again and sets its shares to what it really holds: Redis may have
//!   restarted empty, or a leave may not have been recorded.
//!
//! Must not run two of these at once: one task owns the lease.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use redis::{RedisResult, Value};
use tokio::time::{Duration, Instant};

use super::Core;
use super::state::member;
use crate::metrics::ClusterOp;
use crate::protocol::ErrorCode;

/// How long a reaper's claim on a dead node lasts before another node may take it over.
const CLAIM: Duration = Duration::from_secs(60);
/// How long a reaped node's mark lasts (it tells a node back from a partition it was reaped).
const REAPED_MARK_SECS: u64 = 86_400;
/// How long a fenced node waits for its sockets to close before it clears its registration.
const FENCE_DRAIN: Duration = Duration::from_secs(5);

/// Renews the lease once. Returns whether this node was marked reaped meanwhile.
pub(super) async fn renew(core: &Core) -> RedisResult<bool> {
    let mut cmd = core.cmd.clone();
    let reaped: bool = redis::cmd("EXISTS").arg(core.keys.node(&core.node).reaped).query_async(&mut cmd).await?;
    let lease = u64::try_from(core.settings.lease.as_millis()).unwrap_or(u64::MAX);
    let _: i64 =
        core.scripts.heartbeat.key(core.keys.nodes()).arg(&core.node).arg(lease).invoke_async(&mut cmd).await?;
    Ok(reaped)
}

/// Runs until the driver is dropped.
pub(super) async fn run(core: Weak<Core>) {
    let Some(heartbeat) = core.upgrade().map(|c| c.settings.heartbeat) else { return };
    let mut every = tokio::time::interval(heartbeat);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_renewal = Instant::now();
    let mut gap = false;
    // While Redis is unreachable, every failed command signals a gap: wait for the next tick
    // then, rather than retrying as fast as commands fail.
    let mut reachable = true;
    loop {
        let gap_signal = {
            let Some(core) = core.upgrade() else { return };
            async move { core.gap.notified().await }
        };
        tokio::select! {
            _ = every.tick() => {}
            () = gap_signal, if reachable => gap = true,
        }
        let Some(core) = core.upgrade() else { return };
        match renew(&core).await {
            Ok(reaped) => {
                reachable = true;
                last_renewal = Instant::now();
                core.metrics.bus_up.set(1);
                if reaped || core.fenced.load(Ordering::Acquire) {
                    fence(&core);
                    recover(&core).await;
                    gap = false;
                } else if gap {
                    gap = resync(&core).await.is_err();
                    if !gap {
                        later_announce_failed_leaves(Arc::downgrade(&core));
                    }
                }
                reap_dead(&core).await;
            }
            Err(e) => {
                reachable = false;
                core.metrics.failed(ClusterOp::Heartbeat);
                core.metrics.bus_up.set(0);
                gap = true;
                tracing::warn!(error = %e, "lease renewal failed");
                if last_renewal.elapsed() >= core.settings.lease {
                    fence(&core);
                }
            }
        }
    }
}

/// Asks every socket to reconnect and refuses new ones until `recover`.
fn fence(core: &Core) {
    if core.fenced.swap(true, Ordering::AcqRel) {
        return;
    }
    core.metrics.fenced.inc();
    core.health.set_fenced(true);
    tracing::error!(node = %core.node, "lease lost: asking every socket to reconnect");
    for (_, ns) in core.registry.namespaces() {
        for out in ns.outbounds() {
            out.close(ErrorCode::ReconnectImmediately);
        }
    }
}

/// After a fence: waits (a while) for the sockets to go, removes whatever this node still has
/// registered, and serves again.
async fn recover(core: &Core) {
    let deadline = Instant::now() + FENCE_DRAIN;
    while Instant::now() < deadline && core.registry.namespaces().iter().any(|(_, ns)| ns.connection_count() > 0) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Err(e) = drop_node(core, &core.node).await {
        return tracing::warn!(error = %e, "could not clear this node's registration yet");
    }
    let _: RedisResult<()> =
        redis::cmd("DEL").arg(core.keys.node(&core.node).reaped).query_async(&mut core.cmd.clone()).await;
    core.fenced.store(false, Ordering::Release);
    core.health.set_fenced(false);
    tracing::info!(node = %core.node, "lease recovered: serving again");
}

/// Claims dead nodes and removes what they held.
async fn reap_dead(core: &Core) {
    let mut cmd = core.cmd.clone();
    let claim = u64::try_from(CLAIM.as_millis()).unwrap_or(u64::MAX);
    let claimed: RedisResult<Vec<String>> =
        core.scripts.claim.key(core.keys.nodes()).key(core.keys.reaping()).arg(claim).invoke_async(&mut cmd).await;
    match claimed {
        Ok(dead) => {
            for node in dead {
                tracing::warn!(dead = %node, "reaping a node whose lease ran out");
                match drop_node(core, &node).await {
                    Ok(()) => {
                        core.metrics.reaped.inc();
                        let _: RedisResult<()> = redis::pipe()
                            .cmd("SET")
                            .arg(core.keys.node(&node).reaped)
                            .arg(1)
                            .arg("EX")
                            .arg(REAPED_MARK_SECS)
                            .ignore()
                            .query_async(&mut cmd)
                            .await;
                        let _: RedisResult<()> =
                            redis::cmd("ZREM").arg(core.keys.reaping()).arg(&node).query_async(&mut cmd).await;
                    }
                    Err(e) => {
                        core.metrics.failed(ClusterOp::Reap);
                        tracing::warn!(error = %e, dead = %node, "reap interrupted; it is taken up again later");
                    }
                }
            }
        }
        Err(e) => {
            core.metrics.failed(ClusterOp::Reap);
            tracing::warn!(error = %e, "could not look for dead nodes");
        }
    }
    let live: RedisResult<i64> = redis::cmd("ZCARD").arg(core.keys.nodes()).query_async(&mut cmd).await;
    if let Ok(n) = live {
        core.metrics.nodes.set(n);
    }
}

/// Removes everything `node` has registered: its channel shares (announcing what changes),
/// its signed-in users, its connection slots; then its records.
async fn drop_node(core: &Core, node: &str) -> RedisResult<()> {
    let mut cmd = core.cmd.clone();
    let nk = core.keys.node(node);
    let channels: Vec<String> = redis::cmd("SMEMBERS").arg(&nk.channels).query_async(&mut cmd).await?;
    for m in channels {
        let Some((app, channel)) = m.split_once('\n') else { continue };
        drop_share(core, node, app, channel).await?;
        let _: () = redis::cmd("SREM").arg(&nk.channels).arg(&m).query_async(&mut cmd).await?;
    }
    let users: Vec<String> = redis::cmd("SMEMBERS").arg(&nk.users).query_async(&mut cmd).await?;
    for m in users {
        let Some((app, user)) = m.split_once('\n') else { continue };
        let keys = core.keys.user(app, user);
        let mut script = core.scripts.sign_out.prepare_invoke();
        script.key(&keys.nodes).key(&keys.bus).arg(node).arg(core.publish_command()).arg("all");
        let _: i64 = script.invoke_async(&mut cmd).await?;
        let _: () = redis::cmd("SREM").arg(&nk.users).arg(&m).query_async(&mut cmd).await?;
    }
    let apps: Vec<String> = redis::cmd("SMEMBERS").arg(&nk.apps).query_async(&mut cmd).await?;
    for app in apps {
        let mut script = core.scripts.disconnect.prepare_invoke();
        script.key(core.keys.connections(&app)).arg(node).arg("all");
        let _: i64 = script.invoke_async(&mut cmd).await?;
    }
    redis::cmd("DEL").arg(&nk.channels).arg(&nk.users).arg(&nk.apps).query_async(&mut cmd).await
}

/// Removes `node`'s share of one channel and announces what changed.
async fn drop_share(core: &Core, node: &str, app: &str, channel: &str) -> RedisResult<()> {
    let keys = core.keys.channel(app, channel);
    let res: Value = core
        .scripts
        .drop_node
        .key(&keys.nodes)
        .key(&keys.users)
        .key(&keys.infos)
        .key(&keys.version)
        .key(keys.node_users(node))
        .key(&keys.bus)
        .arg(node)
        .arg(core.publish_command())
        .arg(channel)
        .invoke_async(&mut core.cmd.clone())
        .await?;
    let Value::Array(items) = res else { return Ok(()) };
    let int = |i: usize| match items.get(i) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    };
    let removed: Vec<String> = items
        .iter()
        .skip(3)
        .filter_map(|v| match v {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
            _ => None,
        })
        .collect();
    if int(0) == 0 && removed.is_empty() {
        return Ok(());
    }
    if let Some(t) = core.transitions.get() {
        let count = usize::try_from(int(2)).unwrap_or(0);
        t.left(app, channel, &removed, int(1) == 1, count).await;
    }
    Ok(())
}

/// Subscribes to every bus channel again and sets this node's shares to what it holds.
async fn resync(core: &Core) -> RedisResult<()> {
    core.metrics.resyncs.inc();
    core.interest.renew().await?;
    let mut cmd = core.cmd.clone();
    let nk = core.keys.node(&core.node);
    // What Redis still has recorded under this node: those shares are set right below (leaves
    // included); a failed leave on a channel Redis forgot is announced at the end.
    let before: std::collections::HashSet<String> =
        redis::cmd("SMEMBERS").arg(&nk.channels).query_async::<Vec<String>>(&mut cmd).await?.into_iter().collect();
    let mut held = std::collections::HashSet::new();
    for (app, ns) in core.registry.namespaces() {
        for (name, channel) in ns.channels() {
            let count = channel.subscription_count();
            if count == 0 {
                continue;
            }
            let keys = core.keys.channel(&app, &name);
            let mut script = core.scripts.register.key(&keys.nodes);
            script
                .key(&keys.users)
                .key(&keys.infos)
                .key(&keys.version)
                .key(keys.node_users(&core.node))
                .key(&keys.bus)
                .arg(&core.node)
                .arg(count)
                .arg(core.publish_command())
                .arg(&name);
            for m in channel.local_members() {
                script.arg(&*m.user_id).arg(m.sockets).arg(m.info.as_deref().map_or("", |i| i.get()));
            }
            let _: i64 = script.invoke_async(&mut cmd).await?;
            let m = member(&app, &name);
            let _: () = redis::cmd("SADD").arg(&nk.channels).arg(&m).query_async(&mut cmd).await?;
            held.insert(m);
        }
        let (users, _) = ns.users_and_watched();
        for (user, sockets) in users {
            let keys = core.keys.user(&app, &user);
            let _: () = redis::cmd("HSET").arg(&keys.nodes).arg(&core.node).arg(sockets).query_async(&mut cmd).await?;
            let m = member(&app, &user);
            let _: () = redis::cmd("SADD").arg(&nk.users).arg(&m).query_async(&mut cmd).await?;
            held.insert(m);
        }
        if core.quota_apps.contains(&app) {
            let key = core.keys.connections(&app);
            let n = ns.connection_count();
            let _: () = redis::cmd("HSET").arg(key).arg(&core.node).arg(n).query_async(&mut cmd).await?;
            let _: () = redis::cmd("SADD").arg(&nk.apps).arg(&app).query_async(&mut cmd).await?;
        }
    }
    // What Redis still lists under this node but the node no longer holds: leaves and
    // sign-outs that could not be recorded.
    let recorded: Vec<String> = redis::cmd("SMEMBERS").arg(&nk.channels).query_async(&mut cmd).await?;
    for m in recorded.into_iter().filter(|m| !held.contains(m)) {
        if let Some((app, channel)) = m.split_once('\n') {
            drop_share(core, &core.node, app, channel).await?;
        }
        let _: () = redis::cmd("SREM").arg(&nk.channels).arg(&m).query_async(&mut cmd).await?;
    }
    let recorded: Vec<String> = redis::cmd("SMEMBERS").arg(&nk.users).query_async(&mut cmd).await?;
    for m in recorded.into_iter().filter(|m| !held.contains(m)) {
        if let Some((app, user)) = m.split_once('\n') {
            let keys = core.keys.user(app, user);
            let mut script = core.scripts.sign_out.prepare_invoke();
            script.key(&keys.nodes).key(&keys.bus).arg(&core.node).arg(core.publish_command()).arg("all");
            let _: i64 = script.invoke_async(&mut cmd).await?;
        }
        let _: () = redis::cmd("SREM").arg(&nk.users).arg(&m).query_async(&mut cmd).await?;
    }
    // Leaves on channels Redis forgot wait for `announce_failed_leaves`; the others were just
    // settled by the share updates above.
    core.failed_leaves.lock().retain(|(app, channel, _)| !before.contains(&member(app, channel)));
    tracing::info!("bus re-subscribed and local state registered again");
    Ok(())
}

/// Announces the failed leaves two heartbeats after a resync: the other nodes, which lost Redis
/// too, have subscribed again by then, so their clients get the `member_removed`.
fn later_announce_failed_leaves(core: Weak<Core>) {
    tokio::spawn(async move {
        let Some(wait) = core.upgrade().map(|c| c.settings.heartbeat * 2) else { return };
        tokio::time::sleep(wait).await;
        if let Some(core) = core.upgrade()
            && let Err(e) = announce_failed_leaves(&core).await
        {
            tracing::warn!(error = %e, "member_removed of leaves made while Redis was away not sent yet");
        }
    });
}

/// Presence leaves that could not be recorded on a channel whose record Redis lost (it came
/// back empty): a user no node holds gets its `member_removed` (and its webhook) now. Where the
/// record survived, the resync's own share update already announced it.
async fn announce_failed_leaves(core: &Core) -> RedisResult<()> {
    let pending = std::mem::take(&mut *core.failed_leaves.lock());
    for (i, (app, channel, user)) in pending.iter().enumerate() {
        let keys = core.keys.channel(app, channel);
        let frame = crate::protocol::server_event::member_removed(channel, user);
        let mut script = core.scripts.gone.prepare_invoke();
        script.key(&keys.users).key(&keys.version).key(&keys.bus).arg(user).arg(core.publish_command()).arg(frame);
        match script.invoke_async::<i64>(&mut core.cmd.clone()).await {
            Ok(1) => {
                if let Some(t) = core.transitions.get() {
                    let empty: bool =
                        redis::cmd("EXISTS").arg(&keys.nodes).query_async::<i64>(&mut core.cmd.clone()).await? == 0;
                    t.left(app, channel, std::slice::from_ref(user), empty, 0).await;
                }
            }
            Ok(_) => {}
            Err(e) => {
                // Keep the rest for the next resync.
                core.failed_leaves.lock().extend(pending[i..].iter().cloned());
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Leaves the cluster: gives back what is still registered, then the lease.
pub(super) async fn leave(core: &Core) -> RedisResult<()> {
    drop_node(core, &core.node).await?;
    redis::cmd("ZREM").arg(core.keys.nodes()).arg(&core.node).query_async(&mut core.cmd.clone()).await
}
