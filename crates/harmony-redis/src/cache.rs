//! Membership cache-aside in Redis, shared by every api node: roles per chat and member, and
//! each user's chat ids (what a starting WebSocket session subscribes to). Entries expire (a bound on any
//! staleness), and a generation counter, bumped by every invalidation, makes a `put` that raced
//! an invalidation a no-op.

use std::time::Duration;

use async_trait::async_trait;
use harmony_core::model::Role;
use harmony_core::ports::MembershipCache;
use harmony_core::{ChatId, UserId};
use redis::aio::ConnectionManager;
use redis::Script;

use crate::Keys;

const PUT: &str = r#"
if tonumber(redis.call('GET', KEYS[2]) or '0') == tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
return 0
"#;

pub struct RedisMembershipCache {
    conn: ConnectionManager,
    keys: Keys,
    ttl: Duration,
    put: Script,
}

impl RedisMembershipCache {
    pub fn new(conn: ConnectionManager, keys: Keys, ttl: Duration) -> Self {
        Self {
            conn,
            keys,
            ttl,
            put: Script::new(PUT),
        }
    }
}

impl RedisMembershipCache {
    /// Sets `key` to `value` (with the TTL) unless an invalidation happened since `ticket`.
    async fn put_if_current(&self, key: String, value: &str, ticket: u64) {
        let mut conn = self.conn.clone();
        let _: Result<i64, _> = self
            .put
            .key(key)
            .key(self.keys.cache_generation())
            .arg(ticket)
            .arg(value)
            .arg(self.ttl.as_secs().max(1))
            .invoke_async(&mut conn)
            .await;
    }
}

fn encode(role: Option<Role>) -> &'static str {
    role.map_or("none", Role::as_str)
}

/// A cache that cannot be reached is a miss: the store answers, and correctness holds.
#[async_trait]
impl MembershipCache for RedisMembershipCache {
    async fn get(&self, chat: ChatId, user: UserId) -> Option<Option<Role>> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.keys.member(chat, user))
            .query_async(&mut conn)
            .await
            .ok()?;
        match raw.as_deref()? {
            "none" => Some(None),
            role => Role::parse(role).map(Some),
        }
    }

    async fn ticket(&self) -> u64 {
        let mut conn = self.conn.clone();
        let generation: Option<u64> = redis::cmd("GET")
            .arg(self.keys.cache_generation())
            .query_async(&mut conn)
            .await
            .ok()
            .flatten();
        generation.unwrap_or(0)
    }

    async fn put(&self, chat: ChatId, user: UserId, role: Option<Role>, ticket: u64) {
        self.put_if_current(self.keys.member(chat, user), encode(role), ticket)
            .await;
    }

    async fn chats_of(&self, user: UserId) -> Option<Vec<ChatId>> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.keys.chats_of(user))
            .query_async(&mut conn)
            .await
            .ok()?;
        let raw = raw?;
        // Anything unreadable is a miss: the store answers.
        raw.split(',')
            .filter(|id| !id.is_empty())
            .map(|id| id.parse().ok())
            .collect()
    }

    async fn put_chats_of(&self, user: UserId, chats: &[ChatId], ticket: u64) {
        let ids: Vec<String> = chats.iter().map(ToString::to_string).collect();
        self.put_if_current(self.keys.chats_of(user), &ids.join(","), ticket)
            .await;
    }

    async fn invalidate_member(&self, chat: ChatId, user: UserId) {
        let mut conn = self.conn.clone();
        let result: Result<(), _> = redis::pipe()
            .incr(self.keys.cache_generation(), 1)
            .ignore()
            .del(self.keys.member(chat, user))
            .ignore()
            .del(self.keys.chats_of(user))
            .ignore()
            .query_async(&mut conn)
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not invalidate a cached membership; it expires by itself");
        }
    }

    async fn invalidate_chat(&self, chat: ChatId, members: &[UserId]) {
        let mut conn = self.conn.clone();
        let pattern = format!("{}*", self.keys.member_prefix(chat));
        let mut keys: Vec<String> = Vec::new();
        if let Ok(mut iter) = redis::cmd("SCAN")
            .cursor_arg(0)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(500)
            .clone()
            .iter_async::<String>(&mut conn)
            .await
        {
            while let Some(key) = iter.next_item().await {
                keys.push(key);
            }
        }
        keys.extend(members.iter().map(|user| self.keys.chats_of(*user)));
        let mut pipe = redis::pipe();
        pipe.incr(self.keys.cache_generation(), 1).ignore();
        if !keys.is_empty() {
            pipe.del(keys).ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(error = %e, "could not invalidate a chat's cached memberships; they expire by themselves");
        }
    }
}
