//! The recent-messages window: per chat, a sorted set of the newest messages scored by `seq`,
//! plus the chat's head (newest seq) and floor (highest seq evicted). A resume after a position
//! at or above the floor is served entirely from here; older positions come from the store.

use std::collections::HashMap;

use async_trait::async_trait;
use harmony_core::model::Message;
use harmony_core::ports::{RecentMessages, RecentSlice, StoreError, StoreResult};
use harmony_core::ChatId;
use redis::aio::ConnectionManager;

use crate::{unavailable, Keys};

#[derive(Clone)]
pub struct RedisWindow {
    pub(crate) conn: ConnectionManager,
    pub(crate) keys: Keys,
}

impl RedisWindow {
    pub fn new(conn: ConnectionManager, keys: Keys) -> Self {
        Self { conn, keys }
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
