//! The transactional outbox: events written in the caller's transaction, and the cursor the
//! projector reads them with.

use std::time::Duration;

use async_trait::async_trait;
use harmony_core::events::{DomainEvent, StoredEvent, EVENT_VERSION};
use harmony_core::ports::{EventConsumer, StoreError, StoreResult};
use rusqlite::Connection;

use crate::conn::Wake;
use crate::{col, exec, from_ms, ms, parse, row, rows, unavailable, Database};

/// Adds the event to the caller's transaction: it commits with the change, or not at all. A
/// write that records events runs with [`Wake::Outbox`], so the projector hears of them.
pub(crate) fn record_event(conn: &Connection, event: &DomainEvent) -> StoreResult<()> {
    let (aggregate_type, aggregate_id) = event.aggregate();
    let payload = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    exec(
        conn,
        "INSERT INTO outbox (event_id, aggregate_type, aggregate_id, event_type, payload, \
         version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            uuid::Uuid::new_v4().to_string(),
            aggregate_type,
            aggregate_id,
            event.event_type(),
            payload,
            EVENT_VERSION,
            ms(harmony_core::now()),
        ),
    )
    .map_err(unavailable)?;
    Ok(())
}

impl Database {
    /// A cursor on the outbox for the named consumer, starting after its committed position.
    pub async fn outbox_cursor(&self, consumer: &str) -> StoreResult<OutboxCursor> {
        let position = self.committed_position(consumer).await?;
        Ok(OutboxCursor {
            db: self.clone(),
            consumer: consumer.to_owned(),
            position,
        })
    }

    pub(crate) async fn committed_position(&self, consumer: &str) -> StoreResult<i64> {
        let consumer = consumer.to_owned();
        let position = self
            .write(Wake::Nobody, move |conn| {
                row(
                    conn,
                    "SELECT position FROM consumer_offsets WHERE consumer = ?",
                    [&consumer],
                    |r| col::<i64>(r, "position"),
                )
            })
            .await?;
        Ok(position.unwrap_or(0))
    }

    pub(crate) async fn commit_position(&self, consumer: &str, position: i64) -> StoreResult<()> {
        let consumer = consumer.to_owned();
        self.write(Wake::Nobody, move |conn| {
            save_position(conn, &consumer, position)
        })
        .await
    }

    /// Like [`Database::commit_position`], without waiting: for a cursor being dropped. The
    /// write is queued before anything [`Database::close`] waits for.
    pub(crate) fn commit_position_detached(&self, consumer: &str, position: i64) {
        let consumer = consumer.to_owned();
        self.writer
            .write_detached(move |conn| save_position(conn, &consumer, position));
    }
}

fn save_position(conn: &Connection, consumer: &str, position: i64) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO consumer_offsets (consumer, position) VALUES (?, ?) \
         ON CONFLICT (consumer) DO UPDATE SET position = MAX(position, excluded.position)",
        (consumer, position),
    )
    .map_err(unavailable)?;
    Ok(())
}

/// One consumer's position in the outbox.
pub struct OutboxCursor {
    db: Database,
    consumer: String,
    position: i64,
}

#[async_trait]
impl EventConsumer for OutboxCursor {
    async fn poll(&mut self, max: usize, wait: Duration) -> StoreResult<Vec<StoredEvent>> {
        let wakes = self.db.wakes.clone();
        let wake = &wakes.outbox;
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut events = self.read(max).await?;
        if events.is_empty() && tokio::time::timeout(wait, notified).await.is_ok() {
            events = self.read(max).await?;
        }
        Ok(events)
    }

    async fn commit(&mut self, through: &StoredEvent) -> StoreResult<()> {
        self.db
            .commit_position(&self.consumer, through.position)
            .await
    }
}

impl OutboxCursor {
    async fn read(&mut self, max: usize) -> StoreResult<Vec<StoredEvent>> {
        let after = self.position;
        let (events, last) = self
            .db
            .read(move |conn| {
                let found = rows(
                    conn,
                    "SELECT position, event_id, payload, created_at FROM outbox \
                     WHERE position > ? ORDER BY position LIMIT ?",
                    (after, max as i64),
                    |r| {
                        Ok((
                            col::<i64>(r, "position")?,
                            col::<String>(r, "event_id")?,
                            col::<String>(r, "payload")?,
                            col::<i64>(r, "created_at")?,
                        ))
                    },
                )?;
                let mut events = Vec::with_capacity(found.len());
                let mut last = after;
                for (position, id, payload, created_at) in found {
                    last = position;
                    match serde_json::from_str::<DomainEvent>(&payload) {
                        Ok(event) => events.push(StoredEvent {
                            position,
                            id: parse("event id", &id)?,
                            event,
                            created_at: from_ms(created_at)?,
                        }),
                        Err(e) => {
                            // Only this process writes the outbox: a bad row is a bug, reported
                            // loudly.
                            tracing::error!(position, event_id = %id, error = %e, "skipping undecodable outbox event");
                        }
                    }
                }
                Ok((events, last))
            })
            .await?;
        // The cursor moves only once the whole batch was read: an error mid-way re-reads it.
        self.position = last;
        Ok(events)
    }
}
