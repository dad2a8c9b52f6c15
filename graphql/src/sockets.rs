//! Per-user bounds on WebSockets and live subscriptions, across all of a user's sockets on
//! this gateway.
//!
//! One socket already holds at most `WS_MAX_SUBSCRIPTIONS` subscriptions; without a per-user
//! bound, one account could open sockets until the gateway's memory ran out (each subscription
//! keeps its parsed document and filter for its lifetime). A [`SocketLease`] is taken when a
//! socket's `connection_init` is accepted and released when the socket ends; the user's
//! subscription count is shared by all their sockets.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Message;

/// The reason prefix of a `connection_init` refused for too many sockets; the transport closes
/// such a socket with 1013 (Try Again Later) instead of the engine's 1002.
pub const TOO_MANY_SOCKETS_REASON: &str = "Too many WebSockets";

/// WebSocket close code 1013, "Try Again Later" (RFC 6455 registry): the server is
/// overloaded for this client, not the client's protocol at fault.
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// The engine closes a refused `connection_init` with 1002; one refused for too many sockets
/// is an overload, not a protocol error, and closes with [`CLOSE_TRY_AGAIN_LATER`].
pub fn overload_close(message: Message) -> Message {
    match message {
        Message::Close(Some(frame))
            if frame.code == 1002 && frame.reason.as_str().starts_with(TOO_MANY_SOCKETS_REASON) =>
        {
            crate::ws::close(CLOSE_TRY_AGAIN_LATER, frame.reason.as_str())
        }
        other => other,
    }
}

/// The per-user counters (flags `WS_MAX_SOCKETS_PER_USER`, `WS_MAX_SUBSCRIPTIONS_PER_USER`).
#[derive(Debug)]
pub struct UserSockets {
    max_sockets: usize,
    max_subscriptions: usize,
    users: Mutex<HashMap<String, Arc<UserEntry>>>,
}

#[derive(Debug, Default)]
struct UserEntry {
    sockets: AtomicUsize,
    subscriptions: Arc<AtomicUsize>,
}

/// One accepted socket of one user; dropping it frees the slot.
#[derive(Debug)]
pub struct SocketLease {
    registry: Arc<UserSockets>,
    user: String,
    entry: Arc<UserEntry>,
}

impl UserSockets {
    pub fn new(max_sockets: usize, max_subscriptions: usize) -> Arc<UserSockets> {
        Arc::new(UserSockets {
            max_sockets,
            max_subscriptions,
            users: Mutex::default(),
        })
    }

    /// Takes a socket slot for `user`, or says why not (the message starts with
    /// [`TOO_MANY_SOCKETS_REASON`]).
    pub fn acquire(self: &Arc<Self>, user: &str) -> Result<SocketLease, String> {
        let mut users = self.lock();
        let entry = Arc::clone(users.entry(user.to_owned()).or_default());
        let open = entry.sockets.load(Ordering::Acquire);
        if open >= self.max_sockets {
            return Err(format!(
                "{TOO_MANY_SOCKETS_REASON}: this user already has {open} open, the limit \
                 (WS_MAX_SOCKETS_PER_USER); close one or share it"
            ));
        }
        entry.sockets.fetch_add(1, Ordering::AcqRel);
        drop(users);
        Ok(SocketLease {
            registry: Arc::clone(self),
            user: user.to_owned(),
            entry,
        })
    }

    /// Sockets open for `user` now.
    pub fn sockets_of(&self, user: &str) -> usize {
        self.lock()
            .get(user)
            .map_or(0, |e| e.sockets.load(Ordering::Acquire))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<UserEntry>>> {
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SocketLease {
    /// The user's subscription counter (shared by all their sockets) and its cap.
    pub fn subscriptions(&self) -> (Arc<AtomicUsize>, usize) {
        (
            Arc::clone(&self.entry.subscriptions),
            self.registry.max_subscriptions,
        )
    }
}

impl Drop for SocketLease {
    fn drop(&mut self) {
        let mut users = self.registry.lock();
        let left = self.entry.sockets.fetch_sub(1, Ordering::AcqRel) - 1;
        if left == 0 && self.entry.subscriptions.load(Ordering::Acquire) == 0 {
            users.remove(&self.user);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_at_most_the_cap_of_sockets_and_slots_come_back_on_drop() {
        let registry = UserSockets::new(2, 10);
        let first = registry.acquire("alice").unwrap();
        let _second = registry.acquire("alice").unwrap();
        let refused = registry.acquire("alice").unwrap_err();
        assert!(refused.starts_with(TOO_MANY_SOCKETS_REASON), "{refused}");
        assert!(
            registry.acquire("bob").is_ok(),
            "other users are not affected"
        );
        drop(first);
        assert_eq!(registry.sockets_of("alice"), 1);
        assert!(registry.acquire("alice").is_ok());
    }

    #[test]
    fn an_entry_is_forgotten_when_its_last_socket_ends() {
        let registry = UserSockets::new(2, 10);
        drop(registry.acquire("alice").unwrap());
        assert!(registry.lock().is_empty());
    }
}
