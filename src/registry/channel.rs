//! One channel on this node: its subscribers and, for presence channels, its roster (local
//! driver), or its subscribers with their roster versions and pending frames (cluster drivers).
//! Must not await: every method is a short critical section with `try_push` at most.

use std::collections::HashMap;
use std::sync::Arc;

use bytestring::ByteString;
use parking_lot::{Mutex, RwLock};
use serde_json::value::RawValue;
use tokio::time::{Duration, Instant};

use super::outbound::{Fanout, Outbound, Pushed};
use crate::protocol::{PresenceMember, SocketId, server_event};

/// A channel's state, shared between its subscribers' tasks and publishers.
#[derive(Debug, Default)]
pub struct Channel {
    inner: RwLock<Inner>,
    count_throttle: Mutex<CountThrottle>,
}

/// When `subscription_count` was last announced, and whether a delayed one is scheduled.
#[derive(Debug, Default)]
struct CountThrottle {
    last: Option<Instant>,
    scheduled: bool,
}

/// Whether a `subscription_count` announcement may go out now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountDue {
    /// Announce now.
    Now,
    /// Too soon: schedule one announcement at this instant (nobody else will).
    Later(Instant),
    /// One is already scheduled; it will carry the latest count.
    Scheduled,
}

#[derive(Debug, Default)]
struct Inner {
    subscribers: HashMap<SocketId, Subscriber>,
    /// Presence roster: user id → member. Keyed by user, not socket: several tabs, one member.
    members: HashMap<String, Member>,
    /// The encoded presence `subscription_succeeded`, kept while the roster is unchanged, so a
    /// second tab of a member (or a repeated subscribe) does not encode the roster again.
    roster_reply: Option<ByteString>,
    /// Set by the leave that emptied the channel, which then drops it from its namespace: a
    /// joiner still holding this `Channel` must look the channel up again.
    closed: bool,
}

#[derive(Debug)]
struct Subscriber {
    outbound: Outbound,
    /// The presence user this socket joined as.
    user_id: Option<Arc<str>>,
    /// Set by cluster drivers only (`attach`); the local driver's subscribers need none of it.
    tracked: Option<Box<Tracked>>,
}

/// A cluster driver's subscriber: the roster version it was answered with, the frames that
/// arrived while its subscription was being decided, and its presence info.
#[derive(Debug, Default)]
struct Tracked {
    /// Presence events up to this version are already in the roster the socket got.
    since: u64,
    /// Frames (with their presence version) that arrived before `activate`; `None` once active.
    pending: Mutex<Option<Waiting>>,
    /// The presence info it joined with (to register it again after Redis lost its data).
    info: Option<Box<RawValue>>,
}

/// Frames waiting for a pending subscriber, each with its presence version.
type Waiting = Vec<(Option<u64>, ByteString)>;

/// Frames a pending subscriber may collect before it counts as a slow consumer.
const MAX_PENDING: usize = 1024;

/// A subscriber a cluster driver removed.
#[derive(Debug)]
pub struct Detached {
    /// The presence user it joined as.
    pub user_id: Option<Arc<str>>,
    /// It was that user's last socket in the channel on this node.
    pub last_of_user: bool,
}

/// A presence subscriber on this node, as a cluster driver re-registers it.
#[derive(Debug)]
pub struct LocalMember {
    /// User id.
    pub user_id: Arc<str>,
    /// The info of one of its sockets.
    pub info: Option<Box<RawValue>>,
    /// Its sockets subscribed on this node.
    pub sockets: usize,
}

#[derive(Debug)]
struct Member {
    /// Info of the user's first socket (first wins until every socket left).
    info: Option<Box<RawValue>>,
    sockets: usize,
}

/// What a subscribe did.
#[derive(Debug)]
pub enum Joined {
    /// The socket is now subscribed.
    New {
        /// The channel had no subscriber before (`channel_occupied`).
        occupied: bool,
        /// The user became a member with this socket (`member_added`), presence only.
        member_added: bool,
        /// The frame to answer with (`subscription_succeeded`, with the roster on presence).
        reply: ByteString,
        /// Subscribers now.
        subscription_count: usize,
        /// It cancelled a vacate still held by the vacate delay (cluster drivers): announce
        /// neither that vacate nor this occupation.
        cancels_vacate: bool,
        /// It cancelled the user's removal still held by the vacate delay (cluster drivers).
        cancels_removal: bool,
        /// This node's first subscriber of the channel, and the user's first socket in it on
        /// this node (the node's gauges; equal to the two above on one node).
        here: (bool, bool),
    },
    /// The socket was already subscribed; answer again, count nothing twice.
    Again {
        /// The frame to answer with.
        reply: ByteString,
    },
    /// The presence channel has `max_members` distinct users and this is a new one.
    PresenceFull,
}

/// What an unsubscribe did.
#[derive(Debug, Default)]
pub struct Left {
    /// The socket was subscribed.
    pub was_subscribed: bool,
    /// The channel has no subscriber any more (`channel_vacated`).
    pub vacated: bool,
    /// The user's last socket left (`member_removed`), presence only.
    pub member_removed: Option<Arc<str>>,
    /// Subscribers now.
    pub subscription_count: usize,
    /// The driver holds the vacate and removal under this token until the vacate delay ends
    /// (`ClusterState::removal_stands`); `None`: announce them now.
    pub held: Option<u64>,
    /// This node's last subscriber of the channel left, and the user's last socket in it on
    /// this node (the node's gauges; equal to `vacated` and `member_removed` on one node).
    pub here: (bool, bool),
}

/// A join attempt on one `Channel`: done, or the channel closed under the caller.
#[derive(Debug)]
pub(super) enum Attempt {
    /// The join was decided.
    Done(Joined),
    /// The channel was vacated and is being dropped; the member is handed back for a retry.
    Closed(Option<PresenceMember>),
}

impl Channel {
    /// Adds a socket; `member` is set for presence channels, bounded by `max_members`.
    pub(super) fn join(
        &self,
        name: &str,
        outbound: &Outbound,
        member: Option<PresenceMember>,
        max_members: usize,
    ) -> Attempt {
        let mut inner = self.inner.write();
        if inner.closed {
            return Attempt::Closed(member);
        }
        let sid = outbound.socket_id();
        if inner.subscribers.contains_key(sid) {
            return Attempt::Done(Joined::Again { reply: inner.reply(name, member.is_some()) });
        }
        let occupied = inner.subscribers.is_empty();
        let mut member_added = false;
        let user_id = match member {
            Some(m) => {
                let full = inner.members.len() >= max_members;
                match inner.members.get_mut(&m.user_id) {
                    Some(existing) => existing.sockets += 1,
                    None if full => return Attempt::Done(Joined::PresenceFull),
                    None => {
                        member_added = true;
                        // Announced to the others while the lock is held: a concurrent joiner
                        // either sees this user in its snapshot or gets this event, never both.
                        let frame = server_event::member_added(name, &m.user_id, m.user_info.as_deref());
                        inner.push_all(&ByteString::from(frame), None);
                        let entry = Member { info: m.user_info, sockets: 1 };
                        inner.members.insert(m.user_id.clone(), entry);
                        inner.roster_reply = None;
                    }
                }
                Some(Arc::<str>::from(m.user_id))
            }
            None => None,
        };
        let is_presence = user_id.is_some();
        inner.subscribers.insert(sid.clone(), Subscriber { outbound: outbound.clone(), user_id, tracked: None });
        Attempt::Done(Joined::New {
            occupied,
            member_added,
            reply: inner.reply(name, is_presence),
            subscription_count: inner.subscribers.len(),
            cancels_vacate: false,
            cancels_removal: false,
            here: (occupied, member_added),
        })
    }

    /// Removes a socket; when it was its user's last, tells the others (under the lock, as joins do).
    pub(super) fn leave(&self, name: &str, sid: &SocketId) -> Left {
        let mut inner = self.inner.write();
        let Some(sub) = inner.subscribers.remove(sid) else {
            return Left { subscription_count: inner.subscribers.len(), ..Left::default() };
        };
        let mut member_removed = None;
        if let Some(uid) = sub.user_id
            && let Some(m) = inner.members.get_mut(&*uid)
        {
            m.sockets -= 1;
            if m.sockets == 0 {
                inner.members.remove(&*uid);
                inner.roster_reply = None;
                inner.push_all(&ByteString::from(server_event::member_removed(name, &uid)), None);
                member_removed = Some(uid);
            }
        }
        let vacated = inner.subscribers.is_empty();
        // Decided under the lock, so no join can slip in between the last leave and the drop.
        inner.closed = vacated;
        let subscription_count = inner.subscribers.len();
        let here = (vacated, member_removed.is_some());
        Left { was_subscribed: true, vacated, member_removed, subscription_count, held: None, here }
    }

    /// Pushes `frame` to every subscriber but `except`. Returns how many got it and how many
    /// were slow consumers.
    pub fn publish(&self, frame: &ByteString, except: Option<&SocketId>) -> Delivery {
        self.inner.read().push_all(frame, except)
    }

    /// Cluster drivers: adds a subscriber whose subscription is still being decided; frames
    /// published to it meanwhile wait until `activate`. `Ok(None)` when already subscribed,
    /// else whether it is the channel's first subscriber on this node, and its presence user's
    /// first socket in it on this node.
    pub(super) fn attach(
        &self,
        outbound: &Outbound,
        member: Option<&(Arc<str>, Option<Box<RawValue>>)>,
    ) -> Result<Option<(bool, bool)>, ()> {
        let mut inner = self.inner.write();
        if inner.closed {
            return Err(());
        }
        let sid = outbound.socket_id();
        if inner.subscribers.contains_key(sid) {
            return Ok(None);
        }
        let (user_id, info) = member.map_or((None, None), |(u, i)| (Some(u.clone()), i.clone()));
        let first_of_user = user_id.as_ref().is_some_and(|u| !inner.has_user(u));
        let first_in_channel = inner.subscribers.is_empty();
        let tracked = Tracked { since: 0, pending: Mutex::new(Some(Vec::new())), info };
        let sub = Subscriber { outbound: outbound.clone(), user_id, tracked: Some(Box::new(tracked)) };
        inner.subscribers.insert(sid.clone(), sub);
        Ok(Some((first_in_channel, first_of_user)))
    }

    /// Cluster drivers: the subscription of `sid` was decided with presence roster version
    /// `since`: what waited for it is queued (presence events already in that roster left
    /// out), and from now on frames go straight to its queue.
    pub fn activate(&self, sid: &SocketId, since: u64) {
        let mut inner = self.inner.write();
        let Some(sub) = inner.subscribers.get_mut(sid) else { return };
        let Some(tracked) = sub.tracked.as_mut() else { return };
        tracked.since = since;
        let waiting = tracked.pending.get_mut().take().unwrap_or_default();
        for (version, frame) in waiting {
            if version.is_none_or(|v| v > since) {
                sub.outbound.push(frame);
            }
        }
    }

    /// Pushes a frame received from the bus; `version` is set on presence events, which skip
    /// subscribers whose roster already had them.
    pub fn deliver(&self, frame: &ByteString, except: Option<&SocketId>, version: Option<u64>) -> Delivery {
        let inner = self.inner.read();
        let mut d = Delivery::default();
        let mut fanout = Fanout::default();
        for (sid, sub) in &inner.subscribers {
            if except == Some(sid) {
                continue;
            }
            if let Some(tracked) = &sub.tracked {
                let mut pending = tracked.pending.lock();
                if let Some(waiting) = pending.as_mut() {
                    if waiting.len() >= MAX_PENDING {
                        sub.outbound.close(crate::protocol::ErrorCode::OverCapacity);
                        d.slow_consumers += 1;
                    } else {
                        waiting.push((version, frame.clone()));
                    }
                    continue;
                }
                if version.is_some_and(|v| v <= tracked.since) {
                    continue;
                }
            }
            match sub.outbound.push_batched(frame, &mut fanout) {
                Pushed::Queued => d.delivered += 1,
                Pushed::SlowConsumer => d.slow_consumers += 1,
                Pushed::Closed => {}
            }
        }
        d
    }

    /// Presence subscribers on this node, by user (cluster drivers).
    pub fn local_members(&self) -> Vec<LocalMember> {
        let inner = self.inner.read();
        let mut by_user: HashMap<&str, LocalMember> = HashMap::new();
        for sub in inner.subscribers.values() {
            let Some(uid) = &sub.user_id else { continue };
            by_user
                .entry(uid)
                .or_insert_with(|| LocalMember {
                    user_id: uid.clone(),
                    info: sub.tracked.as_ref().and_then(|t| t.info.clone()),
                    sockets: 0,
                })
                .sockets += 1;
        }
        by_user.into_values().collect()
    }

    /// Rate-limits `subscription_count` announcements to one per `every`.
    pub fn count_due(&self, now: Instant, every: Duration) -> CountDue {
        let mut t = self.count_throttle.lock();
        if t.scheduled {
            return CountDue::Scheduled;
        }
        match t.last {
            Some(last) if now < last + every => {
                t.scheduled = true;
                CountDue::Later(last + every)
            }
            Some(_) | None => {
                t.last = Some(now);
                CountDue::Now
            }
        }
    }

    /// Records that the scheduled announcement went out.
    pub fn count_sent(&self, now: Instant) {
        let mut t = self.count_throttle.lock();
        t.last = Some(now);
        t.scheduled = false;
    }

    /// Whether no socket is subscribed.
    pub fn is_empty(&self) -> bool {
        self.inner.read().subscribers.is_empty()
    }

    /// Subscribers on this node.
    pub fn subscription_count(&self) -> usize {
        self.inner.read().subscribers.len()
    }

    /// Distinct presence users on this node.
    pub fn user_count(&self) -> usize {
        self.inner.read().members.len()
    }

    /// Presence user ids on this node.
    pub fn user_ids(&self) -> Vec<String> {
        self.inner.read().members.keys().cloned().collect()
    }

    /// Removes a subscriber without any roster decision (cluster drivers decide elsewhere).
    /// Returns what it was subscribed as, and whether the channel has no local subscriber left
    /// (it is then closed, as by a `leave`).
    pub(super) fn detach(&self, sid: &SocketId) -> (Option<Detached>, bool) {
        let mut inner = self.inner.write();
        let removed = inner.subscribers.remove(sid).map(|s| {
            let last_of_user = s.user_id.as_ref().is_some_and(|u| !inner.has_user(u));
            Detached { user_id: s.user_id, last_of_user }
        });
        let empty = inner.subscribers.is_empty();
        inner.closed = empty;
        (removed, empty)
    }

    /// Whether `sid` is subscribed, and as which presence user.
    pub fn subscriber(&self, sid: &SocketId) -> Option<Option<Arc<str>>> {
        self.inner.read().subscribers.get(sid).map(|s| s.user_id.clone())
    }
}

impl Inner {
    /// Whether a subscriber joined as presence user `user` (a scan: presence channels are
    /// small, and only cluster drivers ask).
    fn has_user(&self, user: &str) -> bool {
        self.subscribers.values().any(|s| s.user_id.as_deref() == Some(user))
    }

    fn push_all(&self, frame: &ByteString, except: Option<&SocketId>) -> Delivery {
        let mut d = Delivery::default();
        let mut fanout = Fanout::default();
        for (sid, sub) in &self.subscribers {
            if except == Some(sid) {
                continue;
            }
            match sub.outbound.push_batched(frame, &mut fanout) {
                Pushed::Queued => d.delivered += 1,
                Pushed::SlowConsumer => d.slow_consumers += 1,
                Pushed::Closed => {}
            }
        }
        d
    }

    /// The `subscription_succeeded` to answer with; on presence channels the roster's encoding
    /// is reused until a member joins or leaves.
    fn reply(&mut self, name: &str, presence: bool) -> ByteString {
        if !presence {
            return server_event::subscription_succeeded(name).into();
        }
        if let Some(reply) = &self.roster_reply {
            return reply.clone();
        }
        let mut roster: Vec<server_event::RosterEntry<'_>> =
            self.members.iter().map(|(id, m)| (id.as_str(), m.info.as_deref())).collect();
        roster.sort_by(|a, b| a.0.cmp(b.0));
        let reply = ByteString::from(server_event::presence_subscription_succeeded(name, &roster));
        self.roster_reply = Some(reply.clone());
        reply
    }
}

/// Result of a fan-out on this node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Frames queued.
    pub delivered: usize,
    /// Subscribers closed as slow consumers.
    pub slow_consumers: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_announcements_are_throttled() {
        let c = Channel::default();
        let t0 = Instant::now();
        let every = Duration::from_secs(5);
        assert_eq!(c.count_due(t0, every), CountDue::Now);
        assert_eq!(c.count_due(t0 + Duration::from_secs(1), every), CountDue::Later(t0 + every));
        assert_eq!(c.count_due(t0 + Duration::from_secs(2), every), CountDue::Scheduled);
        c.count_sent(t0 + every);
        assert_eq!(c.count_due(t0 + Duration::from_secs(11), every), CountDue::Now);
    }
}
