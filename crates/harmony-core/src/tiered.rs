//! The cluster's recent messages: a cache (the Redis window) in front of the truth (the
//! sequencer's table in PostgreSQL). The cache answers only for what it holds without a hole
//! from the asked position on; chat heads always come from the truth. So a cache that lost its
//! data, or came back from an old snapshot, costs a database read, never a wrong answer.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::ports::{RecentMessages, RecentSlice, StoreResult};
use crate::usecases::keep_contiguous;
use crate::{ChatId, MessageId};

pub struct CachedRecent {
    pub cache: Arc<dyn RecentMessages>,
    pub truth: Arc<dyn RecentMessages>,
}

#[async_trait]
impl RecentMessages for CachedRecent {
    async fn recent_after(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<RecentSlice> {
        // A cache that fails is not the request's failure: the truth answers.
        if let Ok(mut slice) = self.cache.recent_after(chat, after_seq, limit).await {
            keep_contiguous(after_seq, &mut slice.messages);
            if !slice.messages.is_empty() {
                return Ok(RecentSlice {
                    messages: slice.messages,
                    complete: true,
                });
            }
        }
        self.truth.recent_after(chat, after_seq, limit).await
    }

    async fn last_seqs(&self, chats: &[ChatId]) -> StoreResult<HashMap<ChatId, i64>> {
        self.truth.last_seqs(chats).await
    }

    async fn seq_of(&self, chat: ChatId, id: MessageId) -> StoreResult<Option<i64>> {
        self.truth.seq_of(chat, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Author, Message};
    use crate::values::{DisplayName, MessageContent, Username};
    use crate::{MessageId, UserId};
    use std::sync::Mutex;

    /// An in-memory recent source holding the given seqs of one chat.
    struct Fake {
        seqs: Vec<i64>,
        reads: Mutex<u32>,
    }

    fn message(chat: ChatId, seq: i64) -> Message {
        Message {
            id: MessageId::new(),
            chat_id: chat,
            seq,
            author: Author {
                id: UserId::new(),
                username: Username::parse("ann").expect("valid"),
                display_name: DisplayName::parse("Ann").expect("valid"),
            },
            content: MessageContent::parse("hi").expect("valid"),
            client_msg_id: None,
            created_at: crate::now(),
            change: None,
            reply_to: None,
            mentions: Default::default(),
            state: Default::default(),
            notice: None,
        }
    }

    #[async_trait]
    impl RecentMessages for Fake {
        async fn recent_after(
            &self,
            chat: ChatId,
            after_seq: i64,
            limit: u32,
        ) -> StoreResult<RecentSlice> {
            *self.reads.lock().expect("lock") += 1;
            let messages = self
                .seqs
                .iter()
                .filter(|s| **s > after_seq)
                .take(limit as usize)
                .map(|s| message(chat, *s))
                .collect();
            Ok(RecentSlice {
                messages,
                complete: true,
            })
        }
        async fn last_seqs(&self, chats: &[ChatId]) -> StoreResult<HashMap<ChatId, i64>> {
            Ok(chats
                .iter()
                .filter_map(|c| self.seqs.last().map(|s| (*c, *s)))
                .collect())
        }
    }

    fn tiered(cache: Vec<i64>, truth: Vec<i64>) -> (CachedRecent, Arc<Fake>) {
        let truth = Arc::new(Fake {
            seqs: truth,
            reads: Mutex::new(0),
        });
        let cache = Arc::new(Fake {
            seqs: cache,
            reads: Mutex::new(0),
        });
        (
            CachedRecent {
                cache,
                truth: truth.clone(),
            },
            truth,
        )
    }

    fn seqs(slice: &RecentSlice) -> Vec<i64> {
        slice.messages.iter().map(|m| m.seq).collect()
    }

    #[tokio::test]
    async fn a_cache_without_a_hole_answers_alone() {
        let (t, truth) = tiered(vec![4, 5, 6], (1..=6).collect());
        let slice = t.recent_after(ChatId::new(), 3, 10).await.expect("read");
        assert_eq!(seqs(&slice), vec![4, 5, 6]);
        assert_eq!(*truth.reads.lock().expect("lock"), 0);
    }

    #[tokio::test]
    async fn a_cache_that_forgot_the_start_defers_to_the_truth() {
        // Redis lost its data, then took new messages: it holds 9..10, the chat has 1..10.
        let (t, truth) = tiered(vec![9, 10], (1..=10).collect());
        let slice = t.recent_after(ChatId::new(), 3, 10).await.expect("read");
        assert_eq!(seqs(&slice), (4..=10).collect::<Vec<_>>());
        assert_eq!(*truth.reads.lock().expect("lock"), 1);
    }

    #[tokio::test]
    async fn a_cache_with_a_hole_answers_only_up_to_it() {
        // Restored from an old snapshot (1..5), then new messages (9..10): 6..8 are missing.
        let (t, _) = tiered(vec![1, 2, 3, 4, 5, 9, 10], (1..=10).collect());
        let chat = ChatId::new();
        let first = t.recent_after(chat, 2, 10).await.expect("read");
        assert_eq!(seqs(&first), vec![3, 4, 5], "cut at the hole");
        let rest = t.recent_after(chat, 5, 10).await.expect("read");
        assert_eq!(
            seqs(&rest),
            vec![6, 7, 8, 9, 10],
            "the truth fills the hole"
        );
    }

    #[tokio::test]
    async fn heads_come_from_the_truth() {
        let (t, _) = tiered(vec![1, 2], (1..=7).collect());
        let chat = ChatId::new();
        let heads = t.last_seqs(&[chat]).await.expect("read");
        assert_eq!(heads.get(&chat), Some(&7));
    }
}
