//! What happens, as data. Domain events are written to the outbox in the same transaction as the
//! state change they describe, and the projector turns them into effects. Gateway events are what
//! the fan-out and the projector ask the gateways to deliver to live sessions.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{ChatId, UserId};
use crate::model::{Chat, FriendRequest, Message, Role, User};

/// Version of every payload below; bumped when a payload changes incompatibly.
pub const EVENT_VERSION: i32 = 1;

/// A state change, as recorded in the outbox. Payloads carry what their handlers need so that a
/// handler never reads state that may have changed since.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DomainEvent {
    UserCreated {
        user: User,
    },
    ChatCreated {
        chat: Chat,
        members: Vec<User>,
    },
    ChatRenamed {
        chat: Chat,
    },
    ChatDeleted {
        chat_id: ChatId,
        member_ids: Vec<UserId>,
    },
    MemberAdded {
        chat_id: ChatId,
        user: User,
        role: Role,
    },
    MemberRemoved {
        chat_id: ChatId,
        user_id: UserId,
    },
    FriendshipCreated {
        user_ids: [UserId; 2],
    },
    FriendshipRemoved {
        user_ids: [UserId; 2],
    },
}

impl DomainEvent {
    /// The snake_case name stored in the outbox's `event_type` column.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::UserCreated { .. } => "user_created",
            Self::ChatCreated { .. } => "chat_created",
            Self::ChatRenamed { .. } => "chat_renamed",
            Self::ChatDeleted { .. } => "chat_deleted",
            Self::MemberAdded { .. } => "member_added",
            Self::MemberRemoved { .. } => "member_removed",
            Self::FriendshipCreated { .. } => "friendship_created",
            Self::FriendshipRemoved { .. } => "friendship_removed",
        }
    }

    /// The aggregate this event belongs to: events of one aggregate are handled in order.
    pub fn aggregate(&self) -> (&'static str, String) {
        match self {
            Self::UserCreated { user } => ("user", user.id.to_string()),
            Self::ChatCreated { chat, .. } | Self::ChatRenamed { chat } => {
                ("chat", chat.id.to_string())
            }
            Self::ChatDeleted { chat_id, .. }
            | Self::MemberAdded { chat_id, .. }
            | Self::MemberRemoved { chat_id, .. } => ("chat", chat_id.to_string()),
            Self::FriendshipCreated { user_ids } | Self::FriendshipRemoved { user_ids } => {
                ("friendship", format!("{}:{}", user_ids[0], user_ids[1]))
            }
        }
    }
}

/// An outbox row as a consumer reads it: `position` orders the outbox, `id` makes handling
/// idempotent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    pub position: i64,
    pub id: uuid::Uuid,
    pub event: DomainEvent,
    pub created_at: OffsetDateTime,
}

/// What a gateway delivers to the live sessions subscribed to a chat, in the order received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GatewayEvent {
    /// A committed message; `prev_seq` is the previous message's `seq` in the chat, if known.
    Message {
        prev_seq: Option<i64>,
        message: Box<Message>,
    },
    /// Subscribes the user's sessions to the chat, then tells every subscriber.
    MemberAdded {
        chat_id: ChatId,
        user: User,
    },
    /// Tells every subscriber (the removed user too), then unsubscribes the user's sessions.
    MemberRemoved {
        chat_id: ChatId,
        user_id: UserId,
    },
    ChatUpdated {
        chat: Chat,
    },
    /// Tells every subscriber, then drops the chat's subscriptions. `member_ids` are the members
    /// at deletion, so a session of theirs that is just starting re-reads its chats.
    ChatDeleted {
        chat_id: ChatId,
        member_ids: Vec<UserId>,
    },
    /// A member is typing in a chat: shown to the chat's connected members for a few seconds
    /// unless renewed; never stored.
    Typing {
        chat_id: ChatId,
        user_id: UserId,
    },
    /// A user's presence changed: told to the sessions of `audience` (their friends and
    /// small-chat co-members, as the change was announced) and of the user themself.
    Presence {
        presence: crate::presence::Presence,
        audience: Vec<UserId>,
    },
    /// Something for one user's own sessions (on every gateway), and no one else's.
    ForUser {
        user_id: UserId,
        notice: UserNotice,
    },
}

/// What a user's own sessions are told live. Best effort: a client that missed one finds the same
/// state on its next read (friend requests, the chat list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UserNotice {
    /// A friend request to or from the user was sent, accepted or declined (its `status` says).
    FriendRequest { request: FriendRequest },
    /// A friendship of the user with `user_id` ended.
    FriendRemoved { user_id: UserId },
    /// The user read a chat up to `seq`, on one of their sessions.
    Read { chat_id: ChatId, seq: i64 },
    /// Someone (`by`) put the user into a chat: a new group, a new direct chat, or an existing
    /// group. The user's sessions also get `member_added` once the event is projected; this one
    /// carries the chat, so a client can show it at once.
    AddedToChat { chat: Chat, by: UserId },
}

impl GatewayEvent {
    /// The live frame of a committed message, with its `prev_seq` (`Message::prev_seq`).
    pub fn message(message: Message) -> Self {
        Self::Message {
            prev_seq: message.prev_seq(),
            message: Box::new(message),
        }
    }

    /// The chat whose sessions the event goes to; `None` for notices to users (their own, presence).
    pub fn chat_id(&self) -> Option<ChatId> {
        match self {
            Self::Message { message, .. } => Some(message.chat_id),
            Self::MemberAdded { chat_id, .. }
            | Self::MemberRemoved { chat_id, .. }
            | Self::ChatDeleted { chat_id, .. }
            | Self::Typing { chat_id, .. } => Some(*chat_id),
            Self::ChatUpdated { chat } => Some(chat.id),
            Self::ForUser { .. } | Self::Presence { .. } => None,
        }
    }
}

/// Which chats a gateway process's sessions follow, as the set changes: the process subscribes
/// to exactly those chats' events (one subscription per chat, not per session).
#[derive(Debug)]
pub enum Interest {
    Follow(ChatId),
    Drop(ChatId),
    /// Answered once every change sent before it is in effect: a session that just subscribed
    /// waits for it before reading where its chats stand, so no event falls in between.
    Barrier(tokio::sync::oneshot::Sender<()>),
}
