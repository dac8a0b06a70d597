//! Sending and reading messages. A send is authorized against live membership, rate limited per
//! user, and appended to the durable log: it is committed when `append` returns. History comes
//! from the message store; resume combines the store with the log's recent window.

use std::sync::Arc;

use super::{ChatError, MembershipCheck, Policy, Ports, UserLookup};
use crate::model::{Author, Message, NewMessage};
use crate::ports::{AppendOutcome, HistoryPage, PageCursor};
use crate::values::{ClientMsgId, MessageContent};
use crate::{ChatId, MessageId, UserId};

/// The most messages one history page holds.
pub const HISTORY_PAGE_MAX: u32 = 100;

#[derive(Clone)]
pub struct Messages {
    ports: Ports,
    policy: Arc<Policy>,
    members: MembershipCheck,
    users: UserLookup,
}

impl Messages {
    pub(super) fn new(
        ports: Ports,
        policy: Arc<Policy>,
        members: MembershipCheck,
        users: UserLookup,
    ) -> Self {
        Self {
            ports,
            policy,
            members,
            users,
        }
    }

    async fn require_member(&self, actor: UserId, chat: ChatId) -> Result<(), ChatError> {
        if self.members.role(chat, actor).await?.is_some() {
            return Ok(());
        }
        match self.ports.chats.chat(chat).await? {
            Some(_) => Err(ChatError::NotAMember),
            None => Err(ChatError::ChatNotFound),
        }
    }

    /// Appends a message; returns once the log holds it. A retry with the same `client_msg_id`
    /// returns the message the first attempt created.
    pub async fn send(
        &self,
        actor: UserId,
        chat: ChatId,
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
    ) -> Result<AppendOutcome, ChatError> {
        self.require_member(actor, chat).await?;
        self.ports
            .limiter
            .check(&format!("send:{actor}"), self.policy.send_rule)
            .await
            .map_err(ChatError::RateLimited)?;
        let message = NewMessage {
            id: MessageId::new(),
            chat_id: chat,
            author: Author::from(
                &self
                    .users
                    .get(actor)
                    .await?
                    .ok_or(ChatError::UserNotFound)?,
            ),
            content,
            client_msg_id,
            created_at: crate::now(),
        };
        Ok(self.ports.log.append(message).await?)
    }

    /// A page of history, ascending by `seq`.
    pub async fn history(
        &self,
        actor: UserId,
        chat: ChatId,
        cursor: PageCursor,
        limit: u32,
    ) -> Result<HistoryPage, ChatError> {
        self.require_member(actor, chat).await?;
        let limit = limit.clamp(1, HISTORY_PAGE_MAX);
        self.ports
            .history
            .page(chat, cursor, limit)
            .await?
            .ok_or(ChatError::InvalidCursor)
    }

    /// Up to `limit` messages after `after_seq`, ascending, for a resuming session: the store for
    /// what fell out of the recent window, then the window. An empty answer means caught up.
    /// The caller knows the reader is a member: a gateway session following the chat (it
    /// subscribed from the member's chat list, and a removal unfollows it) or one that checked,
    /// so a reconnecting client's resume costs no membership lookup per chat.
    pub async fn missed(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Message>, ChatError> {
        let recent = self
            .ports
            .recent
            .recent_after(chat, after_seq, limit)
            .await?;
        if recent.complete {
            return Ok(recent.messages);
        }
        let first_recent = recent.messages.first().map(|m| m.seq);
        let mut older = self
            .ports
            .history
            .messages_after_seq(chat, after_seq, limit)
            .await?;
        if let Some(first) = first_recent {
            // When the store holds the window's oldest message it holds everything before it
            // (the sink writes a partition in order), and this page reached it: the messages
            // between `after_seq` and it are all in `older`. The window then answers for
            // everything after the newest of them by itself. This is how a new chat's window,
            // which cannot tell its first message from a lost past, learns that it is complete:
            // one store read per chat, not one per reconnecting client.
            let reached = older.iter().any(|m| m.seq == first);
            older.retain(|m| m.seq < first);
            if reached {
                let floor = older.last().map_or(after_seq, |m| m.seq);
                // Only a shortcut for later resumes: if it fails, they read the store as this one did.
                let _ = self.ports.recent.extend_back(chat, floor, first).await;
            }
        }
        let room = (limit as usize).saturating_sub(older.len());
        older.extend(recent.messages.into_iter().take(room));
        Ok(older)
    }
}
