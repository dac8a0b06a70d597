//! `client_msg_id` keys shared by every api node: reserved with `SET NX` before a message is
//! produced, completed with the committed message, released if the produce failed.

use std::time::Duration;

use async_trait::async_trait;
use harmony_core::model::Message;
use harmony_core::ports::{IdempotencyKeys, Reservation, StoreError, StoreResult};
use harmony_core::values::ClientMsgId;
use harmony_core::{ChatId, UserId};
use redis::aio::ConnectionManager;
use redis::Script;

use crate::{unavailable, Keys};

const PENDING: &str = "pending";
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"#;

pub struct RedisIdempotency {
    conn: ConnectionManager,
    keys: Keys,
    /// How long a completed key answers retries.
    remember: Duration,
    /// How long a reservation may stay pending (longer than any produce).
    pending_for: Duration,
    release: Script,
}

impl RedisIdempotency {
    pub fn new(
        conn: ConnectionManager,
        keys: Keys,
        remember: Duration,
        pending_for: Duration,
    ) -> Self {
        Self {
            conn,
            keys,
            remember,
            pending_for,
            release: Script::new(RELEASE),
        }
    }
}

#[async_trait]
impl IdempotencyKeys for RedisIdempotency {
    async fn reserve(
        &self,
        chat: ChatId,
        author: UserId,
        key: &ClientMsgId,
    ) -> StoreResult<Reservation> {
        let mut conn = self.conn.clone();
        let name = self.keys.idempotency(chat, author, key.as_str());
        let (set, value): (Option<String>, Option<String>) = redis::pipe()
            .cmd("SET")
            .arg(&name)
            .arg(PENDING)
            .arg("NX")
            .arg("PX")
            .arg(self.pending_for.as_millis() as u64)
            .get(&name)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if set.is_some() {
            return Ok(Reservation::Reserved);
        }
        match value.as_deref() {
            None => Ok(Reservation::InFlight),
            Some(PENDING) => Ok(Reservation::InFlight),
            Some(json) => serde_json::from_str(json)
                .map(Reservation::Existing)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
        }
    }

    async fn complete(
        &self,
        chat: ChatId,
        author: UserId,
        key: &ClientMsgId,
        message: &Message,
    ) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let json =
            serde_json::to_string(message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        redis::cmd("SET")
            .arg(self.keys.idempotency(chat, author, key.as_str()))
            .arg(json)
            .arg("EX")
            .arg(self.remember.as_secs().max(1))
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn release(&self, chat: ChatId, author: UserId, key: &ClientMsgId) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        self.release
            .key(self.keys.idempotency(chat, author, key.as_str()))
            .arg(PENDING)
            .invoke_async::<i64>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}
