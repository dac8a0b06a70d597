//! The message store on PostgreSQL. Rows keep the author's id only; names are re-hydrated on read
//! through the profile source (the state store, or a cache in front of it), so a renamed user
//! shows the new name everywhere and the store never needs rewriting. A row is an entry of the
//! chat's order: a message in its current state, or a change to one (decision record 0004,
//! applied by `crate::changes`). Pages, chat lists and unread counts read messages only;
//! resume reads every entry.

use std::sync::Arc;

use async_trait::async_trait;
use harmony_core::authors::Authors;
use harmony_core::changes::MessageState;
use harmony_core::model::{excerpt, Author, Mentions, Message, Quote};
use harmony_core::ports::{
    ChatActivity, HistoryPage, HistoryStore, PageCursor, StoreResult, UserStore,
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

/// A stored row before its authors (its own, and its reply's original's) are re-hydrated.
struct StoredRow {
    message: Message,
    author_id: UserId,
    /// The reply's original as it reads now, when it is stored: its author, content, deletion.
    original: Option<(UserId, String, bool)>,
}

/// The columns written, in [`crate::changes::insert_entries`]'s order.
pub(crate) const COLUMNS: &str = "id, chat_id, seq, author_id, content, client_msg_id, \
    created_at, change, target_id, reply_to_id, reply_quote, mentions, mentions_everyone, \
    deleted_at, notice";

/// The columns read: the row's own, and its reply's original (`r`).
const SELECT: &str = "SELECT m.id, m.chat_id, m.seq, m.author_id, m.content, m.client_msg_id, \
    m.created_at, m.change, m.reply_quote, m.mentions, m.mentions_everyone, m.edited_at, \
    m.deleted_at, m.reactions, m.notice, r.author_id AS r_author, r.content AS r_content, \
    r.deleted_at AS r_deleted FROM messages m LEFT JOIN messages r ON r.id = m.reply_to_id";

/// A JSON text column, absent when NULL.
pub(crate) fn json<T: serde::de::DeserializeOwned>(
    row: &PgRow,
    name: &str,
) -> StoreResult<Option<T>> {
    let raw: Option<String> = row.try_get(name).map_err(unavailable)?;
    raw.map(|raw| serde_json::from_str(&raw).map_err(|_| corrupt(name, &raw)))
        .transpose()
}

fn row_from(row: &PgRow) -> StoreResult<StoredRow> {
    let id: String = row.try_get("id").map_err(unavailable)?;
    let author_id = UserId(row.try_get("author_id").map_err(unavailable)?);
    let r_author: Option<uuid::Uuid> = row.try_get("r_author").map_err(unavailable)?;
    let original = match r_author {
        Some(author) => {
            let deleted: Option<time::OffsetDateTime> =
                row.try_get("r_deleted").map_err(unavailable)?;
            let content: String = row.try_get("r_content").map_err(unavailable)?;
            Some((UserId(author), content, deleted.is_some()))
        }
        None => None,
    };
    let mentions: Option<Vec<uuid::Uuid>> = row.try_get("mentions").map_err(unavailable)?;
    let message = Message {
        id: id.parse().map_err(|_| corrupt("message id", &id))?,
        chat_id: ChatId(row.try_get("chat_id").map_err(unavailable)?),
        seq: row.try_get("seq").map_err(unavailable)?,
        // Re-hydrated by `hydrate`.
        author: Author {
            id: author_id,
            username: harmony_core::values::Username::from_trusted(String::new()),
            display_name: harmony_core::values::DisplayName::from_trusted(String::new()),
        },
        content: MessageContent::from_trusted(row.try_get("content").map_err(unavailable)?),
        client_msg_id: row
            .try_get::<Option<String>, _>("client_msg_id")
            .map_err(unavailable)?
            .map(ClientMsgId::from_trusted),
        created_at: row.try_get("created_at").map_err(unavailable)?,
        change: json(row, "change")?,
        reply_to: json(row, "reply_quote")?,
        mentions: Mentions {
            users: mentions
                .unwrap_or_default()
                .into_iter()
                .map(UserId)
                .collect(),
            everyone: row.try_get("mentions_everyone").map_err(unavailable)?,
        },
        state: MessageState {
            edited_at: row.try_get("edited_at").map_err(unavailable)?,
            deleted_at: row.try_get("deleted_at").map_err(unavailable)?,
            reactions: json(row, "reactions")?.unwrap_or_default(),
        },
        notice: json(row, "notice")?,
    };
    Ok(StoredRow {
        message,
        author_id,
        original,
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
        let mut authors = Authors::new(self.profiles.as_ref());
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut m = r.message;
            m.author = authors.get(r.author_id, m.id).await?;
            if let (Some(quote), Some((author, content, deleted))) = (&mut m.reply_to, r.original) {
                *quote = Quote {
                    author: authors.get(author, m.id).await?,
                    excerpt: excerpt(&content),
                    deleted,
                    ..quote.clone()
                };
            }
            out.push(m);
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
        let rows = sqlx::query(&format!("{SELECT} WHERE m.chat_id = $1 {clause}"))
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

/// Messages (no changes), newest first, below a seq.
const PAGE_BEFORE: &str = "AND m.seq < $2 AND m.change IS NULL ORDER BY m.seq DESC LIMIT $3";
/// Messages (no changes), oldest first, above a seq.
const PAGE_AFTER: &str = "AND m.seq > $2 AND m.change IS NULL ORDER BY m.seq LIMIT $3";

#[async_trait]
impl HistoryStore for HistoryDb {
    async fn upsert_messages(&self, messages: &[Message]) -> StoreResult<Vec<MessageId>> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let inserted = crate::changes::insert_entries(&mut tx, messages).await?;
        // An entry inserted now was never applied: apply the changes among them, in order, in
        // the same transaction (a replay inserts nothing, so applies nothing).
        for m in messages {
            if m.change.is_some() && inserted.contains(&m.id.to_string()) {
                crate::changes::apply_stored(&mut tx, m).await?;
            }
        }
        tx.commit().await.map_err(unavailable)?;
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
                self.select(PAGE_BEFORE, chat, i64::MAX, fetch).await?,
                false,
            ),
            PageCursor::Before(id) => {
                let Some(seq) = self.seq_of(chat, id).await? else {
                    return Ok(None);
                };
                (self.select(PAGE_BEFORE, chat, seq, fetch).await?, false)
            }
            PageCursor::After(id) => {
                let Some(seq) = self.seq_of(chat, id).await? else {
                    return Ok(None);
                };
                (self.select(PAGE_AFTER, chat, seq, fetch).await?, true)
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
        self.select(
            "AND m.seq > $2 ORDER BY m.seq LIMIT $3",
            chat,
            after_seq,
            limit,
        )
        .await
    }

    async fn message(&self, chat: ChatId, id: MessageId) -> StoreResult<Option<Message>> {
        let Some(seq) = self.seq_of(chat, id).await? else {
            return Ok(None);
        };
        let found = self.select("AND m.seq = $2 LIMIT $3", chat, seq, 1).await?;
        Ok(found.into_iter().next())
    }

    async fn activity(
        &self,
        user: UserId,
        chats: &[(ChatId, i64)],
    ) -> StoreResult<Vec<ChatActivity>> {
        let mut out = Vec::with_capacity(chats.len());
        for (chat, marker) in chats {
            let last = self.select(PAGE_BEFORE, *chat, i64::MAX, 1).await?.pop();
            let (unread, mentioned): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*), \
                 COUNT(*) FILTER (WHERE mentions_everyone OR $3 = ANY(mentions)) \
                 FROM messages WHERE chat_id = $1 AND seq > $2 AND author_id <> $3 \
                 AND change IS NULL",
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
                mention_count: u64::try_from(mentioned).unwrap_or(0),
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
