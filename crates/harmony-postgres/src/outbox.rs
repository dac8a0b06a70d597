//! The transactional outbox: an event is inserted in the transaction of the change it describes.

use harmony_core::events::{DomainEvent, EVENT_VERSION};
use harmony_core::ports::{StoreError, StoreResult};
use sqlx::{Postgres, Transaction};

use crate::unavailable;

pub(crate) async fn record(
    tx: &mut Transaction<'static, Postgres>,
    event: &DomainEvent,
) -> StoreResult<()> {
    let (aggregate_type, aggregate_id) = event.aggregate();
    let payload = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO outbox (event_id, aggregate_type, aggregate_id, event_type, payload, version, created_at) \
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, now())",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(event.event_type())
    .bind(payload)
    .bind(EVENT_VERSION)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(())
}
