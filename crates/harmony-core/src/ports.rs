//! Ports: what the use cases and workers need from the outside world. One node implements them
//! on SQLite and in process (`harmony-sqlite`, `harmony-api`'s hub); a cluster on PostgreSQL,
//! Kafka and Redis. Every method states what it promises; adapters are tested against those
//! promises, on the real system they talk to.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::events::{GatewayEvent, StoredEvent};
use crate::ids::{ChatId, FriendRequestId, MessageId, UserId};
use crate::model::{
    Account, Chat, FriendRequest, FriendRequestStatus, Member, Message, NewMessage, Role, User,
};
use crate::presence::{Presence, Status};
use crate::values::{ChatName, ClientMsgId, Password, Username};

mod history;
pub use history::{ChatActivity, HistoryPage, HistoryStore, PageCursor};

/// How an adapter failed. Use cases turn these into their own errors; the cause is logged once,
/// where handled, and never shown to a client.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write; the name says which (`username`, `direct_chat`, ...).
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The backing system could not be reached or failed; retrying later may work.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Data read back did not parse: a bug or a foreign write.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The work was shed: too much of it is already waiting. Retrying after the given time may
    /// work.
    #[error("busy; retry after {0:?}")]
    Busy(Duration),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Accounts and profiles. `create_account` writes the `user_created` outbox event in the same
/// transaction.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with `Conflict("username")` when the name is taken.
    async fn create_account(&self, account: &Account) -> StoreResult<()>;
    async fn account_by_username(&self, username: &Username) -> StoreResult<Option<Account>>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Users whose name starts with `prefix` (already lower-cased), by name, at most `limit`.
    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>>;
    /// Replaces the user's password hash; false when there is no such user.
    async fn set_password_hash(&self, user: UserId, hash: &str) -> StoreResult<bool>;
}

/// One refresh token as stored: only its SHA-256 hash is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshRecord {
    pub hash: [u8; 32],
    pub family: uuid::Uuid,
    pub user_id: UserId,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// When it was exchanged for a successor; `None` while it is the newest of its family.
    pub rotated_at: Option<OffsetDateTime>,
    pub revoked: bool,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Inserts the token unless its family was revoked (then returns false): a revocation that
    /// races a refresh can never leave a live successor behind.
    async fn insert_refresh(&self, record: &RefreshRecord) -> StoreResult<bool>;
    async fn refresh_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<RefreshRecord>>;
    /// Marks the token rotated at `at` unless it already was; returns whether this call did it,
    /// so that of two racing refreshes exactly one wins.
    async fn mark_rotated(&self, hash: &[u8; 32], at: OffsetDateTime) -> StoreResult<bool>;
    /// Revokes every token of the family and records when, on the store's clock, so that every
    /// node refuses the family's access tokens (see [`SessionStore::revocations_since`]).
    async fn revoke_family(&self, family: uuid::Uuid) -> StoreResult<()>;
    /// Families revoked at or after `since` (the store's clock), each with when.
    async fn revocations_since(&self, since: OffsetDateTime) -> StoreResult<Vec<Revocation>>;
    /// Forgets revocations made before `before`; returns how many.
    async fn prune_revocations(&self, before: OffsetDateTime) -> StoreResult<u64>;
    /// The user's live sessions (families with a token that is neither revoked nor expired at
    /// `now`), the oldest first.
    async fn live_families(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<uuid::Uuid>>;
}

/// A revoked session (refresh-token family) and when it was revoked, on the store's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Revocation {
    pub family: uuid::Uuid,
    pub at: OffsetDateTime,
}

#[async_trait]
pub trait FriendStore: Send + Sync {
    /// Fails with `Conflict("friend_request")` when a pending request between the two exists.
    async fn create_friend_request(&self, request: &FriendRequest) -> StoreResult<()>;
    async fn friend_request(&self, id: FriendRequestId) -> StoreResult<Option<FriendRequest>>;
    /// Pending requests: (incoming, outgoing), newest first.
    async fn pending_requests(
        &self,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequest>, Vec<FriendRequest>)>;
    /// Sets a pending request's status; on `Accepted` also creates the friendship and its outbox
    /// event, in one transaction. Returns false when the request was no longer pending.
    async fn resolve_friend_request(
        &self,
        id: FriendRequestId,
        status: FriendRequestStatus,
    ) -> StoreResult<bool>;
    async fn are_friends(&self, a: UserId, b: UserId) -> StoreResult<bool>;
    async fn friends(&self, user: UserId) -> StoreResult<Vec<User>>;
    /// Removes the friendship and writes its outbox event; false when there was none.
    async fn remove_friendship(&self, a: UserId, b: UserId) -> StoreResult<bool>;
}

/// A chat the user belongs to, with their read marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub chat: Chat,
    pub role: Role,
    pub last_read_seq: i64,
}

/// Chats and members. Each mutating method writes its outbox event in the same transaction.
#[async_trait]
pub trait ChatStore: Send + Sync {
    /// Creates the chat with its members. For a direct chat `direct_key` is unique: a second
    /// one fails with `Conflict("direct_chat")`.
    async fn create_chat(
        &self,
        chat: &Chat,
        members: &[(User, Role)],
        direct_key: Option<&str>,
    ) -> StoreResult<()>;
    async fn chat_by_direct_key(&self, key: &str) -> StoreResult<Option<Chat>>;
    async fn chat(&self, id: ChatId) -> StoreResult<Option<Chat>>;
    async fn role_of(&self, chat: ChatId, user: UserId) -> StoreResult<Option<Role>>;
    async fn memberships(&self, user: UserId) -> StoreResult<Vec<Membership>>;
    /// The ids of the user's chats, and nothing else: every WebSocket session starts with this,
    /// so a gateway's clients reconnecting together cost one index lookup each.
    async fn chat_ids(&self, user: UserId) -> StoreResult<Vec<ChatId>>;
    async fn rename_chat(&self, chat: ChatId, name: &ChatName) -> StoreResult<Option<Chat>>;
    /// Deletes the chat and its members; false when it did not exist.
    async fn delete_chat(&self, chat: ChatId) -> StoreResult<bool>;
    async fn members(&self, chat: ChatId) -> StoreResult<Vec<Member>>;
    /// Fails with `Conflict("member")` when the user already belongs to the chat.
    async fn add_member(&self, chat: ChatId, user: &User, role: Role) -> StoreResult<Member>;
    async fn remove_member(&self, chat: ChatId, user: UserId) -> StoreResult<bool>;
    /// Moves the read marker forward to `seq`; never backwards.
    async fn set_read_marker(&self, chat: ChatId, user: UserId, seq: i64) -> StoreResult<()>;
    /// Whose presence `user` is shown, which is also who is shown theirs: their friends, and the
    /// members of the chats they share that have at most `max_chat_members` members. Unordered,
    /// without `user`, each once.
    async fn presence_peers(&self, user: UserId, max_chat_members: u32)
        -> StoreResult<Vec<UserId>>;
    /// Which of `others` are friends of `user` or share a chat with them, whatever its size.
    async fn acquainted(&self, user: UserId, others: &[UserId]) -> StoreResult<Vec<UserId>>;
}

/// The result of appending: a retried `client_msg_id` finds the message it created before; a
/// change the chat's order refuses (decision record 0004) is not placed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    Created(Message),
    Duplicate(Message),
    Refused(crate::changes::Refusal),
}

impl AppendOutcome {
    /// The entry created or found; none when refused.
    pub fn message(&self) -> Option<&Message> {
        match self {
            Self::Created(m) | Self::Duplicate(m) => Some(m),
            Self::Refused(_) => None,
        }
    }
}

/// The durable message log. `append` returns only once the log holds the message durably: that
/// is what a `201` promises. Within a chat, appends are totally ordered and `seq` follows it.
#[async_trait]
pub trait MessageLog: Send + Sync {
    async fn append(&self, message: NewMessage) -> StoreResult<AppendOutcome>;
}

/// What the recent window holds after a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentSlice {
    /// Ascending by `seq`.
    pub messages: Vec<Message>,
    /// True when the messages run from the asked position on with no hole (seqs are dense);
    /// false when this source does not hold some of them and the history store must answer.
    pub complete: bool,
}

/// Where the sequencer put a logged message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// The message, with its `seq` in its chat.
    Placed(Message),
    /// Another record with the same `(chat, author, client_msg_id)` came first in the log: this
    /// one never gets a seq, and the send it came from answers with `original`.
    Duplicate { original: Message },
    /// A change its target's state refuses where the order put it (decision record 0004):
    /// never placed, never delivered.
    Refused(crate::changes::Refusal),
}

/// What placing a batch decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sequenced {
    /// One per record, in the batch's order.
    pub placements: Vec<Placement>,
    /// `(chat, user, seq)`: the user was removed from the chat right before message `seq`. The
    /// fan-out publishes the removal just before that message, so it is ordered with the chat's
    /// messages on every gateway, whatever happened to the event that normally carries it.
    pub removals: Vec<(ChatId, UserId, i64)>,
}

/// The cluster's per-chat order (PostgreSQL), for logs that do not number a chat's messages
/// themselves (a Kafka partition holds many chats, and its offsets are not a chat's order).
///
/// The fan-out, which owns the log partition, asks it to place each record in log order: a chat
/// gets seqs 1, 2, 3, ... with no hole, whatever happens to partitions, topics or Redis, since the
/// head lives in a database row and a record is placed once (by message id). It is also the
/// durable idempotency record: a `(chat, author, client_msg_id)` is placed at most once.
#[async_trait]
pub trait Sequencer: Send + Sync {
    /// Places a batch of records in the order given (the log's). A record placed before (a
    /// replay) gets the same answer as the first time; one whose key was placed under another
    /// id is a `Duplicate`. Placements are in the batch's order; the removals are those that
    /// take effect right before one of the batch's messages (a replay gets them again).
    async fn sequence(&self, batch: &[NewMessage]) -> StoreResult<Sequenced>;
    /// Where each record stands, without placing anything: `None` while the sequencer has not
    /// reached it.
    async fn placements(&self, batch: &[NewMessage]) -> StoreResult<Vec<Option<Placement>>>;
    /// Where each record stands, waiting at most `timeout` for those not placed yet (the sink
    /// waits for the fan-out this way): `None` for a record still unplaced at the deadline.
    async fn wait_placements(
        &self,
        batch: &[NewMessage],
        timeout: Duration,
    ) -> StoreResult<Vec<Option<Placement>>>;
    /// The message a `client_msg_id` of this author placed in this chat, if any.
    async fn by_key(
        &self,
        chat: ChatId,
        author: UserId,
        key: &ClientMsgId,
    ) -> StoreResult<Option<Message>>;
    /// Runs `produce` (the log's append of `message`), then waits until the record is placed,
    /// at most `timeout`; `None` on timeout. An api node answers a send with the seq this way.
    /// Watching starts before `produce`, so a placement made before the log's acknowledgement
    /// arrived is not missed and needs no lookup.
    async fn wait_placed<'a>(
        &'a self,
        message: &'a NewMessage,
        produce: Produce<'a>,
        timeout: Duration,
    ) -> StoreResult<Option<Placement>>;
}

/// The log's append of a record, run by [`Sequencer::wait_placed`].
pub type Produce<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = StoreResult<()>> + Send + 'a>>;

/// The recent end of every chat, for resume, the `ready` frame and read markers. `last_seqs`
/// is the truth (never behind anything delivered live); a cache may answer `recent_after` only
/// for what it holds without a hole.
#[async_trait]
pub trait RecentMessages: Send + Sync {
    /// Messages with `seq > after_seq`, ascending, at most `limit`.
    async fn recent_after(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<RecentSlice>;
    /// The newest `seq` of each chat that has a message.
    async fn last_seqs(&self, chats: &[ChatId]) -> StoreResult<HashMap<ChatId, i64>>;
    /// The seq of a message of the chat, when this source knows messages by id (the cluster's
    /// sequencer does, so a history cursor naming a message the store has not caught up with is
    /// still understood). `None` by default.
    async fn seq_of(&self, _chat: ChatId, _id: MessageId) -> StoreResult<Option<i64>> {
        Ok(None)
    }
}

/// A place in the log; opaque to workers except for committing it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LogPosition {
    pub partition: i32,
    pub offset: i64,
}

/// A message as a consumer of the log sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogDelivery {
    pub position: LogPosition,
    pub entry: LogEntry,
}

/// A log record: placed in its chat's order by the log itself, or waiting for the [`Sequencer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEntry {
    /// The embedded log numbers each chat as it appends.
    Placed(Message),
    /// A Kafka record: the message as the api node accepted it, with no seq yet.
    Unplaced(NewMessage),
}

/// One consumer group's cursor on the log. Records of a chat come in log order. A record whose
/// position was not committed comes again after a restart, so handlers must be idempotent.
#[async_trait]
pub trait LogConsumer: Send {
    /// Waits up to `wait` for records after the last one returned; empty on timeout.
    async fn poll(&mut self, max: usize, wait: Duration) -> StoreResult<Vec<LogDelivery>>;
    /// Records that everything up to and including these positions is processed.
    async fn commit(&mut self, through: &[LogPosition]) -> StoreResult<()>;
}

/// The projector's cursor on the outbox event stream; same contract as [`LogConsumer`].
#[async_trait]
pub trait EventConsumer: Send {
    async fn poll(&mut self, max: usize, wait: Duration) -> StoreResult<Vec<StoredEvent>>;
    async fn commit(&mut self, through: &StoredEvent) -> StoreResult<()>;
}

/// Outbox events in commit order, as a relay reads them, and where the batch ends in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxBatch {
    pub events: Vec<StoredEvent>,
    /// The source's position after the batch (e.g. a WAL LSN); `None` for an empty batch.
    pub end: Option<String>,
}

/// The outbox as a change stream (cluster: PostgreSQL logical decoding). Reading does not
/// consume: a batch is consumed by `advance`, only after its events were published, so a crash
/// in between publishes them again (consumers dedupe by event id).
#[async_trait]
pub trait OutboxStream: Send {
    async fn peek(&mut self, max: usize) -> StoreResult<OutboxBatch>;
    /// Consumes the stream through the batch and deletes the batch's outbox rows.
    async fn advance(&mut self, batch: &OutboxBatch) -> StoreResult<()>;
    /// Waits, after an empty peek, until the stream may have more: a transaction that wrote
    /// events committed, or the stream's own upkeep wants a peek. Returns at once when it cannot
    /// tell (a lost wake-up costs a peek, never an event).
    async fn wait(&mut self) -> StoreResult<OutboxWake>;
}

/// Why [`OutboxStream::wait`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxWake {
    /// A transaction that wrote events committed.
    Committed,
    /// Nothing was committed for a while; the stream wants a peek to move past other writes.
    Upkeep,
    /// Wake-ups may have been lost (a dropped connection): peek to be sure.
    Unsure,
}

/// Where a relay publishes events (cluster: `harmony.events.v1`, keyed by aggregate id). Returns
/// once every event is durably acknowledged.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, events: &[StoredEvent]) -> StoreResult<()>;
}

/// Delivery to the gateways' live sessions. Events for one chat must be delivered in the order
/// published.
#[async_trait]
pub trait GatewayPublisher: Send + Sync {
    async fn publish(&self, events: &[GatewayEvent]) -> StoreResult<()>;
}

/// Where users are present: what each node's sessions show of a user, combined. One node: in
/// process (`presence::InProcessPresence`); a cluster: Redis, where a node's word counts only
/// while the node renews its liveness, so a killed node's users go offline by themselves.
#[async_trait]
pub trait PresenceBook: Send + Sync {
    /// Records what this node's sessions show of `user` (`Offline`: none, or invisible ones);
    /// returns the user's presence across every node when that changed.
    async fn set(&self, user: UserId, here: Status) -> StoreResult<Option<Presence>>;
    /// The users' presence, in the order asked.
    async fn get(&self, users: &[UserId]) -> StoreResult<Vec<Presence>>;
    /// Renews this node's liveness and clears the word of nodes that stopped renewing theirs.
    /// Called every few seconds by each gateway.
    async fn upkeep(&self) -> StoreResult<Upkeep>;
}

/// What [`PresenceBook::upkeep`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Presence that changed because a node stopped renewing (its users went offline).
    pub changes: Vec<Presence>,
    /// The book had lost this node (its store forgot, or took the node for dead): the node
    /// must say again what its sessions show.
    pub forgot_us: bool,
}

/// Cache-aside for membership. `Some(None)` caches "not a member". Entries are dropped by the
/// projector when membership changes, and by the node that made the change at once.
///
/// A reader takes a `ticket` before reading the store and passes it to `put`; an invalidation
/// in between makes the `put` a no-op, so a slow reader can never cache a membership that was
/// already revoked.
#[async_trait]
pub trait MembershipCache: Send + Sync {
    async fn get(&self, chat: ChatId, user: UserId) -> Option<Option<Role>>;
    async fn ticket(&self) -> u64;
    async fn put(&self, chat: ChatId, user: UserId, role: Option<Role>, ticket: u64);
    /// The ids of a user's chats, as a session starts (every client of a failed gateway
    /// reconnects at once); `None` when not cached.
    async fn chats_of(&self, user: UserId) -> Option<Vec<ChatId>>;
    async fn put_chats_of(&self, user: UserId, chats: &[ChatId], ticket: u64);
    /// Drops the member's role in the chat and the user's chat list.
    async fn invalidate_member(&self, chat: ChatId, user: UserId);
    /// Drops every role cached for the chat and the chat lists of its `members`.
    async fn invalidate_chat(&self, chat: ChatId, members: &[UserId]);
}

/// A limit: at most `burst` actions at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateRule {
    pub burst: u32,
    pub per_second: f64,
}

impl RateRule {
    pub fn per_minute(burst: u32, per_minute: f64) -> Self {
        Self {
            burst,
            per_second: per_minute / 60.0,
        }
    }

    pub fn per_hour(burst: u32, per_hour: f64) -> Self {
        Self {
            burst,
            per_second: per_hour / 3600.0,
        }
    }
}

/// Shared by every node that serves the same users.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// `Err(retry_after)` when the action is over the limit.
    async fn check(&self, key: &str, rule: RateRule) -> Result<(), Duration>;
}

/// Password hashing, kept off the async runtime by the implementation.
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    async fn hash(&self, password: Password) -> Result<String, StoreError>;
    /// False for a wrong password or a malformed hash. With `None` it still spends the same
    /// time, so that an unknown username cannot be told apart from a wrong password.
    /// `Err(Busy)` when the work was shed.
    async fn verify(&self, password: Password, hash: Option<String>) -> Result<bool, StoreError>;
}
