//! The entities the use cases work on. They hold parsed values only, so anything built from them is
//! valid by construction.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{ChatId, FriendRequestId, MessageId, UserId};
use crate::values::{ChatName, ClientMsgId, DisplayName, MessageContent, Username};

/// A user's public profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A user as the store holds it, with the password hash (PHC string). Never leaves the core.
#[derive(Clone, Debug)]
pub struct Account {
    pub user: User,
    pub password_hash: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatKind {
    Group,
    Direct,
}

impl ChatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Direct => "direct",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "group" => Some(Self::Group),
            "direct" => Some(Self::Direct),
            _ => None,
        }
    }
}

/// A member's role; the order is the order of power.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    /// Owners and admins manage the member list and the name.
    pub fn can_manage(self) -> bool {
        self >= Self::Admin
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chat {
    pub id: ChatId,
    pub kind: ChatKind,
    pub name: Option<ChatName>,
    pub owner_id: UserId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub member_count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: User,
    pub role: Role,
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: OffsetDateTime,
}

/// A chat as listed for one user: with the newest message and how many others wrote since the
/// user's read marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatSummary {
    pub chat: Chat,
    pub last_message: Option<Message>,
    pub unread_count: u64,
}

/// The author as shown with a message: a snapshot taken when the message was accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub id: UserId,
    pub username: Username,
    pub display_name: DisplayName,
}

impl From<&User> for Author {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            display_name: user.display_name.clone(),
        }
    }
}

/// A message accepted by an api node, not yet placed in the log (so it has no `seq`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    pub id: MessageId,
    pub chat_id: ChatId,
    pub author: Author,
    pub content: MessageContent,
    pub client_msg_id: Option<ClientMsgId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A committed message: `seq` is its position in its chat, strictly increasing in the chat's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub chat_id: ChatId,
    pub seq: i64,
    pub author: Author,
    pub content: MessageContent,
    pub client_msg_id: Option<ClientMsgId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Message {
    /// The previous message's `seq` in its chat, for gap detection. Seqs are dense from 1 in both
    /// shapes (each chat's order is 1, 2, 3, ...), so this is `seq - 1`, and none for the first
    /// message. Every frame that carries `prev_seq` takes it from here.
    pub fn prev_seq(&self) -> Option<i64> {
        (self.seq > 1).then(|| self.seq - 1)
    }
}

impl NewMessage {
    pub fn committed(self, seq: i64) -> Message {
        Message {
            id: self.id,
            chat_id: self.chat_id,
            seq,
            author: self.author,
            content: self.content,
            client_msg_id: self.client_msg_id,
            created_at: self.created_at,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FriendRequestStatus {
    Pending,
    Accepted,
    Declined,
}

impl FriendRequestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "accepted" => Some(Self::Accepted),
            "declined" => Some(Self::Declined),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FriendRequest {
    pub id: FriendRequestId,
    pub from: User,
    pub to: User,
    pub status: FriendRequestStatus,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A friendship's two users in a canonical order, so a pair has one key whichever way round.
pub fn friend_pair(a: UserId, b: UserId) -> [UserId; 2] {
    if a <= b {
        [a, b]
    } else {
        [b, a]
    }
}

/// The canonical key of a pair of users: `"<smaller id>:<larger id>"`.
pub fn pair_key(a: UserId, b: UserId) -> String {
    let [x, y] = friend_pair(a, b);
    format!("{x}:{y}")
}
