//! The embedded message log: an append-only table ordered by `position`, with each chat's `seq`
//! assigned in the append transaction (so a chat's seqs are 1, 2, 3, ... with no holes). Appends
//! are group-committed: one transaction and one fsync for every append waiting at that moment.
//! An append also stores the message in history (the `messages` table) in its transaction, so
//! the single node has no sink, a message is in history as soon as its send is answered, and
//! resume reads history (clustered by chat and seq): nothing is ever missing from it. The log
//! itself is a pure append with no secondary index, read by position only; a retried send is
//! found by its key in history.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use harmony_core::changes::Change;
use harmony_core::model::{Message, NewMessage};
use harmony_core::ports::{
    AppendOutcome, LogConsumer, LogDelivery, LogEntry, LogPosition, MessageLog, RecentMessages,
    RecentSlice, StoreError, StoreResult,
};
use harmony_core::ChatId;
use harmony_protocol::record::MessageRecordV1;
use rusqlite::{Connection, Row};

use crate::conn::Wake;
use crate::{col, exec, row, rows, unavailable, Database};

fn message_from(row: &Row<'_>) -> StoreResult<Message> {
    let record: Vec<u8> = col(row, "record")?;
    decode(&record, col(row, "seq")?)
}

fn decode(record: &[u8], seq: i64) -> StoreResult<Message> {
    MessageRecordV1::decode(record)
        .and_then(MessageRecordV1::into_message)
        .map(|m| m.committed(seq))
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Runs in the writer's group transaction; within it each append sees the ones before it, so
/// seqs and `client_msg_id` duplicates are resolved exactly as if they came one by one. A new
/// entry is also returned as consumers will read it, for the in-memory tail.
fn append_one(
    conn: &Connection,
    message: &NewMessage,
) -> StoreResult<(AppendOutcome, Option<LogDelivery>)> {
    let chat = message.chat_id.to_string();
    let author = message.author.id.to_string();
    if let Some(key) = &message.client_msg_id {
        let existing = crate::history::by_client_key(conn, &chat, &author, key.as_str())?;
        if let Some(message) = existing {
            return Ok((AppendOutcome::Duplicate(message), None));
        }
    }
    if message.change.is_some() {
        // What the order decides (a change after a delete, a reaction already there) is
        // decided here, in the append's transaction.
        if let Err(refusal) = crate::changes::check(conn, &message.clone().committed(0))? {
            return Ok((AppendOutcome::Refused(refusal), None));
        }
    }
    let prev: Option<i64> = row(
        conn,
        "SELECT last_seq FROM log_heads WHERE chat_id = ?",
        [&chat],
        |r| col(r, "last_seq"),
    )?;
    let seq = prev.unwrap_or(0) + 1;
    let record = MessageRecordV1::from(message).encode();
    exec(
        conn,
        "INSERT INTO message_log (chat_id, seq, prev_seq, author_id, client_msg_id, record) \
         VALUES (?, ?, ?, ?, ?, ?)",
        (
            &chat,
            seq,
            prev,
            &author,
            message.client_msg_id.as_ref().map(|c| c.as_str()),
            &record,
        ),
    )
    .map_err(unavailable)?;
    let position = conn.last_insert_rowid();
    exec(
        conn,
        "INSERT INTO log_heads (chat_id, last_seq) VALUES (?, ?) \
         ON CONFLICT (chat_id) DO UPDATE SET last_seq = excluded.last_seq",
        (&chat, seq),
    )
    .map_err(unavailable)?;
    let committed = message.clone().committed(seq);
    // History in the same transaction: readable the moment the send is answered, and the
    // single node needs no sink.
    crate::history::insert_message(conn, &committed, position)?;
    // Exactly what a read of the row gives (the record is what the row holds).
    let entry = LogDelivery {
        position: LogPosition {
            partition: 0,
            offset: position,
        },
        entry: LogEntry::Placed(decode(&record, seq)?),
    };
    Ok((AppendOutcome::Created(committed), Some(entry)))
}

/// Appends are group-committed by the writer: every append waiting at that moment shares one
/// transaction and one fsync, and each caller is answered once its transaction committed.
#[async_trait]
impl MessageLog for Database {
    async fn append(&self, message: NewMessage) -> StoreResult<AppendOutcome> {
        let wakes = self.wakes.clone();
        self.write(Wake::Log, move |conn| {
            let (outcome, entry) = append_one(conn, &message)?;
            if let (Some(entry), Ok(mut tail)) = (entry, wakes.tail.lock()) {
                if let Some(Change::Delete { target }) = &message.change {
                    tail.scrub(*target, message.created_at);
                    wakes
                        .scrub_wal
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
                tail.push(entry);
            }
            Ok(outcome)
        })
        .await
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
        let messages = self
            .read(move |conn| crate::history::after(conn, &chat.to_string(), after_seq, limit))
            .await?;
        Ok(RecentSlice {
            messages,
            complete: true,
        })
    }

    async fn last_seqs(&self, chats: &[ChatId]) -> StoreResult<HashMap<ChatId, i64>> {
        let chats: Vec<String> = chats.iter().map(ChatId::to_string).collect();
        self.read(move |conn| {
            let mut out = HashMap::with_capacity(chats.len());
            // SQLite allows 32k bound parameters; stay far below.
            for batch in chats.chunks(500) {
                let marks = vec!["?"; batch.len()].join(", ");
                let sql =
                    format!("SELECT chat_id, last_seq FROM log_heads WHERE chat_id IN ({marks})");
                let heads = rows(conn, &sql, rusqlite::params_from_iter(batch), |r| {
                    Ok((col::<String>(r, "chat_id")?, col::<i64>(r, "last_seq")?))
                })?;
                for (chat, seq) in heads {
                    out.insert(crate::parse("chat id", &chat)?, seq);
                }
            }
            Ok(out)
        })
        .await
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
            unsaved: None,
            saved_at: Instant::now(),
        })
    }

    /// The newest position in the log (0 when empty), and the position a consumer committed:
    /// their difference is the consumer's lag.
    pub async fn log_lag(&self, consumer: &str) -> StoreResult<i64> {
        let head: Option<i64> = self
            .read(|conn| {
                conn.query_row("SELECT MAX(position) FROM message_log", [], |r| r.get(0))
                    .map_err(unavailable)
            })
            .await?;
        let committed = self.committed_position(consumer).await?;
        Ok((head.unwrap_or(0) - committed).max(0))
    }
}

/// How often a busy cursor writes its committed position. Between writes the position is
/// kept in memory; a crash replays at most this much of the log, and every consumer's effects
/// are idempotent. An idle cursor writes what it holds before it waits.
const SAVE_EVERY: Duration = Duration::from_millis(200);

/// One consumer group's position in the embedded log (the log has one partition: 0).
pub struct LogCursor {
    db: Database,
    consumer: String,
    position: i64,
    /// A committed position not yet written.
    unsaved: Option<i64>,
    saved_at: Instant,
}

impl Drop for LogCursor {
    /// A cursor dropped while holding an unwritten position queues its write, so a graceful
    /// stop (workers stop, then [`Database::close`]) loses nothing.
    fn drop(&mut self) {
        if let Some(position) = self.unsaved.take() {
            self.db.commit_position_detached(&self.consumer, position);
        }
    }
}

impl LogCursor {
    /// Writes the committed position held in memory, if any.
    async fn save(&mut self) -> StoreResult<()> {
        if let Some(position) = self.unsaved {
            self.db.commit_position(&self.consumer, position).await?;
            self.unsaved = None;
            self.saved_at = Instant::now();
        }
        Ok(())
    }

    async fn read(&mut self, max: usize) -> StoreResult<Vec<LogDelivery>> {
        let after = self.position;
        let from_tail = match self.db.wakes.tail.lock() {
            Ok(tail) => tail.after(after, max),
            Err(_) => None,
        };
        if let Some(batch) = from_tail {
            if let Some(last) = batch.last() {
                self.position = last.position.offset;
            }
            return Ok(batch);
        }
        let (batch, last) = self
            .db
            .read(move |conn| {
                let mut out = Vec::new();
                let mut last = after;
                let found = rows(
                    conn,
                    "SELECT position, seq, record FROM message_log \
                     WHERE position > ? ORDER BY position LIMIT ?",
                    (after, max as i64),
                    |r| Ok((col::<i64>(r, "position")?, message_from(r))),
                )?;
                for (position, message) in found {
                    last = position;
                    match message {
                        Ok(message) => out.push(LogDelivery {
                            position: LogPosition {
                                partition: 0,
                                offset: position,
                            },
                            entry: LogEntry::Placed(message),
                        }),
                        // Only this process writes the log: a bad record is a bug, reported
                        // loudly.
                        Err(e) => {
                            tracing::error!(position, error = %e, "skipping undecodable log record")
                        }
                    }
                }
                Ok((out, last))
            })
            .await?;
        // The cursor moves only once the whole batch was read: an error mid-way re-reads it.
        self.position = last;
        Ok(batch)
    }
}

#[async_trait]
impl LogConsumer for LogCursor {
    async fn poll(&mut self, max: usize, wait: Duration) -> StoreResult<Vec<LogDelivery>> {
        let wakes = self.db.wakes.clone();
        let wake = &wakes.log;
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut out = self.read(max).await?;
        if out.is_empty() {
            self.save().await?;
            if tokio::time::timeout(wait, notified).await.is_ok() {
                out = self.read(max).await?;
            }
        }
        Ok(out)
    }

    async fn commit(&mut self, through: &[LogPosition]) -> StoreResult<()> {
        if let Some(last) = through.iter().map(|p| p.offset).max() {
            self.unsaved = Some(self.unsaved.map_or(last, |u| u.max(last)));
            if self.saved_at.elapsed() >= SAVE_EVERY {
                self.save().await?;
            }
        }
        Ok(())
    }
}
