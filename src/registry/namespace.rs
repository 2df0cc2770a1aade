//! One app's state on this node: sockets, channels, signed-in users, watchers, cache.
//! Must not await or know about HTTP, Redis or actix: short DashMap sections only.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytestring::ByteString;
use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use serde_json::value::RawValue;

use super::channel::{Attempt, Channel, Delivery, Detached, Joined, Left};
use super::outbound::Outbound;
use crate::protocol::{ChannelName, ErrorCode, PresenceMember, SocketId};

/// One app's sockets and channels on this node.
#[derive(Debug, Default)]
pub struct Namespace {
    app_id: String,
    sockets: DashMap<SocketId, Outbound>,
    connections: AtomicUsize,
    channels: DashMap<String, Arc<Channel>>,
    /// Signed-in user id → that user's sockets.
    users: DashMap<String, HashSet<SocketId>>,
    /// Watched user id → sockets watching it.
    watchers: DashMap<String, HashSet<SocketId>>,
}

/// A channel and its counts, for the REST API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelStats {
    /// Channel name.
    pub name: String,
    /// Sockets subscribed.
    pub subscription_count: usize,
    /// Distinct presence users (0 for other channels).
    pub user_count: usize,
}

impl Namespace {
    /// The (empty) namespace of `app_id`.
    pub fn new(app_id: &str) -> Self {
        Self { app_id: app_id.to_owned(), ..Self::default() }
    }

    /// The app this namespace belongs to.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// Registers a socket unless the app already has `max` connections (0: no limit).
    /// Returns `false` when over quota.
    pub fn add_socket(&self, outbound: &Outbound, max: usize) -> bool {
        let before = self.connections.fetch_add(1, Ordering::AcqRel);
        if max != 0 && before >= max {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        self.sockets.insert(outbound.socket_id().clone(), outbound.clone());
        true
    }

    /// Forgets a socket (its channels and user must be left first).
    pub fn remove_socket(&self, sid: &SocketId) {
        if self.sockets.remove(sid).is_some() {
            self.connections.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Sockets connected to this app on this node.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Acquire)
    }

    /// Every socket's queue (for draining).
    pub fn outbounds(&self) -> Vec<Outbound> {
        self.sockets.iter().map(|e| e.value().clone()).collect()
    }

    /// Subscribes a socket. The namespace's map is locked only to find or create the channel;
    /// the join itself (roster encoding, `member_added` fan-out) runs under the channel's own
    /// lock, so a big presence channel never blocks the other channels of a map shard.
    pub fn join(
        &self,
        channel: &ChannelName,
        outbound: &Outbound,
        member: Option<PresenceMember>,
        max_members: usize,
    ) -> Joined {
        let name = channel.as_str();
        let mut member = member;
        loop {
            let ch = self.channel_or_create(name);
            match ch.join(name, outbound, member, max_members) {
                Attempt::Done(joined) => return joined,
                // Its last subscriber left after we found it: drop it (if its leaver has not
                // yet) and join a fresh one.
                Attempt::Closed(m) => {
                    self.forget(name, &ch);
                    member = m;
                }
            }
        }
    }

    /// Unsubscribes a socket; drops the channel when it became empty.
    pub fn leave(&self, channel: &str, sid: &SocketId) -> Left {
        let Some(ch) = self.channel(channel) else {
            return Left::default();
        };
        let left = ch.leave(channel, sid);
        if left.vacated {
            self.forget(channel, &ch);
        }
        left
    }

    /// Cluster drivers: adds `outbound` as a subscriber whose subscription is being decided
    /// (see `Channel::attach`). Returns the channel and whether this is its first subscriber
    /// and its presence user's first socket on this node, or `None` when already subscribed.
    pub fn attach(
        &self,
        channel: &str,
        outbound: &Outbound,
        member: Option<&(Arc<str>, Option<Box<RawValue>>)>,
    ) -> Option<(Arc<Channel>, (bool, bool))> {
        loop {
            let ch = self.channel_or_create(channel);
            match ch.attach(outbound, member) {
                Ok(Some(firsts)) => return Some((ch, firsts)),
                Ok(None) => return None,
                Err(()) => self.forget(channel, &ch),
            }
        }
    }

    /// Cluster drivers: removes a subscriber without any roster decision; drops the channel
    /// when no local subscriber is left. Returns what it was subscribed as (`None`: it was
    /// not) and whether the channel has no subscriber left on this node.
    pub fn detach(&self, channel: &str, sid: &SocketId) -> Option<(Detached, bool)> {
        let ch = self.channel(channel)?;
        let (removed, empty) = ch.detach(sid);
        if empty {
            self.forget(channel, &ch);
        }
        removed.map(|d| (d, empty))
    }

    /// Cluster drivers: pushes a frame received from the bus to the channel's local
    /// subscribers (see `Channel::deliver`).
    pub fn deliver(
        &self,
        channel: &str,
        frame: &ByteString,
        except: Option<&SocketId>,
        version: Option<u64>,
    ) -> Delivery {
        let ch = self.channels.get(channel).map(|c| c.value().clone());
        ch.map_or_else(Delivery::default, |c| c.deliver(frame, except, version))
    }

    /// Every channel occupied on this node, by name.
    pub fn channels(&self) -> Vec<(String, Arc<Channel>)> {
        self.channels.iter().map(|e| (e.key().clone(), e.value().clone())).collect()
    }

    /// Signed-in users on this node with their socket counts, and watched user ids.
    pub fn users_and_watched(&self) -> (Vec<(String, usize)>, Vec<String>) {
        let users = self.users.iter().map(|e| (e.key().clone(), e.value().len())).collect();
        let watched = self.watchers.iter().map(|e| e.key().clone()).collect();
        (users, watched)
    }

    fn channel_or_create(&self, name: &str) -> Arc<Channel> {
        if let Some(ch) = self.channels.get(name) {
            return ch.value().clone();
        }
        self.channels.entry(name.to_owned()).or_default().value().clone()
    }

    /// Removes `ch` from the map, unless a newer channel of the same name already replaced it.
    fn forget(&self, name: &str, ch: &Arc<Channel>) {
        self.channels.remove_if(name, |_, current| Arc::ptr_eq(current, ch));
    }

    /// Fans a pre-encoded frame out to the channel's subscribers on this node.
    pub fn publish(&self, channel: &str, frame: &ByteString, except: Option<&SocketId>) -> Delivery {
        let ch = self.channels.get(channel).map(|c| c.value().clone());
        ch.map_or_else(Delivery::default, |c| c.publish(frame, except))
    }

    /// The channel, if occupied on this node.
    pub fn channel(&self, name: &str) -> Option<Arc<Channel>> {
        self.channels.get(name).map(|c| c.value().clone())
    }

    /// Occupied channels whose name starts with `prefix`.
    pub fn channel_stats(&self, prefix: &str) -> Vec<ChannelStats> {
        let chans: Vec<(String, Arc<Channel>)> = self
            .channels
            .iter()
            .filter(|e| e.key().starts_with(prefix))
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        chans
            .into_iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(name, c)| ChannelStats {
                name,
                subscription_count: c.subscription_count(),
                user_count: c.user_count(),
            })
            .collect()
    }

    /// Occupied channels on this node.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Binds a socket to a signed-in user. Returns `true` if it is the user's first socket.
    pub fn sign_in(&self, user_id: &str, sid: &SocketId) -> bool {
        let mut set = self.users.entry(user_id.to_owned()).or_default();
        let first = set.is_empty();
        set.insert(sid.clone());
        first
    }

    /// Unbinds a socket. Returns `true` if it was the user's last socket.
    pub fn sign_out(&self, user_id: &str, sid: &SocketId) -> bool {
        let Entry::Occupied(mut e) = self.users.entry(user_id.to_owned()) else {
            return false;
        };
        let removed = e.get_mut().remove(sid);
        if e.get().is_empty() {
            e.remove();
            return removed;
        }
        false
    }

    /// Pushes `frame` to every socket signed in as `user_id` on this node, but `except`.
    pub fn send_to_user(&self, user_id: &str, frame: &ByteString, except: Option<&SocketId>) {
        for out in self.outbounds_of(&self.users, user_id) {
            if except != Some(out.socket_id()) {
                out.push(frame.clone());
            }
        }
    }

    /// Closes every socket signed in as `user_id` on this node with `code`.
    pub fn close_user(&self, user_id: &str, code: ErrorCode) {
        for out in self.outbounds_of(&self.users, user_id) {
            out.close(code);
        }
    }

    /// Whether `user_id` has a signed-in socket on this node.
    pub fn is_online(&self, user_id: &str) -> bool {
        self.users.contains_key(user_id)
    }

    /// Registers `sid` as watching each of `user_ids`.
    pub fn watch(&self, sid: &SocketId, user_ids: &[String]) {
        for id in user_ids {
            self.watchers.entry(id.clone()).or_default().insert(sid.clone());
        }
    }

    /// Removes `sid` from the watchers of each of `user_ids`.
    pub fn unwatch(&self, sid: &SocketId, user_ids: &[String]) {
        for id in user_ids {
            if let Entry::Occupied(mut e) = self.watchers.entry(id.clone()) {
                e.get_mut().remove(sid);
                if e.get().is_empty() {
                    e.remove();
                }
            }
        }
    }

    /// Whether a socket on this node watches `user_id`.
    pub fn has_watchers(&self, user_id: &str) -> bool {
        self.watchers.contains_key(user_id)
    }

    /// Pushes `frame` to every socket on this node watching `user_id`.
    pub fn notify_watchers(&self, user_id: &str, frame: &ByteString) {
        for out in self.outbounds_of(&self.watchers, user_id) {
            out.push(frame.clone());
        }
    }

    /// The queues of the sockets `index` lists under `user_id` (copied out: no map guard is
    /// held while pushing).
    fn outbounds_of(&self, index: &DashMap<String, HashSet<SocketId>>, user_id: &str) -> Vec<Outbound> {
        let sids: Vec<SocketId> = index.get(user_id).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        sids.iter().filter_map(|sid| self.sockets.get(sid).map(|o| o.value().clone())).collect()
    }
}
