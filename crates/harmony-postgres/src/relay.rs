//! The relay's source: outbox events read from PostgreSQL's WAL by logical decoding, in commit
//! order, through a replication slot with the `pgoutput` plugin, a publication with no tables
//! (so only logical-decoding messages come through), and `messages 'true'`. Reading peeks;
//! the slot advances only when the relay says the batch was published (see
//! docs/decisions/0001-outbox-relay.md).
//!
//! The relay does not poll: every transaction that writes an event also notifies
//! `harmony_outbox`, and the relay peeks when woken (or for its heartbeat). Each peek decodes
//! the WAL written since the slot's restart point, so polling 50 times a second decoded the whole
//! cluster's write traffic 50 times over: under load that was most of PostgreSQL's CPU.
//!
//! One relay is active at a time: [`WalOutbox::lead`] holds a session advisory lock on a
//! dedicated connection; a standby blocks there until the leader's connection goes away.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use harmony_core::ports::{OutboxBatch, OutboxStream, OutboxWake, StoreError, StoreResult};
use harmony_protocol::record::EventRecordV1;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgListener;
use sqlx::{Postgres, Row};

use crate::{unavailable, StateDb};

/// The prefix of the logical-decoding messages that carry outbox events.
pub(crate) const MESSAGE_PREFIX: &str = "harmony.outbox";
/// The channel notified on commit by every transaction that writes an event.
pub(crate) const CHANNEL: &str = "harmony_outbox";
const PUBLICATION: &str = "harmony_outbox";
const RELAY_LOCK: i64 = 0x4841_524d_5245_4c41;

/// The prefix of the heartbeat an idle relay writes into the WAL.
const HEARTBEAT_PREFIX: &str = "harmony.heartbeat";
/// How often a relay that waits for events writes a heartbeat. The slot only advances past
/// what a peek returned, and other writes to the database (history rows, sessions, read
/// markers) decode to nothing: without a heartbeat the slot would stay at the last outbox event,
/// each peek would decode all the WAL written since, and the server would keep that WAL on disk.
/// With it, the slot holds the WAL of the last 10 to 25 s (its restart point moves at
/// PostgreSQL's snapshots of running transactions, every 15 s). A heartbeat costs a peek and an
/// advance, each decoding that WAL, so it is not more frequent. Its peek also finds an event
/// whose notification was lost.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

pub struct WalOutbox {
    /// Holds the leader lock for as long as this relay lives.
    conn: PoolConnection<Postgres>,
    db: StateDb,
    slot: String,
    /// Wakes the relay when a transaction that wrote events commits.
    listener: PgListener,
    /// None until the first heartbeat: a new leader writes one at its first wait.
    last_heartbeat: Option<Instant>,
}

impl StateDb {
    /// Creates the outbox publication and replication slot unless they exist. Every cluster node
    /// calls this before it serves, so no event is written before the slot that will carry it.
    /// Concurrent callers are fine: "already exists" counts as done.
    pub async fn ensure_outbox_slot(&self, slot: &str) -> StoreResult<()> {
        let has_publication: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)")
                .bind(PUBLICATION)
                .fetch_one(&self.pool)
                .await
                .map_err(unavailable)?;
        if !has_publication {
            let sql = format!("CREATE PUBLICATION {PUBLICATION}");
            if let Err(e) = sqlx::Executor::execute(&self.pool, sql.as_str()).await {
                if !e.to_string().contains("already exists") {
                    return Err(unavailable(e));
                }
            }
        }
        let has_slot: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
        )
        .bind(slot)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        if !has_slot {
            let created = sqlx::query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')")
                .bind(slot)
                .execute(&self.pool)
                .await;
            match created {
                Ok(_) => tracing::info!(slot, "created the outbox replication slot"),
                Err(e) if e.to_string().contains("already exists") => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(())
    }
}

/// How far behind the relay's slot is, and whether PostgreSQL has given up on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotHealth {
    /// Bytes of WAL kept for the slot.
    pub lag_bytes: i64,
    /// `pg_replication_slots.wal_status`: "reserved", "extended", "unreserved" or "lost".
    pub wal_status: String,
}

impl StateDb {
    /// The slot's lag and WAL status; `None` when the slot does not exist.
    pub async fn slot_health(&self, slot: &str) -> StoreResult<Option<SlotHealth>> {
        let row = sqlx::query(
            "SELECT (pg_current_wal_lsn() - restart_lsn)::bigint AS lag, COALESCE(wal_status, '') AS status \
             FROM pg_replication_slots WHERE slot_name = $1",
        )
        .bind(slot)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|row| {
            Ok(SlotHealth {
                lag_bytes: row
                    .try_get::<Option<i64>, _>("lag")
                    .map_err(unavailable)?
                    .unwrap_or(0),
                wal_status: row.try_get("status").map_err(unavailable)?,
            })
        })
        .transpose()
    }
}

impl WalOutbox {
    /// Waits until this process is the one active relay, then makes sure the slot and the
    /// publication exist. `slot` names the replication slot (one per cluster).
    pub async fn lead(db: &StateDb, slot: &str) -> StoreResult<Self> {
        let mut conn = db.pool.acquire().await.map_err(unavailable)?;
        // The lock lives with this session: closing the connection when the relay is dropped
        // (or its process dies) is what hands leadership to a standby.
        conn.close_on_drop();
        loop {
            let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(RELAY_LOCK)
                .fetch_one(&mut *conn)
                .await
                .map_err(unavailable)?;
            if leader {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        db.ensure_outbox_slot(slot).await?;
        // Listening before the first peek: an event committed after it wakes the relay.
        let mut listener = PgListener::connect_with(&db.pool)
            .await
            .map_err(unavailable)?;
        listener.listen(CHANNEL).await.map_err(unavailable)?;
        Ok(Self {
            conn,
            db: db.clone(),
            slot: slot.to_owned(),
            listener,
            last_heartbeat: None,
        })
    }
}

/// Decodes a pgoutput logical-decoding message ('M'): flags, LSN, prefix, content. Other
/// messages (BEGIN, COMMIT) carry no event.
pub(crate) fn decode_message(data: &[u8]) -> Option<(&str, &[u8])> {
    let rest = data.strip_prefix(b"M")?;
    // Int8 flags, Int64 LSN.
    let rest = rest.get(9..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    let prefix = std::str::from_utf8(&rest[..end]).ok()?;
    let rest = &rest[end + 1..];
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    Some((prefix, rest.get(4..4 + len)?))
}

#[async_trait]
impl OutboxStream for WalOutbox {
    async fn peek(&mut self, max: usize) -> StoreResult<OutboxBatch> {
        let rows = sqlx::query(
            "SELECT lsn::text AS lsn, data FROM pg_logical_slot_peek_binary_changes($1, NULL, $2, \
             'proto_version', '1', 'publication_names', $3, 'messages', 'true')",
        )
        .bind(&self.slot)
        .bind(i32::try_from(max).unwrap_or(i32::MAX))
        .bind(PUBLICATION)
        .fetch_all(&mut *self.conn)
        .await
        .map_err(unavailable)?;
        let mut events = Vec::new();
        let mut end = None;
        for row in &rows {
            let lsn: String = row.try_get("lsn").map_err(unavailable)?;
            let data: Vec<u8> = row.try_get("data").map_err(unavailable)?;
            end = Some(lsn);
            let Some((prefix, content)) = decode_message(&data) else {
                continue;
            };
            if prefix != MESSAGE_PREFIX {
                continue;
            }
            match EventRecordV1::decode(content).and_then(EventRecordV1::into_stored) {
                Ok(event) => events.push(event),
                Err(e) => {
                    return Err(StoreError::Corrupt(format!(
                        "outbox message in the WAL: {e}"
                    )))
                }
            }
        }
        Ok(OutboxBatch { events, end })
    }

    async fn advance(&mut self, batch: &OutboxBatch) -> StoreResult<()> {
        let Some(end) = &batch.end else { return Ok(()) };
        sqlx::query("SELECT pg_replication_slot_advance($1, $2::pg_lsn)")
            .bind(&self.slot)
            .bind(end)
            .execute(&mut *self.conn)
            .await
            .map_err(unavailable)?;
        let ids: Vec<uuid::Uuid> = batch.events.iter().map(|e| e.id).collect();
        if !ids.is_empty() {
            sqlx::query("DELETE FROM outbox WHERE event_id = ANY($1)")
                .bind(&ids)
                .execute(&self.db.pool)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }

    async fn wait(&mut self) -> StoreResult<OutboxWake> {
        let due = self.last_heartbeat.map_or(Duration::ZERO, |at| {
            HEARTBEAT_EVERY.saturating_sub(at.elapsed())
        });
        let wake = match tokio::time::timeout(due, self.listener.try_recv()).await {
            Err(_) => {
                // Its own transaction, decoded in commit order after every transaction that
                // committed before it, so advancing past it skips no event. (A transactional
                // message is flushed at its commit, so the next peek finds it; a
                // non-transactional one waits for the WAL writer.)
                sqlx::query("SELECT pg_logical_emit_message(true, $1, '')")
                    .bind(HEARTBEAT_PREFIX)
                    .execute(&mut *self.conn)
                    .await
                    .map_err(unavailable)?;
                self.last_heartbeat = Some(Instant::now());
                return Ok(OutboxWake::Upkeep);
            }
            Ok(Ok(Some(_))) => OutboxWake::Committed,
            // The listener's connection dropped; it reconnects at the next receive, and what
            // was notified meanwhile is lost.
            Ok(Ok(None)) => return Ok(OutboxWake::Unsure),
            Ok(Err(e)) => return Err(unavailable(e)),
        };
        // One peek covers every commit so far: take the notifications already received (a burst
        // of commits, say 1,000 sign-ups, is one peek, not 1,000). A receive cut short by the
        // zero timeout keeps what it read in the connection's buffer.
        while let Ok(Ok(Some(_))) =
            tokio::time::timeout(Duration::ZERO, self.listener.try_recv()).await
        {}
        Ok(wake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgoutput_messages_decode_and_others_do_not() {
        let mut data = vec![b'M', 1];
        data.extend_from_slice(&42u64.to_be_bytes());
        data.extend_from_slice(b"harmony.outbox\0");
        data.extend_from_slice(&5u32.to_be_bytes());
        data.extend_from_slice(b"hello");
        assert_eq!(
            decode_message(&data),
            Some(("harmony.outbox", &b"hello"[..]))
        );
        assert_eq!(decode_message(b"B12345678"), None);
        assert_eq!(
            decode_message(&data[..20]),
            None,
            "truncated input is not a message"
        );
    }
}
