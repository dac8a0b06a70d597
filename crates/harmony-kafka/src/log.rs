//! Appending to the message log: one produce per message, acknowledged by every in-sync replica
//! before the caller hears "committed". `client_msg_id` retries are caught by shared idempotency
//! keys, since a log cannot be searched.

use std::sync::Arc;

use async_trait::async_trait;
use harmony_core::model::NewMessage;
use harmony_core::ports::{
    AppendOutcome, IdempotencyKeys, MessageLog, Reservation, StoreError, StoreResult,
};
use harmony_protocol::record::MessageRecordV1;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::{unavailable, KafkaSettings};

pub struct KafkaLog {
    producer: FutureProducer,
    settings: KafkaSettings,
    keys: Arc<dyn IdempotencyKeys>,
}

impl KafkaLog {
    pub fn new(settings: KafkaSettings, keys: Arc<dyn IdempotencyKeys>) -> StoreResult<Self> {
        let producer: FutureProducer = crate::producer_config(&settings)
            .create()
            .map_err(unavailable)?;
        Ok(Self {
            producer,
            settings,
            keys,
        })
    }

    async fn produce(&self, message: &NewMessage) -> StoreResult<i64> {
        let key = message.chat_id.to_string();
        let payload = MessageRecordV1::from(message).encode();
        let record = FutureRecord::to(&self.settings.topic)
            .key(&key)
            .payload(&payload);
        let delivered = self
            .producer
            .send(record, self.settings.delivery_timeout)
            .await
            .map_err(|(e, _)| unavailable(e))?;
        Ok(delivered.offset)
    }
}

#[async_trait]
impl MessageLog for KafkaLog {
    async fn append(&self, message: NewMessage) -> StoreResult<AppendOutcome> {
        let (chat, author) = (message.chat_id, message.author.id);
        let Some(key) = message.client_msg_id.clone() else {
            let offset = self.produce(&message).await?;
            return Ok(AppendOutcome::Created(message.committed(offset + 1)));
        };
        match self.keys.reserve(chat, author, &key).await? {
            Reservation::Existing(existing) => return Ok(AppendOutcome::Duplicate(existing)),
            Reservation::InFlight => {
                return Err(StoreError::Unavailable(
                    "a send with this client_msg_id is in progress; retry".into(),
                ))
            }
            Reservation::Reserved => {}
        }
        match self.produce(&message).await {
            Ok(offset) => {
                let committed = message.committed(offset + 1);
                // Committed either way; if recording the key fails, a retry may append again.
                if let Err(e) = self.keys.complete(chat, author, &key, &committed).await {
                    tracing::warn!(error = %e, "could not record an idempotency key");
                }
                Ok(AppendOutcome::Created(committed))
            }
            Err(e) => {
                let _ = self.keys.release(chat, author, &key).await;
                Err(e)
            }
        }
    }
}
