//! The cluster's per-chat order, in the state database (decision record 0002). The fan-out places
//! each record it consumes, in log order, in one transaction per batch: the chat's head row is
//! locked, moved by one per new record, and the record is kept with its seq. The row lock
//! serializes two placers of one chat (a rebalance, or a chat moved to another partition), and
//! the unique message id makes a replay find its first placement: a chat's seqs are 1, 2, 3, ...
//! with no hole and no repeat, whatever the log, its partitions or Redis went through.
//!
//! A transaction that places records notifies the api nodes waiting for them (`placements`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use harmony_core::changes::Change;
use harmony_core::model::{Message, NewMessage};
use harmony_core::ports::{
    Placement, Produce, RecentMessages, RecentSlice, Sequenced, Sequencer, StoreError, StoreResult,
};
use harmony_core::values::ClientMsgId;
use harmony_core::{ChatId, MessageId, UserId};
use harmony_protocol::record::MessageRecordV1;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
use tokio_util::sync::CancellationToken;

use crate::unavailable;

/// The sequencer on PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct PgSequencer {
    pool: PgPool,
    waiters: Arc<crate::placements::Waiters>,
}

fn record_of(message: &NewMessage) -> Vec<u8> {
    MessageRecordV1::from(message).encode()
}

fn message_from(record: &[u8], seq: i64) -> StoreResult<Message> {
    MessageRecordV1::decode(record)
        .and_then(MessageRecordV1::into_message)
        .map(|m| m.committed(seq))
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn placed_row(row: &PgRow) -> StoreResult<Message> {
    let seq: i64 = row.try_get("seq").map_err(unavailable)?;
    let record: Vec<u8> = row.try_get("record").map_err(unavailable)?;
    message_from(&record, seq)
}

type Key = (ChatId, UserId, String);

fn key_of(m: &NewMessage) -> Option<Key> {
    m.client_msg_id
        .as_ref()
        .map(|k| (m.chat_id, m.author.id, k.as_str().to_owned()))
}

/// Where each record of `batch` already stands, `None` where it is not placed. Each record is
/// decided by one statement (a keyed record by its key, any other by its id), so a placement
/// committing meanwhile is seen whole or not at all.
async fn lookup(
    conn: &mut PgConnection,
    batch: &[NewMessage],
) -> StoreResult<Vec<Option<Placement>>> {
    let ids: Vec<String> = batch
        .iter()
        .filter(|m| m.client_msg_id.is_none())
        .map(|m| m.id.to_string())
        .collect();
    let mut by_id = HashMap::new();
    if !ids.is_empty() {
        let rows = sqlx::query("SELECT id, seq FROM sequenced WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(&mut *conn)
            .await
            .map_err(unavailable)?;
        for r in &rows {
            let id: String = r.try_get("id").map_err(unavailable)?;
            by_id.insert(id, r.try_get::<i64, _>("seq").map_err(unavailable)?);
        }
    }
    let keys: Vec<Key> = batch.iter().filter_map(key_of).collect();
    let mut by_key = HashMap::new();
    if !keys.is_empty() {
        let chats: Vec<uuid::Uuid> = keys.iter().map(|k| k.0 .0).collect();
        let authors: Vec<uuid::Uuid> = keys.iter().map(|k| k.1 .0).collect();
        let names: Vec<&str> = keys.iter().map(|k| k.2.as_str()).collect();
        let rows = sqlx::query(
            "SELECT s.client_msg_id, s.seq, s.record FROM sequenced s \
             JOIN unnest($1::uuid[], $2::uuid[], $3::text[]) AS k (chat_id, author_id, key) \
             ON s.chat_id = k.chat_id AND s.author_id = k.author_id AND s.client_msg_id = k.key",
        )
        .bind(&chats)
        .bind(&authors)
        .bind(&names)
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
        for row in &rows {
            let message = placed_row(row)?;
            let key: String = row.try_get("client_msg_id").map_err(unavailable)?;
            by_key.insert((message.chat_id, message.author.id, key), message);
        }
    }
    let refused = crate::placing::refused(conn, batch).await?;
    Ok(batch
        .iter()
        .map(|m| match key_of(m) {
            _ if refused.contains_key(&m.id) => refused.get(&m.id).map(|r| Placement::Refused(*r)),
            None => by_id
                .get(&m.id.to_string())
                .map(|seq| Placement::Placed(m.clone().committed(*seq))),
            Some(key) => by_key.get(&key).map(|original| {
                if original.id == m.id {
                    Placement::Placed(original.clone())
                } else {
                    // Another id holds this key: this record can never be placed.
                    Placement::Duplicate {
                        original: original.clone(),
                    }
                }
            }),
        })
        .collect())
}

/// Locks the heads of the batch's chats (in one order, so two placers never deadlock), creating
/// missing ones at 0.
async fn lock_heads(
    tx: &mut Transaction<'_, Postgres>,
    batch: &[NewMessage],
) -> StoreResult<HashMap<ChatId, i64>> {
    let mut chats: Vec<uuid::Uuid> = batch.iter().map(|m| m.chat_id.0).collect();
    chats.sort_unstable();
    chats.dedup();
    sqlx::query(
        "INSERT INTO chat_heads (chat_id, head) SELECT unnest($1::uuid[]), 0 \
         ON CONFLICT (chat_id) DO NOTHING",
    )
    .bind(&chats)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    let rows = sqlx::query(
        "SELECT chat_id, head FROM chat_heads WHERE chat_id = ANY($1) ORDER BY chat_id FOR UPDATE",
    )
    .bind(&chats)
    .fetch_all(&mut **tx)
    .await
    .map_err(unavailable)?;
    heads_from(&rows)
}

fn heads_from(rows: &[PgRow]) -> StoreResult<HashMap<ChatId, i64>> {
    rows.iter()
        .map(|r| Ok((ChatId(r.try_get("chat_id")?), r.try_get("head")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(unavailable)
}

/// The rows a batch adds, column by column (one `unnest` insert).
#[derive(Default)]
struct NewRows {
    chats: Vec<uuid::Uuid>,
    seqs: Vec<i64>,
    ids: Vec<String>,
    authors: Vec<uuid::Uuid>,
    keys: Vec<Option<String>>,
    records: Vec<Vec<u8>>,
    kinds: Vec<Option<&'static str>>,
    targets: Vec<Option<String>>,
}

impl NewRows {
    fn push(&mut self, m: &NewMessage, seq: i64) {
        self.chats.push(m.chat_id.0);
        self.seqs.push(seq);
        self.ids.push(m.id.to_string());
        self.authors.push(m.author.id.0);
        self.keys
            .push(m.client_msg_id.as_ref().map(|k| k.as_str().to_owned()));
        self.records.push(record_of(m));
        self.kinds.push(m.change.as_ref().map(|c| c.kind()));
        self.targets
            .push(m.change.as_ref().map(|c| c.target().to_string()));
    }

    async fn insert(&self, tx: &mut Transaction<'_, Postgres>) -> StoreResult<()> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO sequenced (chat_id, seq, id, author_id, client_msg_id, record, kind, target_id) \
             SELECT * FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::uuid[], $5::text[], $6::bytea[], \
             $7::text[], $8::text[])",
        )
        .bind(&self.chats)
        .bind(&self.seqs)
        .bind(&self.ids)
        .bind(&self.authors)
        .bind(&self.keys)
        .bind(&self.records)
        .bind(&self.kinds)
        .bind(&self.targets)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
        Ok(())
    }
}

impl PgSequencer {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            waiters: Arc::default(),
        }
    }
    /// Waits for the batch's placements, at most `timeout` after `produce` (if any) returned.
    /// Every record is registered first, so no notification is missed: one telling a seq answers
    /// without a query. A lookup runs at the start when nothing is produced (the records may be
    /// placed already), when a notification named a record without a seq, and every poll
    /// interval (a lost notification costs latency only).
    async fn await_placed(
        &self,
        batch: &[NewMessage],
        produce: Option<Produce<'_>>,
        timeout: Duration,
    ) -> StoreResult<Vec<Option<Placement>>> {
        let woken = Arc::new(tokio::sync::Notify::new());
        let registered: Vec<_> = batch
            .iter()
            .map(|m| self.waiters.register(m.id.to_string(), woken.clone()))
            .collect();
        let mut look = match produce {
            Some(produce) => {
                produce.await?;
                false
            }
            None => true,
        };
        let mut out: Vec<Option<Placement>> = vec![None; batch.len()];
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            for ((slot, m), r) in out.iter_mut().zip(batch).zip(&registered) {
                if slot.is_none() {
                    if let Some(seq) = r.waiter.placed_at.get() {
                        *slot = Some(Placement::Placed(m.clone().committed(*seq)));
                    }
                }
            }
            let missing: Vec<usize> = (0..batch.len()).filter(|i| out[*i].is_none()).collect();
            if missing.is_empty() {
                return Ok(out);
            }
            look = look || missing.iter().any(|i| registered[*i].waiter.named());
            if look {
                let asked: Vec<NewMessage> = missing.iter().map(|i| batch[*i].clone()).collect();
                let found = self.placements(&asked).await?;
                for (i, placement) in missing.iter().zip(found) {
                    out[*i] = placement;
                }
                if out.iter().all(Option::is_some) {
                    return Ok(out);
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(out);
            }
            let nap = crate::placements::POLL_EVERY.min(deadline - now);
            look = tokio::time::timeout(nap, woken.notified()).await.is_err();
        }
    }

    /// Listens for placements until `shutdown`, waking the sends waiting for them. Run it on
    /// every api and sink node; without it they still complete, by polling.
    pub fn listen(&self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
        crate::placements::listen(self.pool.clone(), self.waiters.clone(), shutdown)
    }
}

#[async_trait]
impl Sequencer for PgSequencer {
    async fn sequence(&self, batch: &[NewMessage]) -> StoreResult<Sequenced> {
        if batch.is_empty() {
            return Ok(Sequenced::default());
        }
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let mut heads = lock_heads(&mut tx, batch).await?;
        // Read under the head locks: a placer of the same chats that committed first is seen.
        let found = lookup(&mut tx, batch).await?;
        let mut targets = crate::placing::Targets::load(&mut tx, batch).await?;
        let (mut refused, mut deletes) = (Vec::new(), Vec::new());
        let mut rows = NewRows::default();
        let mut out = Vec::with_capacity(batch.len());
        // Keys this batch places, for a retry in the same batch.
        let mut placed_keys: HashMap<Key, Message> = HashMap::new();
        for (m, known) in batch.iter().zip(found) {
            if let Some(placement) = known {
                out.push(placement);
                continue;
            }
            let key = key_of(m);
            if let Some(original) = key.as_ref().and_then(|k| placed_keys.get(k)) {
                out.push(Placement::Duplicate {
                    original: original.clone(),
                });
                continue;
            }
            if let Err(refusal) = targets.decide(m) {
                refused.push((m.id.to_string(), m.chat_id, refusal));
                out.push(Placement::Refused(refusal));
                continue;
            }
            if let Some(Change::Delete { target }) = &m.change {
                deletes.push((*target, m.created_at));
            }
            let head = heads.entry(m.chat_id).or_insert(0);
            *head += 1;
            rows.push(m, *head);
            let placed = m.clone().committed(*head);
            if let Some(k) = key {
                placed_keys.insert(k, placed.clone());
            }
            out.push(Placement::Placed(placed));
        }
        rows.insert(&mut tx).await?;
        crate::placing::scrub(&mut tx, &deletes).await?;
        crate::placing::remember_refused(&mut tx, &refused).await?;
        let (chats, tops): (Vec<uuid::Uuid>, Vec<i64>) =
            heads.iter().map(|(c, h)| (c.0, *h)).unzip();
        sqlx::query(
            "UPDATE chat_heads SET head = v.head FROM unnest($1::uuid[], $2::int8[]) AS v (chat_id, head) \
             WHERE chat_heads.chat_id = v.chat_id AND chat_heads.head < v.head",
        )
        .bind(&chats)
        .bind(&tops)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        // Every id of the batch, replays and duplicates too: their senders are waiting as well.
        let ids: Vec<String> = batch.iter().map(|m| m.id.to_string()).collect();
        let items = ids.iter().zip(&out).map(|(id, placement)| match placement {
            Placement::Placed(m) => (id.as_str(), Some(m.seq)),
            _ => (id.as_str(), None),
        });
        for payload in crate::placements::payloads(items) {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::placements::CHANNEL)
                .bind(payload)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        let removals = crate::removals::removals_in(&mut tx, &crate::removals::spans(&out)).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Sequenced {
            placements: out,
            removals,
        })
    }

    async fn placements(&self, batch: &[NewMessage]) -> StoreResult<Vec<Option<Placement>>> {
        let mut conn = self.pool.acquire().await.map_err(unavailable)?;
        lookup(&mut conn, batch).await
    }

    async fn by_key(
        &self,
        chat: ChatId,
        author: UserId,
        key: &ClientMsgId,
    ) -> StoreResult<Option<Message>> {
        sqlx::query(
            "SELECT seq, record FROM sequenced \
             WHERE chat_id = $1 AND author_id = $2 AND client_msg_id = $3",
        )
        .bind(chat.0)
        .bind(author.0)
        .bind(key.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?
        .as_ref()
        .map(placed_row)
        .transpose()
    }

    async fn wait_placements(
        &self,
        batch: &[NewMessage],
        timeout: Duration,
    ) -> StoreResult<Vec<Option<Placement>>> {
        self.await_placed(batch, None, timeout).await
    }

    async fn wait_placed<'a>(
        &'a self,
        message: &'a NewMessage,
        produce: Produce<'a>,
        timeout: Duration,
    ) -> StoreResult<Option<Placement>> {
        let found = self
            .await_placed(std::slice::from_ref(message), Some(produce), timeout)
            .await?;
        Ok(found.into_iter().next().flatten())
    }
}

/// The sequencer's table is the truth of every chat's recent messages and head.
#[async_trait]
impl RecentMessages for PgSequencer {
    async fn recent_after(
        &self,
        chat: ChatId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<RecentSlice> {
        let rows = sqlx::query(
            "SELECT seq, record FROM sequenced WHERE chat_id = $1 AND seq > $2 \
             ORDER BY seq LIMIT $3",
        )
        .bind(chat.0)
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        let messages = rows.iter().map(placed_row).collect::<StoreResult<_>>()?;
        Ok(RecentSlice {
            messages,
            complete: true,
        })
    }

    async fn seq_of(&self, chat: ChatId, id: MessageId) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT seq FROM sequenced WHERE id = $1 AND chat_id = $2")
            .bind(id.to_string())
            .bind(chat.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)
    }

    async fn last_seqs(&self, chats: &[ChatId]) -> StoreResult<HashMap<ChatId, i64>> {
        if chats.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<uuid::Uuid> = chats.iter().map(|c| c.0).collect();
        let rows = sqlx::query(
            "SELECT chat_id, head FROM chat_heads WHERE chat_id = ANY($1) AND head > 0",
        )
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        heads_from(&rows)
    }
}
