//! The message store's port (history): pages, resume reads, chat-list activity and purges.

use async_trait::async_trait;

use super::StoreResult;
use crate::ids::{ChatId, MessageId, UserId};
use crate::model::Message;

/// A page of history, ascending by `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    pub messages: Vec<Message>,
    pub has_more: bool,
}

impl HistoryPage {
    /// Builds a page from a fetch of `limit + 1` rows read away from the cursor (`ascending`
    /// false: newest first): the extra row only says whether there is more.
    pub fn from_fetch(mut messages: Vec<Message>, limit: u32, ascending: bool) -> Self {
        let has_more = messages.len() > limit as usize;
        messages.truncate(limit as usize);
        if !ascending {
            messages.reverse();
        }
        Self { messages, has_more }
    }
}

/// Where a history page starts; a cursor naming a message not in the chat is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageCursor {
    Latest,
    Before(MessageId),
    After(MessageId),
}

/// A chat's newest message and the caller's unread count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatActivity {
    /// The newest message entry (changes are not messages).
    pub last_message: Option<Message>,
    /// Message entries by others after the read marker.
    pub unread_count: u64,
    /// Of those, the ones that mention the user or everyone.
    pub mention_count: u64,
}

/// The message store (history). Writes are upserts by message id, so replays are harmless.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Stores each entry unless its id is stored already (a replay), and applies each change
    /// entry to its target with [`crate::changes::apply`] (entries come in each chat's order,
    /// and a target remembers the last change it took, so a replay changes nothing). Returns
    /// the ids it refused because their chat's position holds another entry: an impossible
    /// state (for instance the state database restored from a backup older than the store's),
    /// which the caller reports and passes over instead of retrying forever.
    async fn upsert_messages(&self, messages: &[Message]) -> StoreResult<Vec<MessageId>>;
    /// One entry of the chat by id, in its current state (a message with its edits, deletion
    /// and reactions); `None` when the chat has no entry with that id.
    async fn message(&self, chat: ChatId, id: MessageId) -> StoreResult<Option<Message>>;
    /// `None` when the cursor's message is not in this chat.
    async fn page(
        &self,
        chat: ChatId,
        cursor: PageCursor,
        limit: u32,
    ) -> StoreResult<Option<HistoryPage>>;
    async fn messages_after_seq(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// For each `(chat, read marker)`: the newest message and how many messages by others
    /// follow the marker.
    async fn activity(
        &self,
        user: UserId,
        chats: &[(ChatId, i64)],
    ) -> StoreResult<Vec<ChatActivity>>;
    /// Deletes up to `batch` messages of the chat for the event `event`; returns how many went.
    /// When none are left it records the event as done, in the same transaction; for a done
    /// event it does nothing and returns 0 (the ledger makes a replayed event harmless).
    async fn purge_chat(&self, chat: ChatId, batch: u32, event: uuid::Uuid) -> StoreResult<u64>;
}
