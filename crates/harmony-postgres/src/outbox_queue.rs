//! The outbox read as a queue, for the projector of a cluster until the WAL relay exists: rows
//! are read in position order and deleted once their effects are done. Deleting exactly the
//! rows handled (not "everything up to a position") means a transaction that commits late with
//! a lower position is still picked up by the next poll. Run one projector: order per aggregate
//! holds because a single reader takes rows in position order.

use std::time::Duration;

use async_trait::async_trait;
use harmony_core::events::{DomainEvent, StoredEvent};
use harmony_core::ports::{EventConsumer, StoreResult};
use sqlx::Row;

use crate::{unavailable, StateDb};

pub struct OutboxQueue {
    db: StateDb,
    /// Positions returned by the last poll and not yet deleted.
    pending: Vec<i64>,
}

impl StateDb {
    pub fn outbox_queue(&self) -> OutboxQueue {
        OutboxQueue {
            db: self.clone(),
            pending: Vec::new(),
        }
    }
}

#[async_trait]
impl EventConsumer for OutboxQueue {
    async fn poll(&mut self, max: usize, wait: Duration) -> StoreResult<Vec<StoredEvent>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let rows = sqlx::query(
                "SELECT position, event_id, payload::text AS payload, created_at FROM outbox ORDER BY position LIMIT $1",
            )
            .bind(max as i64)
            .fetch_all(&self.db.pool)
            .await
            .map_err(unavailable)?;
            let mut events = Vec::with_capacity(rows.len());
            for row in &rows {
                let position: i64 = row.try_get("position").map_err(unavailable)?;
                let payload: String = row.try_get("payload").map_err(unavailable)?;
                match serde_json::from_str::<DomainEvent>(&payload) {
                    Ok(event) => events.push(StoredEvent {
                        position,
                        id: row.try_get("event_id").map_err(unavailable)?,
                        event,
                        created_at: row.try_get("created_at").map_err(unavailable)?,
                    }),
                    Err(e) => {
                        tracing::error!(position, error = %e, "skipping an undecodable outbox event")
                    }
                }
                if !self.pending.contains(&position) {
                    self.pending.push(position);
                }
            }
            if !rows.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(events);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn commit(&mut self, through: &StoredEvent) -> StoreResult<()> {
        let done: Vec<i64> = self
            .pending
            .iter()
            .copied()
            .filter(|p| *p <= through.position)
            .collect();
        sqlx::query("DELETE FROM outbox WHERE position = ANY($1)")
            .bind(&done)
            .execute(&self.db.pool)
            .await
            .map_err(unavailable)?;
        self.pending.retain(|p| *p > through.position);
        Ok(())
    }
}
