//! `pusher:signin`: binding a socket to a user, and the user's watchlist.
//! Must not close the socket on a bad signin: errors are non-closing `pusher:error` 4009.

use bytestring::ByteString;

use crate::metrics::Rejection;
use crate::protocol::server_event::{self, WatchlistStatus};
use crate::protocol::signature::{self, user_string};
use crate::protocol::{ErrorCode, Signin, UserData};

use super::Connection;

impl Connection {
    pub(super) async fn signin(&mut self, req: Signin, replies: &mut Vec<ByteString>) {
        let app = &self.me.app;
        let message = user_string(self.me.socket_id.as_str(), &req.user_data);
        if !signature::verify_auth(&app.key, app.secret.expose(), &req.auth, &message) {
            return self.refuse(ErrorCode::Unauthorized, Rejection::SigninRefused, "Invalid signature", replies);
        }
        let user = match UserData::parse(&req.user_data, &app.limits) {
            Ok(u) => u,
            Err(e) => return self.refuse(ErrorCode::Unauthorized, Rejection::SigninRefused, &e.to_string(), replies),
        };
        if let Some(current) = &self.user {
            if current.id != user.id {
                let msg = "Already signed in as a different user";
                return self.refuse(ErrorCode::Unauthorized, Rejection::SigninRefused, msg, replies);
            }
            replies.push(server_event::signin_success(&req.user_data).into());
            return;
        }
        let signed_in = self.deps.cluster.state.sign_in(&self.me.ns, &user.id, &self.me.socket_id, &user.watchlist);
        let first = match signed_in.await {
            Ok(first) => first,
            Err(e) => {
                tracing::warn!(error = %e, "signin could not be recorded");
                let msg = "The signin could not be completed; try again";
                return self.refuse(ErrorCode::OverCapacity, Rejection::ClusterUnavailable, msg, replies);
            }
        };
        self.authorized = true;
        replies.push(server_event::signin_success(&req.user_data).into());
        if user.watchlist_truncated {
            let msg =
                format!("Watchlist limit exceeded: only the first {} ids are watched", app.limits.max_watchlist_size);
            replies.push(server_event::error(Some(ErrorCode::WatchlistLimitExceeded), &msg).into());
        }
        if first {
            self.watchlist_changed(&user.id, WatchlistStatus::Online).await;
        }
        if !user.watchlist.is_empty() {
            self.send_watchlist_status(&user.watchlist, replies).await;
        }
        self.debug_signin(&user.id);
        self.user = Some(user);
    }

    async fn send_watchlist_status(&self, watchlist: &[String], replies: &mut Vec<ByteString>) {
        let online = match self.deps.cluster.queries.online_users(&self.me.app.id, watchlist).await {
            Ok(ids) => ids,
            Err(e) => return tracing::warn!(error = %e, "watchlist status unavailable"),
        };
        let on: Vec<&str> = online.iter().map(String::as_str).collect();
        let off: Vec<&str> = watchlist.iter().map(String::as_str).filter(|id| !on.contains(id)).collect();
        let mut events = Vec::new();
        if !on.is_empty() {
            events.push((WatchlistStatus::Online, on));
        }
        if !off.is_empty() {
            events.push((WatchlistStatus::Offline, off));
        }
        replies.push(server_event::watchlist_events(&events).into());
    }

    async fn watchlist_changed(&self, user_id: &str, status: WatchlistStatus) {
        super::release::notify_watchers(self.deps.cluster.bus.as_ref(), &self.me.app.id, user_id, status).await;
    }
}
