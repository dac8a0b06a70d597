//! The recent-messages window: per chat, a sorted set of the newest messages scored by `seq`,
//! plus the chat's head (newest seq) and floor (the window holds every message after it). A
//! resume after a position at or above the floor is served entirely from here; older positions
//! come from the store. Evictions raise the floor; a window that starts empty sets it just below
//! its first message (it cannot tell a chat's first message from a lost past), and a resume
//! that found in the store what lies before the window's oldest message lowers it again
//! (`extend_back`).

use std::collections::HashMap;

use async_trait::async_trait;
use harmony_core::model::Message;
use harmony_core::ports::{RecentMessages, RecentSlice, StoreError, StoreResult};
use harmony_core::ChatId;
use redis::aio::ConnectionManager;
use redis::Script;

use crate::{unavailable, Keys};

/// KEYS: window, floors. ARGV: chat id, new floor, the oldest seq the caller saw in the window.
/// Lowers the floor only while the window still starts at that message.
const EXTEND_BACK: &str = r#"
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #oldest == 2 and tonumber(oldest[2]) == tonumber(ARGV[3]) then
  local floor = redis.call('HGET', KEYS[2], ARGV[1])
  if not floor or tonumber(floor) > tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
    return 1
  end
end
return 0
"#;

#[derive(Clone)]
pub struct RedisWindow {
    pub(crate) conn: ConnectionManager,
    pub(crate) keys: Keys,
    extend_back: Script,
}

impl RedisWindow {
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self {
            conn,
            keys,
            extend_back: Script::new(EXTEND_BACK),
        }
    }
}

#[async_trait]
impl RecentMessages for RedisWindow {
    async fn recent_after(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<RecentSlice> {
        let mut conn = self.conn.clone();
        let (raw, floor, head): (Vec<String>, Option<i64>, Option<i64>) = redis::pipe()
            .cmd("ZRANGEBYSCORE")
            .arg(self.keys.window(chat))
            .arg(format!("({after_seq}"))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .hget(self.keys.floors(), chat.to_string())
            .hget(self.keys.heads(), chat.to_string())
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let messages = raw
            .iter()
            .map(|json| {
                serde_json::from_str::<Message>(json)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // Without a head the window knows nothing of this chat (new, or Redis lost its data):
        // only the store can say what exists. Below the floor, the store has the older part.
        let complete = head.is_some() && floor.is_some_and(|f| after_seq >= f);
        Ok(RecentSlice { messages, complete })
    }

    async fn extend_back(&self, chat: ChatId, floor: i64, oldest: i64) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .extend_back
            .key(self.keys.window(chat))
            .key(self.keys.floors())
            .arg(chat.to_string())
            .arg(floor)
            .arg(oldest)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn last_seqs(&self, chats: &[ChatId]) -> StoreResult<HashMap<ChatId, i64>> {
        if chats.is_empty() {
            return Ok(HashMap::new());
        }
        let mut conn = self.conn.clone();
        let fields: Vec<String> = chats.iter().map(ToString::to_string).collect();
        let heads: Vec<Option<i64>> = redis::cmd("HMGET")
            .arg(self.keys.heads())
            .arg(&fields)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(chats
            .iter()
            .zip(heads)
            .filter_map(|(c, h)| h.map(|h| (*c, h)))
            .collect())
    }
}
