//! Reads a stopped single node's database for `harmony migrate --to-cluster`: the state in one
//! read transaction, then the message log a page at a time in position order. Rows come out as
//! stored (`harmony_core::transfer`).

use std::path::Path;

use harmony_core::ports::{RefreshRecord, StoreError, StoreResult};
use harmony_core::transfer::{
    ChatRow, FriendRequestRow, FriendshipRow, LogRow, MemberRow, RevocationRow, StateRows, UserRow,
};
use rusqlite::{Connection, OpenFlags, Row};

use crate::{col, from_ms, parse, rows, unavailable};

/// A read-only connection to a single node's database.
pub struct Export {
    conn: Connection,
}

fn uuid(row: &Row<'_>, name: &str) -> StoreResult<uuid::Uuid> {
    parse("uuid", &col::<String>(row, name)?)
}

fn time(row: &Row<'_>, name: &str) -> StoreResult<time::OffsetDateTime> {
    from_ms(col(row, name)?)
}

impl Export {
    /// Opens the database at `path` for reading (the node must be stopped: the caller holds the
    /// data directory's lock).
    pub fn open(path: &Path) -> StoreResult<Self> {
        if !path.exists() {
            return Err(StoreError::Unavailable(format!(
                "no database at {}",
                path.display()
            )));
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(unavailable)?;
        Ok(Self { conn })
    }

    /// Every row of state, as of one read transaction.
    pub fn state(&mut self) -> StoreResult<StateRows> {
        let tx = self.conn.transaction().map_err(unavailable)?;
        let c = &tx;
        let state = StateRows {
            users: rows(c, "SELECT * FROM users ORDER BY created_at", [], |r| {
                Ok(UserRow {
                    id: parse("user id", &col::<String>(r, "id")?)?,
                    username: col(r, "username")?,
                    display_name: col(r, "display_name")?,
                    password_hash: col(r, "password_hash")?,
                    created_at: time(r, "created_at")?,
                })
            })?,
            refresh_tokens: rows(c, "SELECT * FROM refresh_tokens", [], |r| {
                let hash: Vec<u8> = col(r, "hash")?;
                Ok(RefreshRecord {
                    hash: hash
                        .try_into()
                        .map_err(|_| StoreError::Corrupt("a refresh token hash".into()))?,
                    family: uuid(r, "family")?,
                    user_id: parse("user id", &col::<String>(r, "user_id")?)?,
                    created_at: time(r, "created_at")?,
                    expires_at: time(r, "expires_at")?,
                    rotated_at: col::<Option<i64>>(r, "rotated_at")?
                        .map(from_ms)
                        .transpose()?,
                    revoked: col::<i64>(r, "revoked")? != 0,
                })
            })?,
            revocations: rows(c, "SELECT * FROM session_revocations", [], |r| {
                Ok(RevocationRow {
                    family: uuid(r, "family")?,
                    revoked_at: time(r, "revoked_at")?,
                })
            })?,
            friend_requests: rows(c, "SELECT * FROM friend_requests", [], |r| {
                Ok(FriendRequestRow {
                    id: parse("request id", &col::<String>(r, "id")?)?,
                    from_id: parse("user id", &col::<String>(r, "from_id")?)?,
                    to_id: parse("user id", &col::<String>(r, "to_id")?)?,
                    pair_key: col(r, "pair_key")?,
                    status: col(r, "status")?,
                    created_at: time(r, "created_at")?,
                })
            })?,
            friendships: rows(c, "SELECT * FROM friendships", [], |r| {
                Ok(FriendshipRow {
                    user_a: parse("user id", &col::<String>(r, "user_a")?)?,
                    user_b: parse("user id", &col::<String>(r, "user_b")?)?,
                    created_at: time(r, "created_at")?,
                })
            })?,
            chats: rows(c, "SELECT * FROM chats", [], |r| {
                Ok(ChatRow {
                    id: parse("chat id", &col::<String>(r, "id")?)?,
                    kind: col(r, "kind")?,
                    name: col(r, "name")?,
                    owner_id: parse("user id", &col::<String>(r, "owner_id")?)?,
                    created_at: time(r, "created_at")?,
                    direct_key: col(r, "direct_key")?,
                })
            })?,
            members: rows(c, "SELECT * FROM chat_members", [], |r| {
                Ok(MemberRow {
                    chat_id: parse("chat id", &col::<String>(r, "chat_id")?)?,
                    user_id: parse("user id", &col::<String>(r, "user_id")?)?,
                    role: col(r, "role")?,
                    joined_at: time(r, "joined_at")?,
                    last_read_seq: col(r, "last_read_seq")?,
                })
            })?,
        };
        Ok(state)
    }

    /// How many entries the message log holds.
    pub fn log_len(&self) -> StoreResult<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM message_log", [], |r| r.get(0))
            .map_err(unavailable)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The newest seq of each chat.
    pub fn heads(&self) -> StoreResult<Vec<(harmony_core::ChatId, i64)>> {
        rows(
            &self.conn,
            "SELECT chat_id, last_seq FROM log_heads",
            [],
            |r| {
                Ok((
                    parse("chat id", &col::<String>(r, "chat_id")?)?,
                    col(r, "last_seq")?,
                ))
            },
        )
    }

    /// Up to `limit` log entries after `position`, in log order.
    pub fn log_after(&self, position: i64, limit: u32) -> StoreResult<Vec<LogRow>> {
        rows(
            &self.conn,
            "SELECT position, chat_id, seq, author_id, client_msg_id, record FROM message_log \
             WHERE position > ? ORDER BY position LIMIT ?",
            (position, limit),
            |r| {
                Ok(LogRow {
                    position: col(r, "position")?,
                    chat_id: parse("chat id", &col::<String>(r, "chat_id")?)?,
                    seq: col(r, "seq")?,
                    author_id: parse("user id", &col::<String>(r, "author_id")?)?,
                    client_msg_id: col(r, "client_msg_id")?,
                    record: col(r, "record")?,
                })
            },
        )
    }
}
