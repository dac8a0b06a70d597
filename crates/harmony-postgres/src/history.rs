//! The message store on PostgreSQL. Rows keep the author's id only; names are re-hydrated on read
//! through the profile source (the state store, or a cache in front of it), so a renamed user
//! shows the new name everywhere and the store never needs rewriting.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use harmony_core::model::{Author, Message};
use harmony_core::ports::{
    ChatActivity, HistoryPage, HistoryStore, PageCursor, StoreError, StoreResult, UserStore,
};
use harmony_core::values::{ClientMsgId, MessageContent};
use harmony_core::{ChatId, MessageId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::{corrupt, migrate, unavailable};

/// The message store.
#[derive(Clone)]
pub struct HistoryDb {
    pool: PgPool,
    profiles: Arc<dyn UserStore>,
}

/// A stored row before its author is re-hydrated.
struct StoredRow {
    id: MessageId,
    chat_id: ChatId,
    seq: i64,
    author_id: UserId,
    content: String,
    client_msg_id: Option<String>,
    created_at: time::OffsetDateTime,
}

const COLUMNS: &str = "id, chat_id, seq, author_id, content, client_msg_id, created_at";

fn row_from(row: &PgRow) -> StoreResult<StoredRow> {
    let id: String = row.try_get("id").map_err(unavailable)?;
    Ok(StoredRow {
        id: id.parse().map_err(|_| corrupt("message id", &id))?,
        chat_id: ChatId(row.try_get("chat_id").map_err(unavailable)?),
        seq: row.try_get("seq").map_err(unavailable)?,
        author_id: UserId(row.try_get("author_id").map_err(unavailable)?),
        content: row.try_get("content").map_err(unavailable)?,
        client_msg_id: row.try_get("client_msg_id").map_err(unavailable)?,
        created_at: row.try_get("created_at").map_err(unavailable)?,
    })
}

impl HistoryDb {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        profiles: Arc<dyn UserStore>,
    ) -> StoreResult<Self> {
        let pool = crate::connect(url, max_connections).await?;
        migrate::run(&pool, "history", migrate::HISTORY).await?;
        Ok(Self { pool, profiles })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn hydrate(&self, rows: Vec<StoredRow>) -> StoreResult<Vec<Message>> {
        let mut authors: HashMap<UserId, Author> = HashMap::new();
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let author = match authors.get(&r.author_id) {
                Some(a) => a.clone(),
                None => {
                    let user = self.profiles.user(r.author_id).await?.ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "message {} names unknown author {}",
                            r.id, r.author_id
                        ))
                    })?;
                    let author = Author::from(&user);
                    authors.insert(r.author_id, author.clone());
                    author
                }
            };
            out.push(Message {
                id: r.id,
                chat_id: r.chat_id,
                seq: r.seq,
                author,
                content: MessageContent::from_trusted(r.content),
                client_msg_id: r.client_msg_id.map(ClientMsgId::from_trusted),
                created_at: r.created_at,
            });
        }
        Ok(out)
    }

    async fn select(
        &self,
        clause: &str,
        chat: ChatId,
        seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM messages WHERE chat_id = $1 {clause}"
        ))
        .bind(chat.0)
        .bind(seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let rows = rows.iter().map(row_from).collect::<StoreResult<Vec<_>>>()?;
        self.hydrate(rows).await
    }

    async fn seq_of(&self, chat: ChatId, id: MessageId) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT seq FROM messages WHERE id = $1 AND chat_id = $2")
            .bind(id.to_string())
            .bind(chat.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }
}

#[async_trait]
impl HistoryStore for HistoryDb {
    async fn upsert_messages(&self, messages: &[Message]) -> StoreResult<Vec<MessageId>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut query = sqlx::QueryBuilder::new(format!("INSERT INTO messages ({COLUMNS}) "));
        query.push_values(messages, |mut row, m| {
            row.push_bind(m.id.to_string())
                .push_bind(m.chat_id.0)
                .push_bind(m.seq)
                .push_bind(m.author.id.0)
                .push_bind(m.content.as_str().to_owned())
                .push_bind(m.client_msg_id.as_ref().map(|c| c.as_str().to_owned()))
                .push_bind(m.created_at);
        });
        // Any conflict: the id (a replay) or the position (told apart below).
        query.push(" ON CONFLICT DO NOTHING RETURNING id");
        let inserted: Vec<String> = query
            .build_query_scalar()
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        if inserted.len() == messages.len() {
            return Ok(Vec::new());
        }
        let skipped: Vec<String> = messages
            .iter()
            .map(|m| m.id.to_string())
            .filter(|id| !inserted.contains(id))
            .collect();
        let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM messages WHERE id = ANY($1)")
            .bind(&skipped)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(messages
            .iter()
            .filter(|m| {
                let id = m.id.to_string();
                skipped.contains(&id) && !stored.contains(&id)
            })
            .map(|m| m.id)
            .collect())
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
                self.select(
                    "AND seq < $2 ORDER BY seq DESC LIMIT $3",
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
                (
                    self.select("AND seq < $2 ORDER BY seq DESC LIMIT $3", chat, seq, fetch)
                        .await?,
                    false,
                )
            }
            PageCursor::After(id) => {
                let Some(seq) = self.seq_of(chat, id).await? else {
                    return Ok(None);
                };
                (
                    self.select("AND seq > $2 ORDER BY seq LIMIT $3", chat, seq, fetch)
                        .await?,
                    true,
                )
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
        self.select("AND seq > $2 ORDER BY seq LIMIT $3", chat, after_seq, limit)
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
                .select(
                    "AND seq < $2 ORDER BY seq DESC LIMIT $3",
                    *chat,
                    i64::MAX,
                    1,
                )
                .await?
                .pop();
            let unread: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM messages WHERE chat_id = $1 AND seq > $2 AND author_id <> $3",
            )
            .bind(chat.0)
            .bind(marker)
            .bind(user.0)
            .fetch_one(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM processed_events WHERE event_id = $1")
                .bind(event)
                .fetch_optional(&mut *tx)
                .await
                .map_err(unavailable)?;
        if done.is_some() {
            return Ok(0);
        }
        let deleted = sqlx::query(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE chat_id = $1 LIMIT $2)",
        )
        .bind(chat.0)
        .bind(i64::from(batch))
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
        if deleted == 0 {
            sqlx::query(
                "INSERT INTO processed_events (event_id) VALUES ($1) ON CONFLICT DO NOTHING",
            )
            .bind(event)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(deleted)
    }
}
