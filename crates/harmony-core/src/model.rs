//! The entities the use cases work on. They hold parsed values only, so anything built from them is
//! valid by construction.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::changes::{Change, MessageState};
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
    /// Of the unread, those that mention the user (or everyone).
    pub mention_count: u64,
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

/// A reply's quote of the message it answers: in history as the original reads now, in a live
/// frame as it read when the reply was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub id: MessageId,
    pub author: Author,
    /// The original's first [`Quote::EXCERPT_CHARS`] characters; empty once it is deleted.
    pub excerpt: String,
    pub deleted: bool,
}

impl Quote {
    pub const EXCERPT_CHARS: usize = 100;

    /// The quote of `original` as it reads now.
    pub fn of(original: &Message) -> Self {
        Self {
            id: original.id,
            author: original.author.clone(),
            excerpt: excerpt(original.content.as_str()),
            deleted: original.state.deleted_at.is_some(),
        }
    }
}

/// The first [`Quote::EXCERPT_CHARS`] characters of `content`.
pub fn excerpt(content: &str) -> String {
    content.chars().take(Quote::EXCERPT_CHARS).collect()
}

/// Who a message mentions, resolved against the chat's members when it was sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mentions {
    pub users: Vec<UserId>,
    /// `@everyone`, from an admin or the owner of a group.
    pub everyone: bool,
}

impl Mentions {
    pub fn includes(&self, user: UserId) -> bool {
        self.everyone || self.users.contains(&user)
    }
}

/// A line in a chat's timeline about the chat itself, not a message anyone wrote: written by the
/// projector from the event that made the change, keyed by the event's id. Its entry is a
/// message whose author is the member it is about (for a rename, the chat's owner) and whose
/// content says it in words, for clients that do not know notices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    MemberAdded { user: UserId },
    MemberRemoved { user: UserId },
    Renamed { name: ChatName },
}

/// An entry accepted by an api node, not yet placed in the log (so it has no `seq`): a message,
/// or a change to an earlier message (`change`, decision record 0004).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    pub id: MessageId,
    pub chat_id: ChatId,
    pub author: Author,
    /// A message's text, or an edit's new text; empty for the other changes and once deleted.
    pub content: MessageContent,
    pub client_msg_id: Option<ClientMsgId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub change: Option<Change>,
    pub reply_to: Option<Quote>,
    pub mentions: Mentions,
    pub state: MessageState,
    pub notice: Option<Notice>,
}

/// A committed entry: `seq` is its position in its chat, strictly increasing in the chat's
/// order. Read from history, a message carries its current state (edits, deletion, reactions).
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
    pub change: Option<Change>,
    pub reply_to: Option<Quote>,
    pub mentions: Mentions,
    pub state: MessageState,
    pub notice: Option<Notice>,
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
    /// A plain message (no change, reply or mention), accepted now.
    pub fn text(
        chat_id: ChatId,
        author: Author,
        content: MessageContent,
        client_msg_id: Option<ClientMsgId>,
    ) -> Self {
        Self {
            id: MessageId::new(),
            chat_id,
            author,
            content,
            client_msg_id,
            created_at: crate::now(),
            change: None,
            reply_to: None,
            mentions: Mentions::default(),
            state: MessageState::default(),
            notice: None,
        }
    }

    pub fn committed(self, seq: i64) -> Message {
        Message {
            id: self.id,
            chat_id: self.chat_id,
            seq,
            author: self.author,
            content: self.content,
            client_msg_id: self.client_msg_id,
            created_at: self.created_at,
            change: self.change,
            reply_to: self.reply_to,
            mentions: self.mentions,
            state: self.state,
            notice: self.notice,
        }
    }
}

impl Message {
    /// A message entry, not a change.
    pub fn is_message(&self) -> bool {
        self.change.is_none()
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
