//! REST bodies of contract v1, and their conversions from the core's types. Request bodies hold
//! raw strings: the HTTP edge parses them into domain values and reports every bad field.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;

use harmony_core::model::{Author, Chat, ChatSummary, FriendRequest, Member, Message, User};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterRequest {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// The body of a password change: the current password proves it is the owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// The body of refresh and logout. Cookie sessions leave it empty: the token is in the cookie.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefreshRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthResponse {
    pub user: UserDto,
    /// Absent for cookie sessions (`X-Session-Mode: cookie`): the web UI never sees a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Absent for cookie sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// A public profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserDto {
    pub id: String,
    pub username: String,
    pub display_name: String,
    #[serde(with = "crate::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<&User> for UserDto {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            username: u.username.to_string(),
            display_name: u.display_name.to_string(),
            created_at: u.created_at,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SendFriendRequest {
    pub username: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FriendRequestDto {
    pub id: String,
    pub from: UserDto,
    pub to: UserDto,
    /// `pending`, `accepted` or `declined`.
    pub status: String,
    #[serde(with = "crate::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
}

impl From<&FriendRequest> for FriendRequestDto {
    fn from(r: &FriendRequest) -> Self {
        Self {
            id: r.id.to_string(),
            from: (&r.from).into(),
            to: (&r.to).into(),
            status: r.status.as_str().to_owned(),
            created_at: r.created_at,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FriendRequestsDto {
    pub incoming: Vec<FriendRequestDto>,
    pub outgoing: Vec<FriendRequestDto>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CreateChatRequest {
    /// `group` or `direct`.
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub member_ids: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChatDto {
    pub id: String,
    /// `group` or `direct`.
    pub kind: String,
    pub name: Option<String>,
    pub owner_id: String,
    #[serde(with = "crate::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    pub member_count: u32,
}

impl From<&Chat> for ChatDto {
    fn from(c: &Chat) -> Self {
        Self {
            id: c.id.to_string(),
            kind: c.kind.as_str().to_owned(),
            name: c.name.as_ref().map(ToString::to_string),
            owner_id: c.owner_id.to_string(),
            created_at: c.created_at,
            member_count: c.member_count,
        }
    }
}

/// A chat in the caller's list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChatListItem {
    #[serde(flatten)]
    pub chat: ChatDto,
    pub last_message: Option<MessageDto>,
    /// Messages by others after the caller's read marker.
    pub unread_count: u64,
    /// Of those, the ones that mention the caller (or everyone).
    #[serde(default)]
    pub mention_count: u64,
}

impl From<&ChatSummary> for ChatListItem {
    fn from(s: &ChatSummary) -> Self {
        Self {
            chat: (&s.chat).into(),
            last_message: s.last_message.as_ref().map(Into::into),
            unread_count: s.unread_count,
            mention_count: s.mention_count,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RenameChatRequest {
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MemberDto {
    pub user: UserDto,
    /// `owner`, `admin` or `member`.
    pub role: String,
    #[serde(with = "crate::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub joined_at: OffsetDateTime,
}

impl From<&Member> for MemberDto {
    fn from(m: &Member) -> Self {
        Self {
            user: (&m.user).into(),
            role: m.role.as_str().to_owned(),
            joined_at: m.joined_at,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddMemberRequest {
    pub user_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SendMessageRequest {
    pub content: String,
    /// The sender's idempotency key: a retry with the same key returns the same message.
    #[serde(default)]
    pub client_msg_id: Option<String>,
    /// The id of a message of this chat this one answers.
    #[serde(default)]
    pub reply_to: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthorDto {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

impl From<&Author> for AuthorDto {
    fn from(a: &Author) -> Self {
        Self {
            id: a.id.to_string(),
            username: a.username.to_string(),
            display_name: a.display_name.to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageDto {
    /// A ULID.
    pub id: String,
    pub chat_id: String,
    /// The message's position in its chat: 1 for its first message, then 2, 3, ... with no gap
    /// and no repeat, in the chat's one order (the same in both shapes, live, in history and on
    /// resume). A seq missing from what a client holds is a message it has not received yet.
    pub seq: i64,
    pub author: AuthorDto,
    /// Empty once deleted.
    pub content: String,
    pub client_msg_id: Option<String>,
    #[serde(with = "crate::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// When the author last edited it; null if never.
    #[serde(default, with = "crate::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub edited_at: Option<OffsetDateTime>,
    /// When it was deleted; null unless deleted (then `content` is empty and there are no
    /// reactions: a tombstone).
    #[serde(default, with = "crate::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deleted_at: Option<OffsetDateTime>,
    /// In the order each emoji was first used.
    #[serde(default)]
    pub reactions: Vec<ReactionDto>,
    /// The message this one answers, quoted.
    #[serde(default)]
    pub reply_to: Option<QuoteDto>,
    /// Members this message mentions (`@username`), resolved when it was sent.
    #[serde(default)]
    pub mentions: Vec<String>,
    /// `@everyone` from an admin or the owner of a group.
    #[serde(default)]
    pub mentions_everyone: bool,
    /// Set for a timeline line about the chat (a member added or removed, a rename), written
    /// by the server: show it as a line, not as a message of `author`'s.
    #[serde(default)]
    pub notice: Option<NoticeDto>,
}

/// A timeline line about the chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NoticeDto {
    /// `member_added`, `member_removed` or `renamed`.
    pub kind: String,
    /// The member added or removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The chat's new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl From<&harmony_core::model::Notice> for NoticeDto {
    fn from(n: &harmony_core::model::Notice) -> Self {
        use harmony_core::model::Notice;
        let (kind, user_id, name) = match n {
            Notice::MemberAdded { user } => ("member_added", Some(user.to_string()), None),
            Notice::MemberRemoved { user } => ("member_removed", Some(user.to_string()), None),
            Notice::Renamed { name } => ("renamed", None, Some(name.to_string())),
        };
        Self {
            kind: kind.to_owned(),
            user_id,
            name,
        }
    }
}

impl From<&Message> for MessageDto {
    fn from(m: &Message) -> Self {
        Self {
            id: m.id.to_string(),
            chat_id: m.chat_id.to_string(),
            seq: m.seq,
            author: (&m.author).into(),
            content: m.content.to_string(),
            client_msg_id: m.client_msg_id.as_ref().map(|c| c.as_str().to_owned()),
            created_at: m.created_at,
            edited_at: m.state.edited_at,
            deleted_at: m.state.deleted_at,
            reactions: m.state.reactions.iter().map(ReactionDto::from).collect(),
            reply_to: m.reply_to.as_ref().map(QuoteDto::from),
            mentions: m.mentions.users.iter().map(ToString::to_string).collect(),
            mentions_everyone: m.mentions.everyone,
            notice: m.notice.as_ref().map(NoticeDto::from),
        }
    }
}

/// The users who reacted with one emoji.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReactionDto {
    pub emoji: String,
    pub count: u32,
    /// In the order they reacted.
    pub user_ids: Vec<String>,
}

impl From<&harmony_core::changes::Reaction> for ReactionDto {
    fn from(r: &harmony_core::changes::Reaction) -> Self {
        Self {
            emoji: r.emoji.to_string(),
            count: u32::try_from(r.users.len()).unwrap_or(u32::MAX),
            user_ids: r.users.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A reply's quote of the message it answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuoteDto {
    pub id: String,
    pub author: AuthorDto,
    /// The original's first 100 characters (empty once deleted).
    pub excerpt: String,
    pub deleted: bool,
}

impl From<&harmony_core::model::Quote> for QuoteDto {
    fn from(q: &harmony_core::model::Quote) -> Self {
        Self {
            id: q.id.to_string(),
            author: (&q.author).into(),
            excerpt: q.excerpt.clone(),
            deleted: q.deleted,
        }
    }
}

/// A change to a message: an entry of the chat's order with its own `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageChangeDto {
    /// The change entry's own id (a ULID).
    pub id: String,
    pub seq: i64,
    /// `edit`, `delete`, `react` or `unreact`.
    pub kind: String,
    /// The message changed.
    pub target_id: String,
    pub by: AuthorDto,
    #[serde(with = "crate::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// An edit's new content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// A reaction's emoji.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    pub client_msg_id: Option<String>,
}

impl MessageChangeDto {
    /// `None` for a message entry.
    pub fn of(m: &Message) -> Option<Self> {
        let change = m.change.as_ref()?;
        Some(Self {
            id: m.id.to_string(),
            seq: m.seq,
            kind: change.kind().to_owned(),
            target_id: change.target().to_string(),
            by: (&m.author).into(),
            at: m.created_at,
            content: matches!(change, harmony_core::changes::Change::Edit { .. })
                .then(|| m.content.to_string()),
            emoji: change.emoji().map(ToString::to_string),
            client_msg_id: m.client_msg_id.as_ref().map(|c| c.as_str().to_owned()),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EditMessageRequest {
    pub content: String,
    /// The editor's idempotency key: a retry with the same key is the same edit.
    #[serde(default)]
    pub client_msg_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessagePage {
    /// Ascending by `seq`.
    pub messages: Vec<MessageDto>,
    /// Whether more messages lie beyond this page in the direction asked.
    pub has_more: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadMarkerRequest {
    /// Accepted as any JSON number with an integral value (`12` or `12.0`), as JSON Schema's
    /// `integer` defines it.
    #[serde(deserialize_with = "integral")]
    pub seq: i64,
}

/// An `i64` from a JSON number whose value is integral, whatever its spelling.
fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::Error;
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        _ => Err(D::Error::custom(format!("{n} is not a 64-bit integer"))),
    }
}

/// What others see of a user: `online`, `idle` (every session of theirs says so) or `offline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceStatusDto {
    Online,
    Idle,
    Offline,
}

impl From<harmony_core::presence::Status> for PresenceStatusDto {
    fn from(status: harmony_core::presence::Status) -> Self {
        use harmony_core::presence::Status;
        match status {
            Status::Online => Self::Online,
            Status::Idle => Self::Idle,
            Status::Offline => Self::Offline,
        }
    }
}

/// A user's presence. `last_seen` is set for an offline user when known.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresenceDto {
    pub user_id: String,
    pub status: PresenceStatusDto,
    #[serde(with = "crate::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<OffsetDateTime>,
}

impl From<&harmony_core::presence::Presence> for PresenceDto {
    fn from(p: &harmony_core::presence::Presence) -> Self {
        Self {
            user_id: p.user_id.to_string(),
            status: p.status.into(),
            last_seen: p.last_seen,
        }
    }
}

/// `GET /presence`: everyone the caller is shown live, or the users asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresenceListDto {
    pub presence: Vec<PresenceDto>,
}
