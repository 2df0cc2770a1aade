//! `ClusterState` on Redis: connection slots, joins, leaves, sign-ins and the cache, each one
//! script (or command) on the keys of one channel, user or app.
//!
//! A join takes the node's interest in the channel's bus first (subscribed and recorded), then
//! registers the socket locally as pending, then runs the script: an event published after
//! the script decided the join can only reach the socket (pending or not), and one the roster
//! already had is skipped by its version. A leave runs the script first and gives the interest
//! back after; when the script fails, the node's record of the channel stays, so the next
//! resync removes the share it could not give back.
//! Must not leave a local registration behind on an error: every failure path undoes it.

use std::sync::Arc;

use bytestring::ByteString;
use redis::{RedisResult, Value};
use serde_json::value::RawValue;
use tokio::time::{Duration, Instant};

use super::interest::{Record, Target};
use super::{Core, RedisCluster};
use crate::cluster::{CachedEvent, ClusterError, ClusterState, Joined, Left};
use crate::metrics::ClusterOp;
use crate::protocol::{ChannelKind, ChannelName, PresenceMember, SocketId, server_event};
use crate::registry::{Namespace, Outbound};

impl Core {
    /// Takes the interest in a channel's bus; the first local subscriber also records the
    /// channel under this node.
    async fn take_channel(&self, app: &str, channel: &str, bus: &str) -> Result<(), ClusterError> {
        let target = || Target::Channel { app: app.into(), channel: channel.into() };
        let (set, member) = (self.keys.node(&self.node).channels, member(app, channel));
        let record = Record { set: &set, member: &member };
        self.interest.acquire(bus, target, &record).await.map_err(|e| self.failure(ClusterOp::Subscribe, &e))
    }

    /// Gives the interest back; the last local subscriber also drops the node's record,
    /// unless `keep_record` (the leave could not be recorded: the resync needs it).
    async fn give_channel(&self, app: &str, channel: &str, bus: &str, keep_record: bool) {
        let (set, member) = (self.keys.node(&self.node).channels, member(app, channel));
        self.interest.release(bus, &Record { set: &set, member: &member }, keep_record).await;
    }

    /// Takes the interest in a user's bus (signed-in sockets and watchers), recorded under
    /// this node's users while held.
    async fn take_user(&self, app: &str, user: &str) -> RedisResult<()> {
        let bus = self.keys.user(app, user).bus;
        let (set, member) = (self.keys.node(&self.node).users, member(app, user));
        let target = || Target::User { app: app.into(), user: user.into() };
        self.interest.acquire(&bus, target, &Record { set: &set, member: &member }).await
    }

    async fn give_user(&self, app: &str, user: &str, keep_record: bool) {
        let bus = self.keys.user(app, user).bus;
        let (set, member) = (self.keys.node(&self.node).users, member(app, user));
        self.interest.release(&bus, &Record { set: &set, member: &member }, keep_record).await;
    }

    /// Records one of this node's interests in Redis (`SADD` to a node set).
    async fn record(&self, set: &str, member: &str) -> RedisResult<()> {
        redis::cmd("SADD").arg(set).arg(member).query_async(&mut self.cmd.clone()).await
    }

    /// Counts a failure and turns it into the seam's error; the next heartbeat resyncs.
    fn failure(&self, op: ClusterOp, e: &redis::RedisError) -> ClusterError {
        self.metrics.failed(op);
        tracing::warn!(error = %e, operation = ?op, "cluster operation failed");
        self.gap.notify_one();
        self.unavailable(e)
    }
}

/// Presence leaves kept for announcing after a Redis outage, at most.
const MAX_FAILED_LEAVES: usize = 100_000;

/// A node-set member naming one channel or user of one app.
pub(super) fn member(app: &str, name: &str) -> String {
    format!("{app}\n{name}")
}

/// The script's reply as integers and strings.
fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        other => vec![other],
    }
}

fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int(n)) => *n,
        _ => 0,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The presence `subscription_succeeded` from `user, info, user, info…`.
fn roster_reply(channel: &str, flat: &[Value]) -> ByteString {
    let pairs: Vec<(String, Option<Box<RawValue>>)> = flat
        .chunks(2)
        .filter_map(|p| {
            let user = text(p.first()?)?;
            let info = text(p.get(1)?).filter(|i| !i.is_empty()).and_then(|i| RawValue::from_string(i).ok());
            Some((user, info))
        })
        .collect();
    let mut roster: Vec<(&str, Option<&RawValue>)> = pairs.iter().map(|(u, i)| (u.as_str(), i.as_deref())).collect();
    roster.sort_by(|a, b| a.0.cmp(b.0));
    server_event::presence_subscription_succeeded(channel, &roster).into()
}

impl RedisCluster {
    /// The answer to a repeated subscribe: the current roster on presence channels.
    async fn again(&self, app: &str, name: &ChannelName) -> Result<Joined, ClusterError> {
        if name.kind() != ChannelKind::Presence {
            return Ok(Joined::Again { reply: server_event::subscription_succeeded(name.as_str()).into() });
        }
        let keys = self.core.keys.channel(app, name.as_str());
        let flat: RedisResult<Value> =
            redis::cmd("HGETALL").arg(&keys.infos).query_async(&mut self.core.cmd.clone()).await;
        let flat = flat.map_err(|e| self.core.failure(ClusterOp::State, &e))?;
        Ok(Joined::Again { reply: roster_reply(name.as_str(), &items(flat)) })
    }

    async fn run_join(
        &self,
        app: &str,
        name: &ChannelName,
        member: Option<&PresenceMember>,
        max_members: usize,
    ) -> RedisResult<Value> {
        let core = &self.core;
        let keys = core.keys.channel(app, name.as_str());
        let (user, info, frame) = match member {
            Some(m) => (
                m.user_id.as_str(),
                m.user_info.as_deref().map_or("", RawValue::get),
                server_event::member_added(name.as_str(), &m.user_id, m.user_info.as_deref()),
            ),
            None => ("", "", String::new()),
        };
        core.scripts
            .join
            .key(&keys.nodes)
            .key(&keys.users)
            .key(&keys.infos)
            .key(&keys.version)
            .key(keys.node_users(&core.node))
            .key(&keys.bus)
            .key(&keys.vacated)
            .key(&keys.removals)
            .arg(&core.node)
            .arg(user)
            .arg(info)
            .arg(max_members)
            .arg(core.publish_command())
            .arg(frame)
            .invoke_async(&mut core.cmd.clone())
            .await
    }
}

#[async_trait::async_trait]
impl ClusterState for RedisCluster {
    async fn connect(&self, ns: &Namespace, outbound: &Outbound, max: usize) -> Result<bool, ClusterError> {
        let core = &self.core;
        if core.fenced.load(std::sync::atomic::Ordering::Acquire) {
            return Err(ClusterError::Unavailable("this node lost its lease".into()));
        }
        if max != 0 {
            let app = ns.app_id();
            if !core.quota_apps.contains(app) {
                let apps = core.keys.node(&core.node).apps;
                core.record(&apps, app).await.map_err(|e| core.failure(ClusterOp::State, &e))?;
                core.quota_apps.insert(app.to_owned());
            }
            let mut script = core.scripts.connect.prepare_invoke();
            script.key(core.keys.connections(app)).arg(&core.node).arg(max);
            let taken: i64 =
                script.invoke_async(&mut core.cmd.clone()).await.map_err(|e| core.failure(ClusterOp::State, &e))?;
            if taken == 0 {
                return Ok(false);
            }
        }
        Ok(ns.add_socket(outbound, 0))
    }

    async fn disconnect(&self, ns: &Namespace, sid: &SocketId) {
        ns.remove_socket(sid);
        let core = &self.core;
        let app = ns.app_id();
        if core.quota_apps.contains(app) {
            let mut script = core.scripts.disconnect.prepare_invoke();
            script.key(core.keys.connections(app)).arg(&core.node).arg(1);
            let res: RedisResult<i64> = script.invoke_async(&mut core.cmd.clone()).await;
            if let Err(e) = res {
                core.failure(ClusterOp::State, &e);
            }
        }
    }

    async fn join(
        &self,
        ns: &Namespace,
        channel: &ChannelName,
        outbound: &Outbound,
        member: Option<PresenceMember>,
        max_members: usize,
    ) -> Result<Joined, ClusterError> {
        let (core, app, name) = (&self.core, ns.app_id(), channel.as_str());
        let sid = outbound.socket_id();
        if ns.channel(name).is_some_and(|c| c.subscriber(sid).is_some()) {
            return self.again(app, channel).await;
        }
        let bus = core.keys.channel(app, name).bus;
        core.take_channel(app, name, &bus).await?;
        let local = member.as_ref().map(|m| (Arc::<str>::from(m.user_id.as_str()), m.user_info.clone()));
        let Some((ch, here)) = ns.attach(name, outbound, local.as_ref()) else {
            // A concurrent subscribe of the same socket won the race.
            core.give_channel(app, name, &bus, false).await;
            return self.again(app, channel).await;
        };
        let decided = match self.run_join(app, channel, member.as_ref(), max_members).await {
            Ok(v) => items(v),
            Err(e) => {
                ns.detach(name, sid);
                core.give_channel(app, name, &bus, true).await;
                return Err(core.failure(ClusterOp::State, &e));
            }
        };
        if int(decided.first()) == 0 {
            ns.detach(name, sid);
            core.give_channel(app, name, &bus, false).await;
            return Ok(Joined::PresenceFull);
        }
        let subscription_count = usize::try_from(int(decided.get(3))).unwrap_or(0);
        let (reply, version) = if member.is_some() {
            let version = u64::try_from(int(decided.get(7))).unwrap_or(0);
            (roster_reply(name, decided.get(8..).unwrap_or_default()), version)
        } else {
            (server_event::subscription_succeeded(name).into(), 0)
        };
        ch.activate(sid, version);
        Ok(Joined::New {
            occupied: int(decided.get(1)) == 1,
            member_added: int(decided.get(2)) == 1,
            reply,
            subscription_count,
            cancels_vacate: int(decided.get(4)) == 1,
            cancels_removal: int(decided.get(5)) == 1,
            here,
        })
    }

    async fn leave(&self, ns: &Namespace, channel: &ChannelName, sid: &SocketId) -> Left {
        let (core, app, name) = (&self.core, ns.app_id(), channel.as_str());
        let Some((detached, empty_here)) = ns.detach(name, sid) else { return Left::default() };
        let here = (empty_here, detached.last_of_user);
        let user = detached.user_id;
        let keys = core.keys.channel(app, name);
        let frame = user.as_deref().map(|u| server_event::member_removed(name, u)).unwrap_or_default();
        let delay = u64::try_from(core.settings.vacate_delay.as_millis()).unwrap_or(u64::MAX);
        let token: u64 = rand::random::<u64>() >> 1;
        let res: RedisResult<Value> = core
            .scripts
            .leave
            .key(&keys.nodes)
            .key(&keys.users)
            .key(&keys.infos)
            .key(&keys.version)
            .key(keys.node_users(&core.node))
            .key(&keys.bus)
            .key(&keys.vacated)
            .key(&keys.removals)
            .arg(&core.node)
            .arg(user.as_deref().unwrap_or(""))
            .arg(core.publish_command())
            .arg(frame)
            .arg(delay)
            .arg(token)
            .invoke_async(&mut core.cmd.clone())
            .await;
        let decided = match res {
            Ok(v) => items(v),
            Err(e) => {
                core.failure(ClusterOp::State, &e);
                if let Some(user) = &user {
                    let mut failed = core.failed_leaves.lock();
                    // Bounded: past it (a very long outage) the ghost member stays until its
                    // channel empties; counted with the failure above.
                    if failed.len() < MAX_FAILED_LEAVES {
                        failed.push((app.to_owned(), name.to_owned(), user.to_string()));
                    }
                }
                core.give_channel(app, name, &keys.bus, true).await;
                return Left { was_subscribed: true, here, ..Left::default() };
            }
        };
        core.give_channel(app, name, &keys.bus, false).await;
        let (vacated, removed) = (int(decided.get(1)) == 1, int(decided.get(2)) == 1);
        Left {
            was_subscribed: int(decided.first()) == 1,
            vacated,
            member_removed: removed.then_some(user).flatten(),
            subscription_count: usize::try_from(int(decided.get(3))).unwrap_or(0),
            held: (delay > 0 && (vacated || removed)).then_some(token),
            here,
        }
    }

    async fn removal_stands(
        &self,
        app_id: &str,
        channel: &str,
        user: Option<&str>,
        vacated: bool,
        token: u64,
    ) -> (bool, bool) {
        let core = &self.core;
        let keys = core.keys.channel(app_id, channel);
        let mut script = core.scripts.confirm.prepare_invoke();
        script.key(&keys.vacated).key(&keys.removals).arg(token).arg(if vacated { "1" } else { "0" });
        script.arg(user.unwrap_or(""));
        match script.invoke_async::<(i64, i64)>(&mut core.cmd.clone()).await {
            Ok((vacate, removal)) => (vacate == 1, removal == 1),
            Err(e) => {
                // Unknown: announce what the leave decided rather than lose it.
                core.failure(ClusterOp::State, &e);
                (vacated, user.is_some())
            }
        }
    }

    async fn sign_in(
        &self,
        ns: &Namespace,
        user_id: &str,
        sid: &SocketId,
        watchlist: &[String],
    ) -> Result<bool, ClusterError> {
        let (core, app) = (&self.core, ns.app_id());
        core.take_user(app, user_id).await.map_err(|e| core.failure(ClusterOp::Subscribe, &e))?;
        let keys = core.keys.user(app, user_id);
        let mut script = core.scripts.sign_in.prepare_invoke();
        script.key(&keys.nodes).key(&keys.bus).arg(&core.node).arg(core.publish_command());
        let first: i64 = match script.invoke_async(&mut core.cmd.clone()).await {
            Ok(first) => first,
            Err(e) => {
                core.give_user(app, user_id, false).await;
                return Err(core.failure(ClusterOp::State, &e));
            }
        };
        ns.sign_in(user_id, sid);
        ns.watch(sid, watchlist);
        for watched in watchlist {
            if let Err(e) = core.take_user(app, watched).await {
                core.failure(ClusterOp::Subscribe, &e);
            }
        }
        Ok(first == 1)
    }

    async fn sign_out(&self, ns: &Namespace, user_id: &str, sid: &SocketId, watchlist: &[String]) -> bool {
        let (core, app) = (&self.core, ns.app_id());
        ns.unwatch(sid, watchlist);
        for watched in watchlist {
            core.give_user(app, watched, false).await;
        }
        ns.sign_out(user_id, sid);
        let keys = core.keys.user(app, user_id);
        let mut script = core.scripts.sign_out.prepare_invoke();
        script.key(&keys.nodes).key(&keys.bus).arg(&core.node).arg(core.publish_command()).arg(1);
        let res: RedisResult<i64> = script.invoke_async(&mut core.cmd.clone()).await;
        core.give_user(app, user_id, res.is_err()).await;
        match res {
            Ok(last) => last == 1,
            Err(e) => {
                core.failure(ClusterOp::State, &e);
                false
            }
        }
    }

    async fn cache_put(
        &self,
        app_id: &str,
        channel: &str,
        event: &str,
        data: &str,
        ttl: Duration,
    ) -> Result<(), ClusterError> {
        let core = &self.core;
        let key = core.keys.channel(app_id, channel).cache;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let value = format!("{event}\n{data}");
        let res: RedisResult<()> =
            redis::cmd("SET").arg(&key).arg(value).arg("PX").arg(ms).query_async(&mut core.cmd.clone()).await;
        res.map_err(|e| core.failure(ClusterOp::State, &e))
    }

    async fn cache_get(&self, app_id: &str, channel: &str) -> Result<Option<CachedEvent>, ClusterError> {
        let core = &self.core;
        let key = core.keys.channel(app_id, channel).cache;
        let mut pipe = redis::pipe();
        pipe.cmd("GET").arg(&key).cmd("PTTL").arg(&key);
        let res: RedisResult<(Option<String>, i64)> = pipe.query_async(&mut core.cmd.clone()).await;
        let (value, ttl) = res.map_err(|e| core.failure(ClusterOp::State, &e))?;
        let Some((event, data)) = value.as_deref().and_then(|v| v.split_once('\n')) else { return Ok(None) };
        let Ok(ms @ 1..) = u64::try_from(ttl) else { return Ok(None) };
        Ok(Some(CachedEvent {
            event: event.to_owned(),
            data: data.to_owned(),
            expires_at: Instant::now() + Duration::from_millis(ms),
        }))
    }
}
