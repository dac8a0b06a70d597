//! The hub: which of this process's sessions follow which chat, and delivery into their bounded
//! queues. Each event is serialized once and shared by every session it goes to. A session
//! whose queue is full is told to close with 4008 ("too slow, resume"), never skipped. One
//! sweep a second for the whole process (`hub/sweep.rs`; not a timer per session) ends sessions
//! whose access token expired, pings each session once per ping interval (spread over it), and
//! ends sessions whose client stayed silent through its pings.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use axum::extract::ws::Utf8Bytes;
use harmony_core::events::{GatewayEvent, Interest};
use harmony_core::ports::{GatewayPublisher, StoreResult};
use harmony_core::{ChatId, UserId};
use harmony_protocol::ws::ServerFrame;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod sweep;

pub use sweep::{Keepalive, Swept};

use super::queue::Queue;
use crate::auth::AuthUser;
use crate::metrics::Metrics;

/// A frame on its way to sessions, shared by all of them: a session's queue holds a pointer
/// per frame (its memory is part of every idle connection's cost).
pub type Outbound = Arc<Frame>;

/// One frame as the hub serialized it. `message` is set for message frames, so the session can
/// drop one it already delivered.
#[derive(Debug)]
pub struct Frame {
    pub message: Option<(ChatId, i64)>,
    /// The frame's JSON, serialized once; cloning shares it (a reference count, no copy).
    pub json: Utf8Bytes,
    /// A WebSocket ping (a control frame, no JSON) rather than a text frame.
    pub ping: bool,
}

struct Entry {
    user: UserId,
    /// The session (refresh-token family) its access token belongs to: ended with it.
    session: uuid::Uuid,
    chats: HashSet<ChatId>,
    queue: Arc<Queue>,
    /// When the session's access token expires (Unix seconds).
    expires_at: i64,
    ended: CancellationToken,
}

#[derive(Default)]
struct State {
    sessions: HashMap<u64, Entry>,
    by_chat: HashMap<ChatId, HashSet<u64>>,
    by_user: HashMap<UserId, HashSet<u64>>,
    /// Bumped on every membership change of a user, so a session that loaded its chats can tell
    /// whether they changed before it subscribed.
    epochs: HashMap<UserId, u64>,
}

/// What a new session gets back from [`Hub::register`].
pub struct Registration {
    pub id: u64,
    pub epoch: u64,
    /// Where the hub puts the session's frames.
    pub queue: Arc<Queue>,
    /// Cancelled when the session must end: its queue overflowed, its access token expired, or
    /// `parent` (the server's shutdown) was cancelled. One token, so a session polls one
    /// cancellation per wake-up, not three.
    pub ended: CancellationToken,
}

pub struct Hub {
    state: RwLock<State>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
    /// The one ping frame every session is sent.
    ping: Outbound,
    /// Told when the first session follows a chat and when the last one stops (cluster: the
    /// process's Redis subscriber follows along).
    interest: Option<mpsc::UnboundedSender<Interest>>,
}

/// How long a starting session waits for the subscriber to confirm its chats before it gives up
/// (and the client reconnects later).
const BARRIER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl Hub {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            state: RwLock::new(State::default()),
            next_id: AtomicU64::new(1),
            metrics,
            ping: Arc::new(Frame {
                message: None,
                json: Utf8Bytes::from_static(""),
                ping: true,
            }),
            interest: None,
        }
    }

    /// A hub that reports which chats its sessions follow.
    pub fn with_interest(metrics: Arc<Metrics>, interest: mpsc::UnboundedSender<Interest>) -> Self {
        Self {
            interest: Some(interest),
            ..Self::new(metrics)
        }
    }

    fn follow(&self, state: &mut State, chat: ChatId, id: u64) {
        let sessions = state.by_chat.entry(chat).or_default();
        if sessions.is_empty() {
            self.tell(Interest::Follow(chat));
        }
        sessions.insert(id);
        if let Some(entry) = state.sessions.get_mut(&id) {
            entry.chats.insert(chat);
        }
    }

    fn unfollow(&self, state: &mut State, chat: ChatId, id: u64) {
        if let Some(sessions) = state.by_chat.get_mut(&chat) {
            sessions.remove(&id);
            if sessions.is_empty() {
                state.by_chat.remove(&chat);
                self.tell(Interest::Drop(chat));
            }
        }
        if let Some(entry) = state.sessions.get_mut(&id) {
            entry.chats.remove(&chat);
        }
    }

    fn tell(&self, interest: Interest) {
        if let Some(sender) = &self.interest {
            // The receiver lives as long as the process's subscriber; after it, nothing listens.
            let _ = sender.send(interest);
        }
    }

    /// True once the process's subscriber has applied every interest change sent so far (at
    /// once when there is no subscriber: one node delivers in process); false when it did not
    /// within `BARRIER_WAIT` (it is reconnecting, or far behind). A session must not start
    /// unconfirmed: a message published before its subscription took effect, but after it read
    /// the heads, would reach it neither live nor by resume.
    pub async fn barrier(&self) -> bool {
        let Some(sender) = &self.interest else {
            return true;
        };
        let (done, wait) = tokio::sync::oneshot::channel();
        if sender.send(Interest::Barrier(done)).is_err() {
            return false;
        }
        matches!(tokio::time::timeout(BARRIER_WAIT, wait).await, Ok(Ok(())))
    }

    /// Tells every session to reconnect and resume: events may have been lost (the cluster's
    /// subscriber lost Redis for a while).
    pub fn resume_all(&self) {
        for entry in self.read().sessions.values() {
            entry.ended.cancel();
        }
    }

    /// The user's WebSocket sessions on this process.
    pub fn sessions_of_user(&self, user: UserId) -> usize {
        self.read().by_user.get(&user).map_or(0, HashSet::len)
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a session of `caller` with no chats yet; membership events for its user reach it
    /// from now on, through a queue of at most `capacity` frames. The session is ended once its
    /// access token expires, its login session ends ([`Hub::end_logins`]) or `parent` is
    /// cancelled.
    pub fn register(
        &self,
        caller: &AuthUser,
        capacity: usize,
        parent: &CancellationToken,
    ) -> Registration {
        let (user, expires_at) = (caller.id, caller.expires_at);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let ended = parent.child_token();
        let queue = Arc::new(Queue::new(capacity));
        let mut state = self.write();
        state.sessions.insert(
            id,
            Entry {
                user,
                session: caller.session,
                chats: HashSet::new(),
                queue: queue.clone(),
                expires_at,
                ended: ended.clone(),
            },
        );
        state.by_user.entry(user).or_default().insert(id);
        let epoch = state.epochs.get(&user).copied().unwrap_or(0);
        Registration {
            id,
            epoch,
            queue,
            ended,
        }
    }

    /// Subscribes the session to `chats`, unless its user's membership changed since `epoch`
    /// (then the caller reloads the chats and tries again with the returned epoch).
    pub fn subscribe(&self, id: u64, chats: &[ChatId], epoch: u64) -> Result<(), u64> {
        let mut state = self.write();
        let Some(user) = state.sessions.get(&id).map(|e| e.user) else {
            return Ok(());
        };
        let current = state.epochs.get(&user).copied().unwrap_or(0);
        if current != epoch {
            return Err(current);
        }
        for chat in chats {
            self.follow(&mut state, *chat, id);
        }
        Ok(())
    }

    pub fn unregister(&self, id: u64) {
        let mut state = self.write();
        let Some(chats) = state.sessions.get(&id).map(|e| e.chats.clone()) else {
            return;
        };
        for chat in chats {
            self.unfollow(&mut state, chat, id);
        }
        let Some(entry) = state.sessions.remove(&id) else {
            return;
        };
        remove_from(&mut state.by_user, &entry.user, id);
        if !state.by_user.contains_key(&entry.user) {
            state.epochs.remove(&entry.user);
        }
    }

    /// Whether session `id` follows `chat`: it subscribed to it from its user's chat list or
    /// on a `member_added`, and no removal has unfollowed it since.
    pub fn follows(&self, id: u64, chat: ChatId) -> bool {
        self.read()
            .sessions
            .get(&id)
            .is_some_and(|entry| entry.chats.contains(&chat))
    }

    /// Sessions currently registered, for tests and metrics.
    pub fn session_count(&self) -> usize {
        self.read().sessions.len()
    }

    fn deliver(&self, state: &State, chat: ChatId, outbound: &Outbound) {
        let Some(ids) = state.by_chat.get(&chat) else {
            return;
        };
        for id in ids {
            if let Some(entry) = state.sessions.get(id) {
                self.push(entry, outbound);
            }
        }
    }

    /// Queues a frame for every session of `users` on this process.
    fn deliver_to_users<'a>(&self, users: impl Iterator<Item = &'a UserId>, outbound: &Outbound) {
        let state = self.read();
        for user in users {
            for id in state.by_user.get(user).into_iter().flatten() {
                if let Some(entry) = state.sessions.get(id) {
                    self.push(entry, outbound);
                }
            }
        }
    }

    /// Queues a frame for one session; a full queue ends it (4008).
    fn push(&self, entry: &Entry, outbound: &Outbound) {
        if !entry.queue.push(outbound.clone()) && !entry.ended.is_cancelled() {
            self.metrics.ws_closed_too_slow.inc();
            entry.ended.cancel();
        }
    }

    fn apply(&self, event: &GatewayEvent) {
        let frame = ServerFrame::from(event);
        let json = match serde_json::to_string(&frame) {
            Ok(json) => Utf8Bytes::from(json),
            Err(e) => {
                tracing::error!(error = %e, "could not serialize a gateway frame");
                return;
            }
        };
        let message = match event {
            GatewayEvent::Message { message, .. } => Some((message.chat_id, message.seq)),
            _ => None,
        };
        let outbound = Arc::new(Frame {
            message,
            json,
            ping: false,
        });
        match event {
            GatewayEvent::ForUser { user_id, .. } => {
                self.deliver_to_users(std::iter::once(user_id), &outbound);
                return;
            }
            GatewayEvent::Presence { presence, audience } => {
                let users = audience.iter().chain(std::iter::once(&presence.user_id));
                self.deliver_to_users(users, &outbound);
                return;
            }
            _ => {}
        }
        let Some(chat) = event.chat_id() else {
            return;
        };
        match event {
            GatewayEvent::Message { .. }
            | GatewayEvent::ChatUpdated { .. }
            | GatewayEvent::Typing { .. } => {
                self.deliver(&self.read(), chat, &outbound);
            }
            GatewayEvent::ForUser { .. } | GatewayEvent::Presence { .. } => {}
            GatewayEvent::MemberAdded { user, .. } => {
                let mut state = self.write();
                *state.epochs.entry(user.id).or_default() += 1;
                for id in sessions_of(&state, user.id) {
                    self.follow(&mut state, chat, id);
                }
                self.deliver(&state, chat, &outbound);
            }
            GatewayEvent::MemberRemoved { user_id, .. } => {
                let mut state = self.write();
                self.deliver(&state, chat, &outbound);
                *state.epochs.entry(*user_id).or_default() += 1;
                for id in sessions_of(&state, *user_id) {
                    self.unfollow(&mut state, chat, id);
                }
            }
            GatewayEvent::ChatDeleted { member_ids, .. } => {
                let mut state = self.write();
                self.deliver(&state, chat, &outbound);
                for user in member_ids {
                    *state.epochs.entry(*user).or_default() += 1;
                }
                let ids: Vec<u64> = state
                    .by_chat
                    .get(&chat)
                    .into_iter()
                    .flatten()
                    .copied()
                    .collect();
                for id in ids {
                    self.unfollow(&mut state, chat, id);
                }
            }
        }
    }
}

fn sessions_of(state: &State, user: UserId) -> Vec<u64> {
    state
        .by_user
        .get(&user)
        .into_iter()
        .flatten()
        .copied()
        .collect()
}

fn remove_from<K: std::hash::Hash + Eq>(map: &mut HashMap<K, HashSet<u64>>, key: &K, id: u64) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&id);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

/// On one node the fan-out and the projector publish straight into the hub.
#[async_trait]
impl GatewayPublisher for Hub {
    async fn publish(&self, events: &[GatewayEvent]) -> StoreResult<()> {
        for event in events {
            self.apply(event);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_session_starts_only_on_a_confirmed_subscription() {
        let metrics = Arc::new(Metrics::new());
        assert!(
            Hub::new(metrics.clone()).barrier().await,
            "one node: no subscriber to wait for"
        );

        let (tx, mut rx) = mpsc::unbounded_channel();
        let hub = Hub::with_interest(metrics.clone(), tx);
        let subscriber = tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                if let Interest::Barrier(done) = change {
                    let _ = done.send(());
                }
            }
        });
        assert!(hub.barrier().await, "the subscriber confirmed");
        subscriber.abort();
        let _ = subscriber.await;
        assert!(!hub.barrier().await, "no subscriber left to confirm");

        // A subscriber that drops the barrier (its connection failed mid-change) confirms nothing.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let hub = Hub::with_interest(metrics, tx);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        assert!(!hub.barrier().await);
    }
}
