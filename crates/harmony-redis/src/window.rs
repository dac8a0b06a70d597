//! The recent-messages window: per chat, a sorted set of the newest messages scored by `seq`.
//! It is a cache in front of the sequencer's table (`harmony_core::tiered::CachedRecent`): a chat's
//! seqs are dense, so what it returns is trusted only as far as it runs without a hole from the
//! asked position, and a window that lost its data, or came back from an old snapshot, is
//! passed over, never believed.

use std::collections::HashMap;

use async_trait::async_trait;
use harmony_core::ports::{RecentMessages, RecentSlice, StoreError, StoreResult};
use harmony_core::ChatId;
use harmony_protocol::gateway::PlacedMessageV1;
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
        let raw: Vec<Vec<u8>> = redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.window(chat))
            .arg(format!("({after_seq}"))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut messages = raw
            .iter()
            .map(|entry| {
                PlacedMessageV1::decode(entry).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        harmony_core::usecases::keep_contiguous(after_seq, &mut messages);
        // Only a run starting right after the asked position is known to be whole.
        let complete = !messages.is_empty();
        Ok(RecentSlice { messages, complete })
    }

    /// The newest seq each window holds: what the cache saw, not the truth (a window that lost
    /// its data knows nothing; `CachedRecent` asks the sequencer instead).
    async fn last_seqs(&self, chats: &[ChatId]) -> StoreResult<HashMap<ChatId, i64>> {
        if chats.is_empty() {
            return Ok(HashMap::new());
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        for chat in chats {
            pipe.cmd("ZRANGE")
                .arg(self.keys.window(*chat))
                .arg(-1)
                .arg(-1)
                .arg("WITHSCORES");
        }
        let newest: Vec<Vec<(Vec<u8>, i64)>> =
            pipe.query_async(&mut conn).await.map_err(unavailable)?;
        Ok(chats
            .iter()
            .zip(newest)
            .filter_map(|(c, top)| top.first().map(|(_, seq)| (*c, *seq)))
            .collect())
    }
}
