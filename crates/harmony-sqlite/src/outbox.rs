//! The transactional outbox: events written in the caller's transaction, and the cursor the
//! projector reads them with.

use std::time::Duration;

use async_trait::async_trait;
use harmony_core::events::{DomainEvent, StoredEvent, EVENT_VERSION};
use harmony_core::ports::{EventConsumer, StoreError, StoreResult};
use sqlx::{Row, Sqlite, Transaction};

use crate::{from_ms, ms, parse, unavailable, Database};

impl Database {
    /// Adds the event to the caller's transaction: it commits with the change, or not at all.
    pub(crate) async fn record_event(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        event: &DomainEvent,
    ) -> StoreResult<()> {
        let (aggregate_type, aggregate_id) = event.aggregate();
        let payload =
            serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO outbox (event_id, aggregate_type, aggregate_id, event_type, payload, \
             version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(event.event_type())
        .bind(payload)
        .bind(EVENT_VERSION)
        .bind(ms(harmony_core::now()))
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    /// Commits a transaction that wrote outbox events and wakes the projector.
    pub(crate) async fn commit_with_events(
        &self,
        tx: Transaction<'static, Sqlite>,
    ) -> StoreResult<()> {
        tx.commit().await.map_err(unavailable)?;
        self.outbox_written.notify_waiters();
        Ok(())
    }

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
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM consumer_offsets WHERE consumer = ?")
                .bind(consumer)
                .fetch_optional(&self.writer)
                .await
                .map_err(unavailable)?;
        Ok(position.unwrap_or(0))
    }

    pub(crate) async fn commit_position(&self, consumer: &str, position: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO consumer_offsets (consumer, position) VALUES (?, ?) \
             ON CONFLICT (consumer) DO UPDATE SET position = MAX(position, excluded.position)",
        )
        .bind(consumer)
        .bind(position)
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }
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
        let wake = self.db.outbox_written.clone();
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
        let rows = sqlx::query(
            "SELECT position, event_id, payload, created_at FROM outbox \
             WHERE position > ? ORDER BY position LIMIT ?",
        )
        .bind(self.position)
        .bind(max as i64)
        .fetch_all(&self.db.reader)
        .await
        .map_err(unavailable)?;
        let mut events = Vec::with_capacity(rows.len());
        // The cursor moves only once the whole batch was read: an error mid-way re-reads it.
        let mut last = self.position;
        for row in rows {
            let position: i64 = row.try_get("position").map_err(unavailable)?;
            last = position;
            let payload: String = row.try_get("payload").map_err(unavailable)?;
            let id: String = row.try_get("event_id").map_err(unavailable)?;
            match serde_json::from_str::<DomainEvent>(&payload) {
                Ok(event) => events.push(StoredEvent {
                    position,
                    id: parse("event id", &id)?,
                    event,
                    created_at: from_ms(row.try_get("created_at").map_err(unavailable)?)?,
                }),
                Err(e) => {
                    // Only this process writes the outbox: a bad row is a bug, reported loudly.
                    tracing::error!(position, event_id = %id, error = %e, "skipping undecodable outbox event");
                }
            }
        }
        self.position = last;
        Ok(events)
    }
}
