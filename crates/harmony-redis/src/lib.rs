//! Cluster adapters on Redis: everything shared by the nodes of a cluster that may be lost
//! without losing a message.
//!
//! - [`RedisFanout`]: the fan-out role publishes gateway events here. Each message also enters its
//!   chat's recent window, in one script, so the window holds what was delivered live.
//! - [`GatewaySubscriber`]: one subscriber connection per gateway process (never one per socket),
//!   subscribed to the chats its sessions follow, handing events to the local hub.
//! - [`RedisWindow`]: the recent-messages window, a cache in front of the sequencer's table for
//!   resume (it answers only for what it holds without a hole).
//! - [`RedisMembershipCache`] and [`RedisRateLimiter`]: cache-aside membership and rate limits
//!   shared by every api node.
//! - [`RedisProfiles`]: cache-aside for user profiles, used to re-hydrate message authors.
//! - [`RedisPresence`]: the presence book, where each gateway's word expires unless renewed.
//!
//! Nothing here is the truth: order, heads and idempotency live in PostgreSQL (the sequencer).
//! If Redis loses its data, messages are still committed (the log), placed and stored; clients
//! resume from PostgreSQL until the window fills again. All keys start with a configured prefix.

mod cache;
mod fanout;
mod presence;
mod profiles;
mod ratelimit;
mod subscriber;
mod window;

pub use cache::RedisMembershipCache;
pub use fanout::{RedisFanout, RedisNotices};
pub use presence::RedisPresence;
pub use profiles::RedisProfiles;
pub use ratelimit::RedisRateLimiter;
pub use subscriber::{GatewaySubscriber, Interest};
pub use window::RedisWindow;

use harmony_core::ports::{StoreError, StoreResult};
use harmony_core::ChatId;
use redis::aio::ConnectionManager;

/// Key and channel names, all under one prefix (so tests and tenants never collide).
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn window(&self, chat: ChatId) -> String {
        format!("{}window:{chat}", self.prefix)
    }

    pub(crate) fn chat_channel(&self, chat: ChatId) -> String {
        format!("{}chat:{chat}", self.prefix)
    }

    /// Membership and chat events, which every gateway needs (they are rare).
    pub(crate) fn control_channel(&self) -> String {
        format!("{}control", self.prefix)
    }

    pub(crate) fn member(&self, chat: ChatId, user: harmony_core::UserId) -> String {
        format!("{}{user}", self.member_prefix(chat))
    }

    pub(crate) fn member_prefix(&self, chat: ChatId) -> String {
        format!("{}member:{chat}:", self.prefix)
    }

    /// A user's chat ids, comma-separated.
    pub(crate) fn chats_of(&self, user: harmony_core::UserId) -> String {
        format!("{}chats-of:{user}", self.prefix)
    }

    pub(crate) fn cache_generation(&self) -> String {
        format!("{}member-gen", self.prefix)
    }

    pub(crate) fn profile(&self, user: harmony_core::UserId) -> String {
        format!("{}profile:{user}", self.prefix)
    }

    pub(crate) fn rate(&self, key: &str) -> String {
        format!("{}rate:{key}", self.prefix)
    }

    /// A user's presence hash: `presence_prefix()` and the user id.
    pub(crate) fn presence(&self, user: harmony_core::UserId) -> String {
        format!("{}{user}", self.presence_prefix())
    }

    pub(crate) fn presence_prefix(&self) -> String {
        format!("{}presence:", self.prefix)
    }

    /// Every gateway with a word in the presence book, scored by when it stops counting.
    pub(crate) fn presence_nodes(&self) -> String {
        format!("{}presence-nodes", self.prefix)
    }

    /// The users one gateway has a word about.
    pub(crate) fn presence_node(&self, node: &str) -> String {
        format!("{}presence-node:{node}", self.prefix)
    }
}

/// A connection that reconnects by itself; commands fail while Redis is away.
pub async fn connect(url: &str) -> StoreResult<ConnectionManager> {
    let client = redis::Client::open(url).map_err(unavailable)?;
    // Without timeouts a command sent while Redis is away waits for it to come back: a login
    // or a send would hang on a cache. With them it fails in bounded time and the caller falls
    // back (the truth in PostgreSQL, the node's own rate-limit buckets).
    // The reconnection's own retries are short too: every command waits on them, and the
    // library's default backoff (a factor of 100 on a one-second delay) waits minutes.
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(REDIS_CONNECT_TIMEOUT)
        .set_response_timeout(REDIS_RESPONSE_TIMEOUT)
        .set_number_of_retries(1)
        .set_max_delay(500);
    client
        .get_connection_manager_with_config(config)
        .await
        .map_err(unavailable)
}

/// How long connecting to Redis may take.
const REDIS_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
/// How long one Redis command may take; every command Harmony sends is O(1) or a short range.
const REDIS_RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub(crate) fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}
