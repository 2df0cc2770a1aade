//! The bus reader: every message Redis pushes on the subscription connection, delivered to this
//! node's sockets in the order it arrived. A lost connection is a possible gap: the lease loop
//! is told to subscribe again and re-register this node's state.
//! Must not await per message: delivery is `try_push` onto socket queues.

use std::sync::Weak;

use bytestring::ByteString;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;

use super::Core;
use super::interest::Target;
use super::wire::{self, Message};
use crate::protocol::ErrorCode;
use crate::protocol::server_event::{self, WatchlistStatus};

/// Runs until the subscription connection (or the driver) is gone.
pub(super) async fn run(core: Weak<Core>, mut pushes: mpsc::UnboundedReceiver<PushInfo>) {
    while let Some(push) = pushes.recv().await {
        let Some(core) = core.upgrade() else { return };
        match push.kind {
            PushKind::Message | PushKind::SMessage => on_message(&core, push.data),
            PushKind::Disconnection => {
                tracing::warn!("bus connection lost; re-subscribing");
                core.metrics.bus_up.set(0);
                core.gap.notify_one();
            }
            _ => {}
        }
    }
}

fn on_message(core: &Core, data: Vec<Value>) {
    let mut data = data.into_iter();
    let (Some(Value::BulkString(bus)), Some(Value::BulkString(payload))) = (data.next(), data.next()) else {
        core.metrics.malformed.inc();
        return;
    };
    core.metrics.received.inc();
    let Some(target) = std::str::from_utf8(&bus).ok().and_then(|b| core.interest.target(b)) else {
        // Unsubscribed while the message was on its way.
        return;
    };
    let Some(message) = wire::decode(&payload) else {
        core.metrics.malformed.inc();
        tracing::warn!("malformed bus message dropped");
        return;
    };
    deliver(core, &target, message);
}

fn deliver(core: &Core, target: &Target, message: Message) {
    match (target, message) {
        (Target::Channel { app, channel }, Message::Event { except, frame }) => {
            core.registry.namespace(app).deliver(channel, &frame, except.as_ref(), None);
        }
        (Target::Channel { app, channel }, Message::Presence { version, frame }) => {
            core.registry.namespace(app).deliver(channel, &frame, None, Some(version));
        }
        (Target::User { app, user }, Message::ToUser { except, frame }) => {
            core.registry.namespace(app).send_to_user(user, &frame, except.as_ref());
        }
        (Target::User { app, user }, Message::Terminate) => {
            core.registry.namespace(app).close_user(user, ErrorCode::Unauthorized);
        }
        (Target::User { app, user }, Message::Watch(online)) => {
            let ns = core.registry.namespace(app);
            if ns.has_watchers(user) {
                let status = if online { WatchlistStatus::Online } else { WatchlistStatus::Offline };
                let frame = ByteString::from(server_event::watchlist_events(&[(status, vec![&**user])]));
                ns.notify_watchers(user, &frame);
            }
        }
        (Target::Channel { .. }, Message::ToUser { .. } | Message::Terminate | Message::Watch(_))
        | (Target::User { .. }, Message::Event { .. } | Message::Presence { .. }) => core.metrics.malformed.inc(),
    }
}
