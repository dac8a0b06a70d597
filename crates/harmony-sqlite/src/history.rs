//! The message store: history pages, resume reads, activity for chat lists, and purges.
//! Rows hold the author's id only; names are joined in on read, so they are always current.

use async_trait::async_trait;
use harmony_core::model::{Author, Message};
use harmony_core::ports::{ChatActivity, HistoryPage, HistoryStore, PageCursor, StoreResult};
use harmony_core::values::{ClientMsgId, MessageContent};
use harmony_core::{ChatId, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::users::user_from;
use crate::{from_ms, ms, parse, unavailable, Database};

const MESSAGE_SELECT: &str = "SELECT m.id, m.chat_id, m.seq, m.content, m.client_msg_id, \
    m.created_at, u.id AS u_id, u.username AS u_username, u.display_name AS u_display_name, \
    u.created_at AS u_created_at FROM messages m JOIN users u ON u.id = m.author_id";

fn message_from(row: &SqliteRow) -> StoreResult<Message> {
    let id: String = row.try_get("id").map_err(unavailable)?;
    let chat: String = row.try_get("chat_id").map_err(unavailable)?;
    let author = user_from(row, "u_")?;
    let client_msg_id: Option<String> = row.try_get("client_msg_id").map_err(unavailable)?;
    Ok(Message {
        id: parse("message id", &id)?,
        chat_id: parse("chat id", &chat)?,
        seq: row.try_get("seq").map_err(unavailable)?,
        author: Author::from(&author),
        content: MessageContent::from_trusted(row.try_get("content").map_err(unavailable)?),
        client_msg_id: client_msg_id.map(ClientMsgId::from_trusted),
        created_at: from_ms(row.try_get("created_at").map_err(unavailable)?)?,
    })
}

impl Database {
    async fn seq_of(&self, chat: ChatId, id: harmony_core::MessageId) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT seq FROM messages WHERE id = ? AND chat_id = ?")
            .bind(id.to_string())
            .bind(chat.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)
    }

    async fn messages_where(
        &self,
        clause: &str,
        chat: ChatId,
        seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let rows = sqlx::query(&format!("{MESSAGE_SELECT} WHERE m.chat_id = ? {clause}"))
            .bind(chat.to_string())
            .bind(seq)
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)?;
        rows.iter().map(message_from).collect()
    }
}

#[async_trait]
impl HistoryStore for Database {
    async fn upsert_messages(&self, messages: &[Message]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for m in messages {
            sqlx::query(
                "INSERT INTO messages (id, chat_id, seq, author_id, content, client_msg_id, \
                 created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            )
            .bind(m.id.to_string())
            .bind(m.chat_id.to_string())
            .bind(m.seq)
            .bind(m.author.id.to_string())
            .bind(m.content.as_str())
            .bind(m.client_msg_id.as_ref().map(|c| c.as_str()))
            .bind(ms(m.created_at))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    async fn page(
        &self,
        chat: ChatId,
        cursor: PageCursor,
        limit: u32,
    ) -> StoreResult<Option<HistoryPage>> {
        let fetch = limit + 1;
        let (messages, ascending) = match cursor {
            PageCursor::Latest => (
                self.messages_where(
                    "AND m.seq < ? ORDER BY m.seq DESC LIMIT ?",
                    chat,
                    i64::MAX,
                    fetch,
                )
                .await?,
                false,
            ),
            PageCursor::Before(id) => {
                let Some(seq) = self.seq_of(chat, id).await? else {
                    return Ok(None);
                };
                let page = self
                    .messages_where(
                        "AND m.seq < ? ORDER BY m.seq DESC LIMIT ?",
                        chat,
                        seq,
                        fetch,
                    )
                    .await?;
                (page, false)
            }
            PageCursor::After(id) => {
                let Some(seq) = self.seq_of(chat, id).await? else {
                    return Ok(None);
                };
                let page = self
                    .messages_where("AND m.seq > ? ORDER BY m.seq LIMIT ?", chat, seq, fetch)
                    .await?;
                (page, true)
            }
        };
        Ok(Some(HistoryPage::from_fetch(messages, limit, ascending)))
    }

    async fn messages_after_seq(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        self.messages_where(
            "AND m.seq > ? ORDER BY m.seq LIMIT ?",
            chat,
            after_seq,
            limit,
        )
        .await
    }

    async fn activity(
        &self,
        user: UserId,
        chats: &[(ChatId, i64)],
    ) -> StoreResult<Vec<ChatActivity>> {
        let mut out = Vec::with_capacity(chats.len());
        for (chat, marker) in chats {
            let last = self
                .messages_where(
                    "AND m.seq < ? ORDER BY m.seq DESC LIMIT ?",
                    *chat,
                    i64::MAX,
                    1,
                )
                .await?
                .pop();
            let unread: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM messages WHERE chat_id = ? AND seq > ? AND author_id != ?",
            )
            .bind(chat.to_string())
            .bind(marker)
            .bind(user.to_string())
            .fetch_one(&self.reader)
            .await
            .map_err(unavailable)?;
            out.push(ChatActivity {
                last_message: last,
                unread_count: u64::try_from(unread).unwrap_or(0),
            });
        }
        Ok(out)
    }

    async fn purge_chat(&self, chat: ChatId, batch: u32, event: uuid::Uuid) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM processed_events WHERE event_id = ?")
                .bind(event.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
        if done.is_some() {
            return Ok(0);
        }
        let deleted = sqlx::query(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE chat_id = ? LIMIT ?)",
        )
        .bind(chat.to_string())
        .bind(i64::from(batch))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if deleted == 0 {
            sqlx::query("INSERT INTO processed_events (event_id, processed_at) VALUES (?, ?)")
                .bind(event.to_string())
                .bind(ms(harmony_core::now()))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(deleted)
    }
}
