//! The transactional outbox: an event is inserted in the transaction of the change it describes,
//! and the same event is written to the WAL as a transactional logical-decoding message
//! (`pg_logical_emit_message`), which the relay reads in commit order (see
//! docs/decisions/0001-outbox-relay.md), and `harmony_outbox` is notified to wake the relay. The
//! row stays until the relay has published it.

use harmony_core::events::{DomainEvent, StoredEvent, EVENT_VERSION};
use harmony_core::ports::{StoreError, StoreResult};
use harmony_protocol::record::EventRecordV1;
use sqlx::{Postgres, Transaction};

use crate::unavailable;

pub(crate) async fn record(
    tx: &mut Transaction<'static, Postgres>,
    event: &DomainEvent,
) -> StoreResult<()> {
    let (aggregate_type, aggregate_id) = event.aggregate();
    let payload = serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id = uuid::Uuid::new_v4();
    let created_at = harmony_core::now();
    let position: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (event_id, aggregate_type, aggregate_id, event_type, payload, version, created_at) \
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) RETURNING position",
    )
    .bind(id)
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(event.event_type())
    .bind(payload)
    .bind(EVENT_VERSION)
    .bind(created_at)
    .fetch_one(&mut **tx)
    .await
    .map_err(unavailable)?;
    let stored = StoredEvent {
        position,
        id,
        event: event.clone(),
        created_at,
    };
    let record = String::from_utf8(EventRecordV1::from(&stored).encode())
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // The notification is sent on commit (and once per transaction): it wakes the relay.
    sqlx::query("SELECT pg_logical_emit_message(true, $1, $2), pg_notify($3, '')")
        .bind(crate::relay::MESSAGE_PREFIX)
        .bind(record)
        .bind(crate::relay::CHANNEL)
        .execute(&mut **tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}
