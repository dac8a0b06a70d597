//! The message store: history pages, resume reads, activity for chat lists, and purges.
//! Rows hold the author's id only; names are joined in on read, so they are always current.
//! A row is an entry of the chat's log: a message in its current state, or a change to one
//! (decision record 0004; `crate::changes` applies them). Pages, chat lists and unread counts
//! read messages only; resume reads every entry.

use async_trait::async_trait;
use harmony_core::changes::MessageState;
use harmony_core::model::{excerpt, Author, Mentions, Message, Quote};
use harmony_core::ports::{ChatActivity, HistoryPage, HistoryStore, PageCursor, StoreResult};
use harmony_core::values::{ClientMsgId, MessageContent};
use harmony_core::{ChatId, MessageId, UserId};
use rusqlite::{Connection, Row};

use crate::conn::Wake;
use crate::users::user_from;
use crate::{col, exec, from_ms, ms, parse, row, rows, unavailable, Database};

/// The columns [`message_from`] reads, by position (a page reads many rows). A reply's original
/// is joined in as it reads now.
macro_rules! message_select {
    () => {
        "SELECT m.id, m.chat_id, m.seq, m.content, m.client_msg_id, m.created_at, \
         u.id, u.username, u.display_name, u.created_at, \
         m.change, m.reply_quote, m.mentions, m.mentions_everyone, m.edited_at, m.deleted_at, \
         m.reactions, r.content, r.deleted_at, ru.id, ru.username, ru.display_name, ru.created_at, \
         m.notice \
         FROM messages m JOIN users u ON u.id = m.author_id \
         LEFT JOIN messages r ON r.id = m.reply_to_id LEFT JOIN users ru ON ru.id = r.author_id \
         WHERE m.chat_id = ? "
    };
}

/// A JSON column, absent when NULL.
fn json<T: serde::de::DeserializeOwned>(row: &Row<'_>, at: usize) -> StoreResult<Option<T>> {
    let raw: Option<String> = col(row, at)?;
    raw.map(|raw| {
        serde_json::from_str(&raw)
            .map_err(|e| harmony_core::ports::StoreError::Corrupt(format!("column {at}: {e}")))
    })
    .transpose()
}

fn message_from(row: &Row<'_>) -> StoreResult<Message> {
    let id: String = col(row, 0)?;
    let chat: String = col(row, 1)?;
    let author = user_from(row, &[6, 7, 8, 9])?;
    let client_msg_id: Option<String> = col(row, 4)?;
    let original: Option<String> = col(row, 19)?;
    let reply_to = match (json::<Quote>(row, 11)?, original) {
        (Some(quote), Some(_)) => {
            let deleted_at: Option<i64> = col(row, 18)?;
            Some(Quote {
                author: Author::from(&user_from(row, &[19, 20, 21, 22])?),
                excerpt: excerpt(&col::<String>(row, 17)?),
                deleted: deleted_at.is_some(),
                ..quote
            })
        }
        (quote, _) => quote,
    };
    let at = |i: usize| -> StoreResult<Option<time::OffsetDateTime>> {
        col::<Option<i64>>(row, i)?.map(from_ms).transpose()
    };
    Ok(Message {
        id: parse("message id", &id)?,
        chat_id: parse("chat id", &chat)?,
        seq: col(row, 2)?,
        author: Author::from(&author),
        content: MessageContent::from_trusted(col(row, 3)?),
        client_msg_id: client_msg_id.map(ClientMsgId::from_trusted),
        created_at: from_ms(col(row, 5)?)?,
        change: json(row, 10)?,
        reply_to,
        mentions: Mentions {
            users: json(row, 12)?.unwrap_or_default(),
            everyone: col(row, 13)?,
        },
        state: MessageState {
            edited_at: at(14)?,
            deleted_at: at(15)?,
            reactions: json(row, 16)?.unwrap_or_default(),
        },
        notice: json(row, 23)?,
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

/// Stores one entry in history; one already there (same id) is left as it is.
macro_rules! insert_message_sql {
    ($on_conflict:literal) => {
        concat!(
            "INSERT INTO messages (id, chat_id, seq, author_id, content, client_msg_id, created_at, ",
            "change, target_id, reply_to_id, reply_quote, mentions, mentions_everyone, deleted_at, ",
            "position, notice) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ",
            $on_conflict
        )
    };
}

/// Stores the entry the log appended at `position`, and applies it if it is a change (the
/// append checked it may be placed).
pub(crate) fn insert_message(conn: &Connection, m: &Message, position: i64) -> StoreResult<()> {
    let added = insert(
        conn,
        m,
        Some(position),
        insert_message_sql!("ON CONFLICT (id) DO NOTHING"),
    )?;
    if added > 0 {
        crate::changes::apply_stored(conn, m)?;
    }
    Ok(())
}

/// A JSON column's value, NULL for nothing.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Inserts an entry row with `sql` (one of the `insert_message_sql!` statements); how many
/// rows it added.
fn insert(
    conn: &Connection,
    m: &Message,
    position: Option<i64>,
    sql: &'static str,
) -> StoreResult<usize> {
    exec(
        conn,
        sql,
        rusqlite::params![
            m.id.to_string(),
            m.chat_id.to_string(),
            m.seq,
            m.author.id.to_string(),
            m.content.as_str(),
            m.client_msg_id.as_ref().map(|c| c.as_str()),
            ms(m.created_at),
            m.change.as_ref().map(to_json),
            m.change.as_ref().map(|c| c.target().to_string()),
            m.reply_to.as_ref().map(|q| q.id.to_string()),
            m.reply_to.as_ref().map(to_json),
            (!m.mentions.users.is_empty()).then(|| to_json(&m.mentions.users)),
            m.mentions.everyone,
            m.state.deleted_at.map(ms),
            position,
            m.notice.as_ref().map(to_json),
        ],
    )
    .map_err(unavailable)
}

/// Stores an entry unless its id is stored, applying a change the first time; false when its
/// position holds another entry.
fn upsert_one(conn: &Connection, m: &Message) -> StoreResult<bool> {
    let added = insert(conn, m, None, insert_message_sql!("ON CONFLICT DO NOTHING"))?;
    if added > 0 {
        crate::changes::apply_stored(conn, m)?;
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

/// Messages (no changes), newest first, below `seq`.
const BEFORE: &str = concat!(
    message_select!(),
    "AND m.seq < ? AND m.change IS NULL ORDER BY m.seq DESC LIMIT ?"
);
/// Messages (no changes), oldest first, above `seq`.
const AFTER: &str = concat!(
    message_select!(),
    "AND m.seq > ? AND m.change IS NULL ORDER BY m.seq LIMIT ?"
);
/// Every entry, oldest first, above `seq` (resume).
const ENTRIES_AFTER: &str = concat!(message_select!(), "AND m.seq > ? ORDER BY m.seq LIMIT ?");

/// `sql` is [`BEFORE`], [`AFTER`] or [`ENTRIES_AFTER`]: whole statements, so a page builds no
/// SQL string.
fn messages_where(
    conn: &Connection,
    sql: &str,
    chat: &str,
    seq: i64,
    limit: u32,
) -> StoreResult<Vec<Message>> {
    rows(conn, sql, (chat, seq, i64::from(limit)), message_from)
}

/// Up to `limit` entries of `chat` after `seq`, oldest first (resume reads these: the history
/// is written in the append's transaction, so it holds every entry the log does).
pub(crate) fn after(
    conn: &Connection,
    chat: &str,
    seq: i64,
    limit: u32,
) -> StoreResult<Vec<Message>> {
    messages_where(conn, ENTRIES_AFTER, chat, seq, limit)
}

/// One entry of the chat by id, as it stands.
pub(crate) fn by_id(conn: &Connection, chat: &str, id: MessageId) -> StoreResult<Option<Message>> {
    const BY_ID: &str = concat!(message_select!(), "AND m.id = ?");
    row(conn, BY_ID, (chat, id.to_string()), message_from)
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
        self.read(move |conn| after(conn, &chat.to_string(), after_seq, limit))
            .await
    }

    async fn message(&self, chat: ChatId, id: MessageId) -> StoreResult<Option<Message>> {
        self.read(move |conn| by_id(conn, &chat.to_string(), id))
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
                let (unread, mentions) = row(
                    conn,
                    "SELECT COUNT(*) AS n, \
                     COALESCE(SUM(mentions_everyone OR instr(mentions, ?3) > 0), 0) AS mentioned \
                     FROM messages \
                     WHERE chat_id = ?1 AND seq > ?2 AND author_id != ?3 AND change IS NULL",
                    (&chat, marker, &user),
                    |r| Ok((col::<i64>(r, "n")?, col::<i64>(r, "mentioned")?)),
                )?
                .unwrap_or((0, 0));
                out.push(ChatActivity {
                    last_message: last,
                    unread_count: u64::try_from(unread).unwrap_or(0),
                    mention_count: u64::try_from(mentions).unwrap_or(0),
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
