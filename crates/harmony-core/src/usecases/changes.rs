//! Edits, deletes and reactions (decision record 0004): each is an entry appended to the chat's
//! log like a message, after the checks a member's role and the target's author decide. What
//! the order decides (a change after a delete, a reaction already there) the log's placing
//! transaction decides again with [`crate::changes::apply`], so a race ends the same way
//! everywhere. Also the two things a send resolves against the chat: replies and mentions.

use super::{ChatError, Messages};
use crate::changes::{self, Change, Emoji, Refusal, Target};
use crate::model::{ChatKind, Mentions, Message, NewMessage, Role};
use crate::ports::AppendOutcome;
use crate::values::{ClientMsgId, MessageContent, Username};
use crate::{ChatId, MessageId, UserId};

/// The most distinct `@username`s one message resolves.
const MAX_MENTIONS: usize = 20;

impl From<Refusal> for ChatError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::NotFound => Self::MessageNotFound,
            Refusal::NotAuthor => Self::NotAuthor,
            Refusal::Deleted => Self::MessageDeleted,
            Refusal::TooManyReactions => Self::TooManyReactions,
            // Callers answer "done" before it gets here; a refusal is never a success.
            Refusal::Unchanged => Self::MessageDeleted,
        }
    }
}

impl Messages {
    /// A message (not a change) of the chat as it stands: history's current state, or, while
    /// the store has not caught up with the chat's order (a cluster's sink), the entry as it
    /// was placed.
    pub(super) async fn target(&self, chat: ChatId, id: MessageId) -> Result<Message, ChatError> {
        let found = match self.ports.history.message(chat, id).await? {
            Some(m) => Some(m),
            None => match self.ports.recent.seq_of(chat, id).await? {
                Some(seq) => {
                    let slice = self.ports.recent.recent_after(chat, seq - 1, 1).await?;
                    slice.messages.into_iter().find(|m| m.id == id)
                }
                None => None,
            },
        };
        found
            .filter(Message::is_message)
            .ok_or(ChatError::MessageNotFound)
    }

    /// Who `content` mentions: `@username` of members, and `@everyone` from an admin or the
    /// owner of a group (from anyone else it is plain text).
    pub(super) async fn mentions(
        &self,
        chat: ChatId,
        role: Role,
        content: &MessageContent,
    ) -> Result<Mentions, ChatError> {
        let (names, everyone) = mentioned(content.as_str());
        let mut out = Mentions::default();
        if everyone && role.can_manage() {
            let kind = self.ports.chats.chat(chat).await?.map(|c| c.kind);
            out.everyone = kind == Some(ChatKind::Group);
        }
        for name in names {
            let Ok(username) = Username::parse(&name) else {
                continue;
            };
            let Some(account) = self.ports.users.account_by_username(&username).await? else {
                continue;
            };
            let id = account.user.id;
            if !out.users.contains(&id) && self.members.role(chat, id).await?.is_some() {
                out.users.push(id);
            }
        }
        Ok(out)
    }

    /// Edits the caller's message; returns the edit entry once the log holds it (a retry with
    /// the same `client_msg_id` returns the first attempt's).
    pub async fn edit(
        &self,
        actor: UserId,
        chat: ChatId,
        target: MessageId,
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
    ) -> Result<Message, ChatError> {
        let change = Change::Edit { target };
        match self
            .change(actor, chat, change, content, client_msg_id)
            .await?
        {
            AppendOutcome::Created(m) => Ok(m),
            // A retry: the key made this edit, or it made something else.
            AppendOutcome::Duplicate(m) => match m.change {
                Some(Change::Edit { target: t }) if t == target => Ok(m),
                _ => Err(ChatError::KeyReused),
            },
            AppendOutcome::Refused(r) => Err(r.into()),
        }
    }

    /// Deletes a message: its author, or an admin or the owner of the chat. Deleting a deleted
    /// message is done already.
    pub async fn delete(
        &self,
        actor: UserId,
        chat: ChatId,
        target: MessageId,
    ) -> Result<(), ChatError> {
        let change = Change::Delete { target };
        self.settle(self.change(actor, chat, change, empty(), None).await?)
    }

    /// Adds (`add`) or removes the caller's reaction; idempotent.
    pub async fn react(
        &self,
        actor: UserId,
        chat: ChatId,
        target: MessageId,
        emoji: Emoji,
        add: bool,
    ) -> Result<(), ChatError> {
        let change = if add {
            Change::React { target, emoji }
        } else {
            Change::Unreact { target, emoji }
        };
        self.settle(self.change(actor, chat, change, empty(), None).await?)
    }

    /// A change that changed nothing is done as well.
    fn settle(&self, outcome: AppendOutcome) -> Result<(), ChatError> {
        match outcome {
            AppendOutcome::Refused(Refusal::Unchanged)
            | AppendOutcome::Created(_)
            | AppendOutcome::Duplicate(_) => Ok(()),
            AppendOutcome::Refused(r) => Err(r.into()),
        }
    }

    async fn change(
        &self,
        actor: UserId,
        chat: ChatId,
        change: Change,
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
    ) -> Result<AppendOutcome, ChatError> {
        let role = self.require_member(actor, chat).await?;
        let target = self.target(chat, change.target()).await?;
        let theirs = target.author.id != actor;
        if matches!(change, Change::Delete { .. }) && theirs && !role.can_manage() {
            return Err(ChatError::Forbidden);
        }
        // The early answer from what this node sees; the log's transaction decides again.
        let seen = Target {
            author: target.author.id,
            state: target.state,
        };
        if let Err(refusal) = changes::apply(&change, actor, crate::now(), &seen) {
            return Ok(AppendOutcome::Refused(refusal));
        }
        let author = self.author_within_limit(actor).await?;
        let mut entry = NewMessage::text(chat, author, content, client_msg_id);
        entry.change = Some(change);
        Ok(self.ports.log.append(entry).await?)
    }
}

/// The content of a change that carries none.
fn empty() -> MessageContent {
    MessageContent::from_trusted(String::new())
}

/// The `@name`s in `content` (lower-cased, each once, at most [`MAX_MENTIONS`]), and whether
/// it says `@everyone`. A mention starts at `@` after a space, punctuation or the start, and
/// runs over username characters; a trailing `.` or `-` is punctuation, not part of the name.
pub fn mentioned(content: &str) -> (Vec<String>, bool) {
    let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let mut names: Vec<String> = Vec::new();
    let mut everyone = false;
    let mut prev: Option<char> = None;
    for (at, c) in content.char_indices() {
        let starts = c == '@' && !prev.is_some_and(|p| name_char(p) || p == '@');
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &content[at + 1..];
        let end = rest.find(|c: char| !name_char(c)).unwrap_or(rest.len());
        let name = rest[..end]
            .trim_end_matches(['.', '-'])
            .to_ascii_lowercase();
        if name == "everyone" {
            everyone = true;
        } else if (3..=32).contains(&name.len())
            && !names.contains(&name)
            && names.len() < MAX_MENTIONS
        {
            names.push(name);
        }
    }
    (names, everyone)
}

#[cfg(test)]
mod tests {
    use super::mentioned;

    #[test]
    fn mentions_are_names_after_an_at_sign() {
        let (names, everyone) = mentioned("@Ann hi @bob.smith, and @ann again; mail x@kim.io @@jo");
        assert_eq!(names, vec!["ann", "bob.smith"]);
        assert!(!everyone);
        let (names, everyone) = mentioned("(@everyone) look @al @kim.");
        assert_eq!(names, vec!["kim"]);
        assert!(everyone);
        assert!(mentioned("no mentions @ all").0.is_empty());
    }
}
