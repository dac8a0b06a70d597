//! The message store: history pages, resume reads, activity for chat lists, and purges.
//! Rows hold the author's id only; names are joined in on read, so they are always current.

use async_trait::async_trait;
use harmony_core::model::{Author, Message};
use harmony_core::ports::{ChatActivity, HistoryPage, HistoryStore, PageCursor, StoreResult};
use harmony_core::values::{ClientMsgId, MessageContent};
use harmony_core::{ChatId, MessageId, UserId};
use rusqlite::{Connection, Row};

use crate::conn::Wake;
use crate::users::user_from;
use crate::{col, exec, from_ms, ms, parse, row, rows, unavailable, Database};

/// The columns [`message_from`] reads, by position (a page reads many rows).
macro_rules! message_select {
    () => {
        "SELECT m.id, m.chat_id, m.seq, m.content, m.client_msg_id, m.created_at, \
         u.id, u.username, u.display_name, u.created_at \
         FROM messages m JOIN users u ON u.id = m.author_id WHERE m.chat_id = ? "
    };
}

fn message_from(row: &Row<'_>) -> StoreResult<Message> {
    let id: String = col(row, 0)?;
    let chat: String = col(row, 1)?;
    let author = user_from(row, &[6, 7, 8, 9])?;
    let client_msg_id: Option<String> = col(row, 4)?;
    Ok(Message {
        id: parse("message id", &id)?,
        chat_id: parse("chat id", &chat)?,
        seq: col(row, 2)?,
        author: Author::from(&author),
        content: MessageContent::from_trusted(col(row, 3)?),
        client_msg_id: client_msg_id.map(ClientMsgId::from_trusted),
        created_at: from_ms(col(row, 5)?)?,
    })
}

fn seq_of(conn: &Connection, chat: &str, id: harmony_core::MessageId) -> StoreResult<Option<i64>> {
    row(
        conn,
        "SELECT seq FROM messages WHERE id = ? AND chat_id = ?",
        (id.to_string(), chat),
        |r| col(r, "seq"),
    )
}

/// Stores one message in history; a message already there (same id) is left as it is.
macro_rules! insert_message_sql {
    ($on_conflict:literal) => {
        concat!(
            "INSERT INTO messages (id, chat_id, seq, author_id, content, client_msg_id, created_at) ",
            "VALUES (?, ?, ?, ?, ?, ?, ?) ",
            $on_conflict
        )
    };
}

pub(crate) fn insert_message(conn: &Connection, m: &Message) -> StoreResult<()> {
    insert(conn, m, insert_message_sql!("ON CONFLICT (id) DO NOTHING")).map(|_| ())
}

/// Inserts a message row with `sql` (one of the `insert_message_sql!` statements); how many
/// rows it added.
fn insert(conn: &Connection, m: &Message, sql: &'static str) -> StoreResult<usize> {
    exec(
        conn,
        sql,
        (
            m.id.to_string(),
            m.chat_id.to_string(),
            m.seq,
            m.author.id.to_string(),
            m.content.as_str(),
            m.client_msg_id.as_ref().map(|c| c.as_str()),
            ms(m.created_at),
        ),
    )
    .map_err(unavailable)
}

/// Stores a message unless its id is stored; false when its position holds another message.
fn upsert_one(conn: &Connection, m: &Message) -> StoreResult<bool> {
    let added = insert(conn, m, insert_message_sql!("ON CONFLICT DO NOTHING"))?;
    if added > 0 {
        return Ok(true);
    }
    let stored: Option<i64> = row(
        conn,
        "SELECT 1 AS one FROM messages WHERE id = ?",
        [m.id.to_string()],
        |r| col(r, "one"),
    )?;
    Ok(stored.is_some())
}

/// Newest first, below `seq`.
const BEFORE: &str = concat!(
    message_select!(),
    "AND m.seq < ? ORDER BY m.seq DESC LIMIT ?"
);
/// Oldest first, above `seq`.
const AFTER: &str = concat!(message_select!(), "AND m.seq > ? ORDER BY m.seq LIMIT ?");

/// `sql` is [`BEFORE`] or [`AFTER`]: whole statements, so a page builds no SQL string.
fn messages_where(
    conn: &Connection,
    sql: &str,
    chat: &str,
    seq: i64,
    limit: u32,
) -> StoreResult<Vec<Message>> {
    rows(conn, sql, (chat, seq, i64::from(limit)), message_from)
}

/// Up to `limit` messages of `chat` after `seq`, oldest first (resume reads these: the history
/// is written in the append's transaction, so it holds every message the log does).
pub(crate) fn after(
    conn: &Connection,
    chat: &str,
    seq: i64,
    limit: u32,
) -> StoreResult<Vec<Message>> {
    messages_where(conn, AFTER, chat, seq, limit)
}

/// The message a retried send created before: the same chat, author and `client_msg_id`.
pub(crate) fn by_client_key(
    conn: &Connection,
    chat: &str,
    author: &str,
    key: &str,
) -> StoreResult<Option<Message>> {
    const BY_KEY: &str = concat!(
        message_select!(),
        "AND m.author_id = ? AND m.client_msg_id = ?"
    );
    row(conn, BY_KEY, (chat, author, key), message_from)
}

#[async_trait]
impl HistoryStore for Database {
    async fn upsert_messages(&self, messages: &[Message]) -> StoreResult<Vec<MessageId>> {
        let messages = messages.to_vec();
        self.write(Wake::Nobody, move |conn| {
            let mut refused = Vec::new();
            for m in &messages {
                if !upsert_one(conn, m)? {
                    refused.push(m.id);
                }
            }
            Ok(refused)
        })
        .await
    }

    async fn page(
        &self,
        chat: ChatId,
        cursor: PageCursor,
        limit: u32,
    ) -> StoreResult<Option<HistoryPage>> {
        let fetch = limit + 1;
        self.read(move |conn| {
            let chat = chat.to_string();
            let (messages, ascending) = match cursor {
                PageCursor::Latest => {
                    (messages_where(conn, BEFORE, &chat, i64::MAX, fetch)?, false)
                }
                PageCursor::Before(id) => {
                    let Some(seq) = seq_of(conn, &chat, id)? else {
                        return Ok(None);
                    };
                    (messages_where(conn, BEFORE, &chat, seq, fetch)?, false)
                }
                PageCursor::After(id) => {
                    let Some(seq) = seq_of(conn, &chat, id)? else {
                        return Ok(None);
                    };
                    (messages_where(conn, AFTER, &chat, seq, fetch)?, true)
                }
            };
            Ok(Some(HistoryPage::from_fetch(messages, limit, ascending)))
        })
        .await
    }

    async fn messages_after_seq(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        self.read(move |conn| messages_where(conn, AFTER, &chat.to_string(), after_seq, limit))
            .await
    }

    async fn activity(
        &self,
        user: UserId,
        chats: &[(ChatId, i64)],
    ) -> StoreResult<Vec<ChatActivity>> {
        let chats = chats.to_vec();
        self.read(move |conn| {
            let user = user.to_string();
            let mut out = Vec::with_capacity(chats.len());
            for (chat, marker) in &chats {
                let chat = chat.to_string();
                let last = messages_where(conn, BEFORE, &chat, i64::MAX, 1)?.pop();
                let unread = row(
                    conn,
                    "SELECT COUNT(*) AS n FROM messages \
                     WHERE chat_id = ? AND seq > ? AND author_id != ?",
                    (&chat, marker, &user),
                    |r| col::<i64>(r, "n"),
                )?
                .unwrap_or(0);
                out.push(ChatActivity {
                    last_message: last,
                    unread_count: u64::try_from(unread).unwrap_or(0),
                });
            }
            Ok(out)
        })
        .await
    }

    async fn purge_chat(&self, chat: ChatId, batch: u32, event: uuid::Uuid) -> StoreResult<u64> {
        self.write(Wake::Nobody, move |conn| {
            let event = event.to_string();
            let done = row(
                conn,
                "SELECT 1 FROM processed_events WHERE event_id = ?",
                [&event],
                |_| Ok(()),
            )?;
            if done.is_some() {
                return Ok(0);
            }
            let deleted = exec(
                conn,
                "DELETE FROM messages WHERE id IN \
                 (SELECT id FROM messages WHERE chat_id = ? LIMIT ?)",
                (chat.to_string(), i64::from(batch)),
            )
            .map_err(unavailable)?;
            if deleted == 0 {
                exec(
                    conn,
                    "INSERT INTO processed_events (event_id, processed_at) VALUES (?, ?)",
                    (&event, ms(harmony_core::now())),
                )
                .map_err(unavailable)?;
            }
            Ok(deleted as u64)
        })
        .await
    }
}
