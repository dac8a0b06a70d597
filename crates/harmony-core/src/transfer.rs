//! Rows as a single node stores them, for `harmony migrate --to-cluster`: the SQLite adapter
//! reads them (`harmony-sqlite/src/export.rs`), the PostgreSQL adapter writes them
//! (`harmony-postgres/src/import.rs`), and nothing in between changes them, so ids, seqs,
//! password hashes, refresh tokens and read markers arrive as they were.

use time::OffsetDateTime;

use crate::{ChatId, FriendRequestId, UserId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationRow {
    pub family: uuid::Uuid,
    pub revoked_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FriendRequestRow {
    pub id: FriendRequestId,
    pub from_id: UserId,
    pub to_id: UserId,
    pub pair_key: String,
    pub status: String,
    pub created_at: OffsetDateTime,
}

/// `user_a < user_b`, as both stores keep them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FriendshipRow {
    pub user_a: UserId,
    pub user_b: UserId,
    pub created_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRow {
    pub id: ChatId,
    pub kind: String,
    pub name: Option<String>,
    pub owner_id: UserId,
    pub created_at: OffsetDateTime,
    pub direct_key: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRow {
    pub chat_id: ChatId,
    pub user_id: UserId,
    pub role: String,
    pub joined_at: OffsetDateTime,
    pub last_read_seq: i64,
}

/// One entry of the message log: the record exactly as it was appended, with its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRow {
    /// The entry's position in the whole log (the export's cursor).
    pub position: i64,
    pub chat_id: ChatId,
    pub seq: i64,
    pub author_id: UserId,
    pub client_msg_id: Option<String>,
    /// The log record (`MessageRecordV1`), as written.
    pub record: Vec<u8>,
}

/// Everything but the messages, read in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateRows {
    pub users: Vec<UserRow>,
    /// As the session store keeps them (`ports::RefreshRecord`).
    pub refresh_tokens: Vec<crate::ports::RefreshRecord>,
    pub revocations: Vec<RevocationRow>,
    pub friend_requests: Vec<FriendRequestRow>,
    pub friendships: Vec<FriendshipRow>,
    pub chats: Vec<ChatRow>,
    pub members: Vec<MemberRow>,
}
