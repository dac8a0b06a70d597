//! Chats and their members: creation (direct chats are unique per pair), listing with activity,
//! renaming, deletion, membership changes and read markers. Authorization is checked here, on
//! every call, against live membership.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::contact;
use super::{MembershipCheck, Policy, Ports};
use crate::events::{GatewayEvent, UserNotice};
use crate::model::{Chat, ChatKind, ChatSummary, Member, Role, User};
use crate::ports::StoreError;
use crate::values::{ChatName, ValidationError};
use crate::{ChatId, UserId};

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The chat does not exist, or the caller is not in it (the two look the same).
    #[error("chat not found")]
    ChatNotFound,
    #[error("the caller's role does not allow this")]
    Forbidden,
    #[error("user not found")]
    UserNotFound,
    #[error("member not found")]
    MemberNotFound,
    #[error("already a member")]
    AlreadyMember,
    #[error("the owner cannot leave; delete the chat or hand it over")]
    OwnerCannotLeave,
    #[error("a direct chat's members cannot change")]
    DirectChatFixed,
    #[error("the history cursor is not a message of this chat")]
    InvalidCursor,
    #[error("message not found")]
    MessageNotFound,
    #[error("only the author edits a message")]
    NotAuthor,
    #[error("the message is deleted")]
    MessageDeleted,
    #[error("the message carries the most distinct reactions it may")]
    TooManyReactions,
    /// The `client_msg_id` made another kind of entry (a message, or another change).
    #[error("the client_msg_id was used for something else")]
    KeyReused,
    #[error("too many requests")]
    RateLimited(std::time::Duration),
    /// The user does not accept chats from the caller (see `contact`).
    #[error("user {0} does not accept chats from the caller")]
    ContactNotAllowed(UserId),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a caller asks for when creating a chat.
#[derive(Clone, Debug)]
pub struct NewChat {
    pub kind: ChatKind,
    pub name: Option<ChatName>,
    pub member_ids: Vec<UserId>,
}

#[derive(Clone)]
pub struct Chats {
    ports: Ports,
    policy: Arc<Policy>,
    members: MembershipCheck,
}

impl Chats {
    pub(super) fn new(ports: Ports, policy: Arc<Policy>, members: MembershipCheck) -> Self {
        Self {
            ports,
            policy,
            members,
        }
    }

    async fn limit(&self, key: String, rule: crate::ports::RateRule) -> Result<(), ChatError> {
        self.ports
            .limiter
            .check(&key, rule)
            .await
            .map_err(ChatError::RateLimited)
    }

    /// Creates a group owned by the caller, or finds-or-creates the direct chat of two users.
    /// The flag is false when an existing direct chat was returned.
    pub async fn create(&self, actor: UserId, request: NewChat) -> Result<(Chat, bool), ChatError> {
        let mut ids: Vec<UserId> = Vec::with_capacity(request.member_ids.len() + 1);
        let mut seen = HashSet::new();
        for id in std::iter::once(actor).chain(request.member_ids) {
            if seen.insert(id) {
                ids.push(id);
            }
        }
        let direct_key = match request.kind {
            ChatKind::Direct if ids.len() != 2 => {
                return Err(ValidationError::new(
                    "member_ids",
                    "a direct chat has exactly one other member",
                )
                .into())
            }
            ChatKind::Direct => Some(crate::model::pair_key(ids[0], ids[1])),
            ChatKind::Group if ids.len() > self.policy.max_group_members as usize => {
                return Err(ValidationError::new("member_ids", "too many members").into())
            }
            ChatKind::Group => None,
        };
        if let Some(key) = &direct_key {
            if let Some(existing) = self.ports.chats.chat_by_direct_key(key).await? {
                return Ok((existing, false));
            }
        }
        self.limit(format!("chat-create:{actor}"), self.policy.chat_create_rule)
            .await?;
        let users = self.load_users(&ids).await?;
        contact::check(&self.ports, self.policy.contact, actor, &ids).await?;
        let now = crate::now();
        let chat = Chat {
            id: ChatId::new(),
            kind: request.kind,
            name: match request.kind {
                ChatKind::Group => request.name,
                ChatKind::Direct => None,
            },
            owner_id: actor,
            created_at: now,
            member_count: users.len() as u32,
        };
        let members: Vec<(User, Role)> = users
            .into_iter()
            .map(|u| {
                let role = if u.id == actor {
                    Role::Owner
                } else {
                    Role::Member
                };
                (u, role)
            })
            .collect();
        match self
            .ports
            .chats
            .create_chat(&chat, &members, direct_key.as_deref())
            .await
        {
            Ok(()) => {}
            // Two requests raced to create the same direct chat: the other one won.
            Err(StoreError::Conflict("direct_chat")) => {
                let key = direct_key.as_deref().unwrap_or_default();
                let existing = self.ports.chats.chat_by_direct_key(key).await?;
                return existing.map(|c| (c, false)).ok_or(ChatError::ChatNotFound);
            }
            Err(e) => return Err(e.into()),
        }
        for (user, _) in &members {
            self.members.forget(chat.id, user.id).await;
        }
        let told: Vec<GatewayEvent> = members
            .iter()
            .filter(|(user, _)| user.id != actor)
            .map(|(user, _)| added_to(user.id, &chat, actor))
            .collect();
        self.ports.notify(&told).await;
        Ok((chat, true))
    }

    async fn load_users(&self, ids: &[UserId]) -> Result<Vec<User>, ChatError> {
        let mut users = Vec::with_capacity(ids.len());
        for id in ids {
            let user = self.ports.users.user(*id).await?;
            users.push(user.ok_or(ChatError::UserNotFound)?);
        }
        Ok(users)
    }

    /// The caller's chats with their newest message and unread count, most recently active
    /// first.
    /// The caller's chats, the most recently active first, `limit` at a time from `after` (the
    /// cursor of the last chat of the previous page); also the cursor of the next page, if any.
    pub async fn list(
        &self,
        actor: UserId,
        limit: usize,
        after: Option<&ChatCursor>,
    ) -> Result<(Vec<ChatSummary>, Option<ChatCursor>), ChatError> {
        let memberships = self.ports.chats.memberships(actor).await?;
        let markers: Vec<(ChatId, i64)> = memberships
            .iter()
            .map(|m| (m.chat.id, m.last_read_seq))
            .collect();
        let activity = self.ports.history.activity(actor, &markers).await?;
        let mut summaries: Vec<ChatSummary> = memberships
            .into_iter()
            .zip(activity)
            .map(|(m, a)| ChatSummary {
                chat: m.chat,
                last_message: a.last_message,
                unread_count: a.unread_count,
                mention_count: a.mention_count,
            })
            .collect();
        summaries.sort_by_key(|s| std::cmp::Reverse(ChatCursor::of(s)));
        let start = after.map_or(0, |after| {
            summaries.partition_point(|s| ChatCursor::of(s) >= *after)
        });
        let mut page: Vec<ChatSummary> = summaries.drain(start..).take(limit + 1).collect();
        let next = (page.len() > limit).then(|| {
            page.truncate(limit);
            page.last().map(ChatCursor::of)
        });
        Ok((page, next.flatten()))
    }

    /// The ids of the caller's chats, for a gateway session to subscribe to.
    pub async fn chat_ids(&self, actor: UserId) -> Result<Vec<ChatId>, ChatError> {
        Ok(self.members.chat_ids(actor).await?)
    }

    /// The newest `seq` of each chat (0 for a chat with no message yet). A session reads this
    /// only after subscribing, so every later message reaches it live.
    pub async fn heads(&self, chats: &[ChatId]) -> Result<HashMap<ChatId, i64>, ChatError> {
        let last = self.ports.recent.last_seqs(chats).await?;
        Ok(chats
            .iter()
            .map(|c| (*c, last.get(c).copied().unwrap_or(0)))
            .collect())
    }

    /// The chat, to its members only: anyone else is told it does not exist.
    pub async fn get(&self, actor: UserId, chat: ChatId) -> Result<Chat, ChatError> {
        self.members
            .role(chat, actor)
            .await?
            .ok_or(ChatError::ChatNotFound)?;
        self.ports
            .chats
            .chat(chat)
            .await?
            .ok_or(ChatError::ChatNotFound)
    }

    /// The caller's role. To anyone else the chat does not exist: a stranger cannot tell a chat
    /// they are not in from one that never was.
    pub async fn require_member(&self, actor: UserId, chat: ChatId) -> Result<Role, ChatError> {
        self.members
            .role(chat, actor)
            .await?
            .ok_or(ChatError::ChatNotFound)
    }

    pub async fn rename(
        &self,
        actor: UserId,
        chat: ChatId,
        name: ChatName,
    ) -> Result<Chat, ChatError> {
        let role = self.require_member(actor, chat).await?;
        if !role.can_manage() {
            return Err(ChatError::Forbidden);
        }
        let current = self.get(actor, chat).await?;
        if current.kind == ChatKind::Direct {
            return Err(ChatError::DirectChatFixed);
        }
        self.ports
            .chats
            .rename_chat(chat, &name)
            .await?
            .ok_or(ChatError::ChatNotFound)
    }

    pub async fn delete(&self, actor: UserId, chat: ChatId) -> Result<(), ChatError> {
        if self.require_member(actor, chat).await? != Role::Owner {
            return Err(ChatError::Forbidden);
        }
        // Read first: their cached chat lists go with the chat.
        let members: Vec<UserId> = self
            .ports
            .chats
            .members(chat)
            .await?
            .iter()
            .map(|m| m.user.id)
            .collect();
        if !self.ports.chats.delete_chat(chat).await? {
            return Err(ChatError::ChatNotFound);
        }
        self.members.forget_chat(chat, &members).await;
        Ok(())
    }

    pub async fn members(&self, actor: UserId, chat: ChatId) -> Result<Vec<Member>, ChatError> {
        self.require_member(actor, chat).await?;
        Ok(self.ports.chats.members(chat).await?)
    }

    pub async fn add_member(
        &self,
        actor: UserId,
        chat: ChatId,
        user: UserId,
    ) -> Result<Member, ChatError> {
        let role = self.require_member(actor, chat).await?;
        if !role.can_manage() {
            return Err(ChatError::Forbidden);
        }
        let current = self.get(actor, chat).await?;
        if current.kind == ChatKind::Direct {
            return Err(ChatError::DirectChatFixed);
        }
        if current.member_count >= self.policy.max_group_members {
            return Err(ValidationError::new("user_id", "the chat is full").into());
        }
        self.limit(format!("member-add:{actor}"), self.policy.member_add_rule)
            .await?;
        let user = self
            .ports
            .users
            .user(user)
            .await?
            .ok_or(ChatError::UserNotFound)?;
        contact::check(&self.ports, self.policy.contact, actor, &[user.id]).await?;
        let member = match self.ports.chats.add_member(chat, &user, Role::Member).await {
            Err(StoreError::Conflict(_)) => return Err(ChatError::AlreadyMember),
            other => other?,
        };
        self.members.forget(chat, user.id).await;
        let grown = Chat {
            member_count: current.member_count + 1,
            ..current
        };
        self.ports.notify(&[added_to(user.id, &grown, actor)]).await;
        Ok(member)
    }

    /// Removes a member: owners and admins remove those below them; anyone but the owner may
    /// leave.
    pub async fn remove_member(
        &self,
        actor: UserId,
        chat: ChatId,
        user: UserId,
    ) -> Result<(), ChatError> {
        let actor_role = self.require_member(actor, chat).await?;
        let current = self.get(actor, chat).await?;
        if current.kind == ChatKind::Direct {
            return Err(ChatError::DirectChatFixed);
        }
        let target_role = if user == actor {
            actor_role
        } else {
            self.ports
                .chats
                .role_of(chat, user)
                .await?
                .ok_or(ChatError::MemberNotFound)?
        };
        if target_role == Role::Owner {
            return Err(if user == actor {
                ChatError::OwnerCannotLeave
            } else {
                ChatError::Forbidden
            });
        }
        if user != actor && !(actor_role.can_manage() && actor_role > target_role) {
            return Err(ChatError::Forbidden);
        }
        if !self.ports.chats.remove_member(chat, user).await? {
            return Err(ChatError::MemberNotFound);
        }
        self.members.forget(chat, user).await;
        Ok(())
    }

    /// Moves the caller's read marker forward; a marker past the newest message is clamped.
    pub async fn mark_read(&self, actor: UserId, chat: ChatId, seq: i64) -> Result<(), ChatError> {
        if seq < 0 {
            return Err(ValidationError::new("seq", "must not be negative").into());
        }
        self.require_member(actor, chat).await?;
        let last = self.ports.recent.last_seqs(&[chat]).await?;
        let seq = seq.min(last.get(&chat).copied().unwrap_or(0));
        self.ports.chats.set_read_marker(chat, actor, seq).await?;
        // The user's other sessions clear the chat's unread badge.
        let read = GatewayEvent::ForUser {
            user_id: actor,
            notice: UserNotice::Read { chat_id: chat, seq },
        };
        self.ports.notify(&[read]).await;
        Ok(())
    }

    /// Tells the chat's connected members that `actor` is typing. The caller checked that the
    /// actor follows the chat (a gateway session knows its chats without a lookup).
    pub async fn typing(&self, actor: UserId, chat: ChatId) {
        let typing = GatewayEvent::Typing {
            chat_id: chat,
            user_id: actor,
        };
        self.ports.notify(&[typing]).await;
    }
}

/// The notice that tells `user` they are now in `chat`.
fn added_to(user: UserId, chat: &Chat, by: UserId) -> GatewayEvent {
    GatewayEvent::ForUser {
        user_id: user,
        notice: UserNotice::AddedToChat {
            chat: chat.clone(),
            by,
        },
    }
}

/// Where a page of the chat list ends: the last chat's activity (its newest message, or its
/// creation) and id. Chats are listed by activity, newest first, ties by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChatCursor {
    active_ms: i64,
    chat: ChatId,
}

impl ChatCursor {
    fn of(summary: &ChatSummary) -> Self {
        let at = summary
            .last_message
            .as_ref()
            .map_or(summary.chat.created_at, |m| m.created_at);
        Self {
            active_ms: (at.unix_timestamp_nanos() / 1_000_000) as i64,
            chat: summary.chat.id,
        }
    }
}

impl std::fmt::Display for ChatCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.active_ms, self.chat)
    }
}

impl std::str::FromStr for ChatCursor {
    type Err = ValidationError;

    fn from_str(raw: &str) -> Result<Self, ValidationError> {
        let bad = || ValidationError::new("cursor", "not a chat list cursor");
        let (ms, chat) = raw.split_once('.').ok_or_else(bad)?;
        Ok(Self {
            active_ms: ms.parse().map_err(|_| bad())?,
            chat: chat.parse().map_err(|_| bad())?,
        })
    }
}
