//! The embedded message log: an append-only table ordered by `position`, with each chat's `seq`
//! assigned in the append transaction (so a chat's seqs are 1, 2, 3, ... with no holes). Appends
//! are group-committed: one transaction and one fsync for every append waiting at that moment.
//! The recent window for resume is the log itself: nothing is ever missing from it.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use harmony_core::model::{Message, NewMessage};
use harmony_core::ports::{
    AppendOutcome, LogConsumer, LogDelivery, LogPosition, MessageLog, RecentMessages, RecentSlice,
    StoreError, StoreResult,
};
use harmony_core::ChatId;
use harmony_protocol::record::MessageRecordV1;
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::{unavailable, Database};

fn message_from(row: &SqliteRow) -> StoreResult<Message> {
    let record: Vec<u8> = row.try_get("record").map_err(unavailable)?;
    let seq: i64 = row.try_get("seq").map_err(unavailable)?;
    MessageRecordV1::decode(&record)
        .and_then(MessageRecordV1::into_message)
        .map(|m| m.committed(seq))
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Appends waiting for the group commit.
pub(crate) struct AppendJob {
    message: NewMessage,
    reply: oneshot::Sender<StoreResult<AppendOutcome>>,
}

/// Most appends committed by one transaction (one fsync).
const MAX_GROUP: usize = 256;

/// Starts the group-commit writer: appends that arrive while a transaction is being committed
/// are committed together by the next one, so N concurrent senders pay for one fsync, not N.
/// Each caller is answered only after the transaction holding its message committed. The task
/// ends when the last `Database` clone (holding the sender) is dropped.
pub(crate) fn spawn_appender(
    db_writer: SqlitePool,
    appended: Arc<Notify>,
) -> mpsc::Sender<AppendJob> {
    let (sender, mut jobs) = mpsc::channel::<AppendJob>(4 * MAX_GROUP);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_GROUP);
        while jobs.recv_many(&mut batch, MAX_GROUP).await > 0 {
            match append_group(&db_writer, &batch).await {
                Ok(outcomes) => {
                    appended.notify_waiters();
                    for (job, outcome) in batch.drain(..).zip(outcomes) {
                        let _ = job.reply.send(Ok(outcome));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, appends = batch.len(), "group commit failed; nothing of it was written");
                    for job in batch.drain(..) {
                        let _ = job.reply.send(Err(StoreError::Unavailable(e.to_string())));
                    }
                }
            }
        }
    });
    sender
}

/// One transaction for the whole group; within it each append sees the ones before it, so
/// seqs and `client_msg_id` duplicates are resolved exactly as if they came one by one.
async fn append_group(writer: &SqlitePool, jobs: &[AppendJob]) -> StoreResult<Vec<AppendOutcome>> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(unavailable)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        outcomes.push(append_one(&mut tx, &job.message).await?);
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(outcomes)
}

async fn append_one(
    tx: &mut Transaction<'static, Sqlite>,
    message: &NewMessage,
) -> StoreResult<AppendOutcome> {
    let chat = message.chat_id.to_string();
    let author = message.author.id.to_string();
    if let Some(key) = &message.client_msg_id {
        let existing = sqlx::query(
            "SELECT seq, record FROM message_log \
             WHERE chat_id = ? AND author_id = ? AND client_msg_id = ?",
        )
        .bind(&chat)
        .bind(&author)
        .bind(key.as_str())
        .fetch_optional(&mut **tx)
        .await
        .map_err(unavailable)?;
        if let Some(row) = existing {
            return Ok(AppendOutcome::Duplicate(message_from(&row)?));
        }
    }
    let prev: Option<i64> = sqlx::query_scalar("SELECT last_seq FROM log_heads WHERE chat_id = ?")
        .bind(&chat)
        .fetch_optional(&mut **tx)
        .await
        .map_err(unavailable)?;
    let seq = prev.unwrap_or(0) + 1;
    sqlx::query(
        "INSERT INTO message_log (chat_id, seq, prev_seq, author_id, client_msg_id, record) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&chat)
    .bind(seq)
    .bind(prev)
    .bind(&author)
    .bind(message.client_msg_id.as_ref().map(|c| c.as_str()))
    .bind(MessageRecordV1::from(message).encode())
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    sqlx::query(
        "INSERT INTO log_heads (chat_id, last_seq) VALUES (?, ?) \
         ON CONFLICT (chat_id) DO UPDATE SET last_seq = excluded.last_seq",
    )
    .bind(&chat)
    .bind(seq)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(AppendOutcome::Created(message.clone().committed(seq)))
}

#[async_trait]
impl MessageLog for Database {
    async fn append(&self, message: NewMessage) -> StoreResult<AppendOutcome> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("the log writer stopped".into());
        self.appender
            .send(AppendJob { message, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

#[async_trait]
impl RecentMessages for Database {
    async fn recent_after(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<RecentSlice> {
        let rows = sqlx::query(
            "SELECT seq, record FROM message_log WHERE chat_id = ? AND seq > ? \
             ORDER BY seq LIMIT ?",
        )
        .bind(chat.to_string())
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        Ok(RecentSlice {
            messages: rows.iter().map(message_from).collect::<StoreResult<_>>()?,
            complete: true,
        })
    }

    async fn last_seqs(&self, chats: &[ChatId]) -> StoreResult<HashMap<ChatId, i64>> {
        let mut out = HashMap::with_capacity(chats.len());
        // SQLite allows 32k bound parameters; stay far below.
        for batch in chats.chunks(500) {
            let mut query =
                QueryBuilder::new("SELECT chat_id, last_seq FROM log_heads WHERE chat_id IN (");
            let mut list = query.separated(", ");
            for chat in batch {
                list.push_bind(chat.to_string());
            }
            query.push(")");
            let rows = query
                .build()
                .fetch_all(&self.reader)
                .await
                .map_err(unavailable)?;
            for row in rows {
                let chat: String = row.try_get("chat_id").map_err(unavailable)?;
                let seq: i64 = row.try_get("last_seq").map_err(unavailable)?;
                out.insert(crate::parse("chat id", &chat)?, seq);
            }
        }
        Ok(out)
    }
}

impl Database {
    /// A cursor on the log for the named consumer group, after its committed position.
    pub async fn log_cursor(&self, consumer: &str) -> StoreResult<LogCursor> {
        let position = self.committed_position(consumer).await?;
        Ok(LogCursor {
            db: self.clone(),
            consumer: consumer.to_owned(),
            position,
        })
    }

    /// The newest position in the log (0 when empty), and the position a consumer committed:
    /// their difference is the consumer's lag.
    pub async fn log_lag(&self, consumer: &str) -> StoreResult<i64> {
        let head: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM message_log")
            .fetch_one(&self.reader)
            .await
            .map_err(unavailable)?;
        let committed = self.committed_position(consumer).await?;
        Ok((head.unwrap_or(0) - committed).max(0))
    }
}

/// One consumer group's position in the embedded log (the log has one partition: 0).
pub struct LogCursor {
    db: Database,
    consumer: String,
    position: i64,
}

impl LogCursor {
    async fn read(&mut self, max: usize) -> StoreResult<Vec<LogDelivery>> {
        let rows = sqlx::query(
            "SELECT position, seq, prev_seq, record FROM message_log \
             WHERE position > ? ORDER BY position LIMIT ?",
        )
        .bind(self.position)
        .bind(max as i64)
        .fetch_all(&self.db.reader)
        .await
        .map_err(unavailable)?;
        let mut out = Vec::with_capacity(rows.len());
        // The cursor moves only once the whole batch was read: an error mid-way re-reads it.
        let mut last = self.position;
        for row in &rows {
            let position: i64 = row.try_get("position").map_err(unavailable)?;
            last = position;
            match message_from(row) {
                Ok(message) => out.push(LogDelivery {
                    position: LogPosition {
                        partition: 0,
                        offset: position,
                    },
                    prev_seq: row.try_get("prev_seq").map_err(unavailable)?,
                    message,
                }),
                // Only this process writes the log: a bad record is a bug, reported loudly.
                Err(e) => tracing::error!(position, error = %e, "skipping undecodable log record"),
            }
        }
        self.position = last;
        Ok(out)
    }
}

#[async_trait]
impl LogConsumer for LogCursor {
    async fn poll(&mut self, max: usize, wait: Duration) -> StoreResult<Vec<LogDelivery>> {
        let wake = self.db.log_appended.clone();
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut out = self.read(max).await?;
        if out.is_empty() && tokio::time::timeout(wait, notified).await.is_ok() {
            out = self.read(max).await?;
        }
        Ok(out)
    }

    async fn commit(&mut self, through: &[LogPosition]) -> StoreResult<()> {
        if let Some(last) = through.iter().map(|p| p.offset).max() {
            self.db.commit_position(&self.consumer, last).await?;
        }
        Ok(())
    }
}
