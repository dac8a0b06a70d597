//! Sending and reading messages. A send is authorized against live membership, rate limited per
//! user, and appended to the durable log: it is committed when `append` returns. History comes
//! from the message store; resume combines the store with the log's recent window.

use std::sync::Arc;

use super::{ChatError, MembershipCheck, Policy, Ports, UserLookup};
use crate::model::{Author, Message, NewMessage, Quote};
use crate::ports::{AppendOutcome, HistoryPage, PageCursor};
use crate::values::{ClientMsgId, MessageContent};
use crate::{ChatId, MessageId, UserId};

/// The most messages one history page holds.
pub const HISTORY_PAGE_MAX: u32 = 100;

#[derive(Clone)]
pub struct Messages {
    pub(super) ports: Ports,
    pub(super) policy: Arc<Policy>,
    pub(super) members: MembershipCheck,
    pub(super) users: UserLookup,
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

    /// Members only; to anyone else the chat does not exist (see `Chats::require_member`).
    pub(super) async fn require_member(
        &self,
        actor: UserId,
        chat: ChatId,
    ) -> Result<crate::model::Role, ChatError> {
        self.members
            .role(chat, actor)
            .await?
            .ok_or(ChatError::ChatNotFound)
    }

    /// The member's author snapshot, once they passed the send rate limit.
    pub(super) async fn author_within_limit(&self, actor: UserId) -> Result<Author, ChatError> {
        self.ports
            .limiter
            .check(&format!("send:{actor}"), self.policy.send_rule)
            .await
            .map_err(ChatError::RateLimited)?;
        let user = self.users.get(actor).await?;
        Ok(Author::from(&user.ok_or(ChatError::UserNotFound)?))
    }

    /// Appends a message; returns once the log holds it. A retry with the same `client_msg_id`
    /// returns the message the first attempt created. `reply_to` must be a message of the chat
    /// that is not deleted; `@username` of members and `@everyone` (from an admin or the owner
    /// of a group) are resolved now.
    pub async fn send(
        &self,
        actor: UserId,
        chat: ChatId,
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
        reply_to: Option<MessageId>,
    ) -> Result<AppendOutcome, ChatError> {
        let role = self.require_member(actor, chat).await?;
        let author = self.author_within_limit(actor).await?;
        let mut message = NewMessage::text(chat, author, content, client_msg_id);
        if let Some(id) = reply_to {
            let original = self.target(chat, id).await?;
            if original.state.deleted_at.is_some() {
                return Err(ChatError::MessageDeleted);
            }
            message.reply_to = Some(Quote::of(&original));
        }
        message.mentions = self.mentions(chat, role, &message.content).await?;
        match self.ports.log.append(message).await? {
            // The key made a change, not a message.
            AppendOutcome::Duplicate(m) if !m.is_message() => Err(ChatError::KeyReused),
            outcome => Ok(outcome),
        }
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
        if let Some(page) = self.ports.history.page(chat, cursor, limit).await? {
            return Ok(page);
        }
        // The store may lag the log (the cluster's sink): a message the chat's order knows is a
        // valid cursor, and what follows it comes from there.
        let PageCursor::After(id) = cursor else {
            return Err(ChatError::InvalidCursor);
        };
        let Some(seq) = self.ports.recent.seq_of(chat, id).await? else {
            return Err(ChatError::InvalidCursor);
        };
        let mut after = self.ports.recent.recent_after(chat, seq, limit + 1).await?;
        keep_contiguous(seq, &mut after.messages);
        Ok(HistoryPage::from_fetch(after.messages, limit, true))
    }

    /// Up to `limit` messages after `after_seq`, ascending and without a hole (seqs are dense),
    /// for a resuming session: the recent source first, the history store for what it does not
    /// hold. An empty answer means nothing after `after_seq` could be read; the caller knows
    /// where the chat stands and treats a shortfall as a failure, never as "caught up".
    /// The caller knows the reader is a member: a gateway session following the chat (it
    /// subscribed from the member's chat list, and a removal unfollows it) or one that checked,
    /// so a reconnecting client's resume costs no membership lookup per chat.
    pub async fn missed(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<Message>, ChatError> {
        let mut recent = self
            .ports
            .recent
            .recent_after(chat, after_seq, limit)
            .await?;
        keep_contiguous(after_seq, &mut recent.messages);
        if recent.complete {
            return Ok(recent.messages);
        }
        let mut older = self
            .ports
            .history
            .messages_after_seq(chat, after_seq, limit)
            .await?;
        keep_contiguous(after_seq, &mut older);
        // The store may lag the log (the cluster's sink); what it has continues into the recent
        // source's messages when they meet.
        let mut next = older.last().map_or(after_seq, |m| m.seq) + 1;
        for m in recent.messages {
            if m.seq == next && older.len() < limit as usize {
                older.push(m);
                next += 1;
            }
        }
        Ok(older)
    }
}

/// Cuts `messages` (ascending) at the first hole after `after_seq`: what is kept is exactly the
/// seqs `after_seq + 1, after_seq + 2, ...` (a chat's seqs are dense, so a missing one is a
/// message some source does not hold, never one that does not exist).
pub fn keep_contiguous(after_seq: i64, messages: &mut Vec<Message>) {
    let run = messages
        .iter()
        .zip(after_seq.saturating_add(1)..)
        .take_while(|(m, expected)| m.seq == *expected)
        .count();
    messages.truncate(run);
}
