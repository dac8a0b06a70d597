//! Appending to the message log: one produce per message, acknowledged by every in-sync replica
//! before the send counts as committed. The log does not number a chat's messages (a partition
//! holds many chats); the sequencer does, as the fan-out consumes the record, and the send waits
//! for that placement to answer with the message's `seq`.
//!
//! Idempotency is the sequencer's: it places a `(chat, author, client_msg_id)` once. A retry
//! first looks the key up there; a retry racing the first attempt, or following a produce that
//! timed out after all, appends a second record, which the sequencer marks a duplicate, and the
//! retry answers with the first attempt's message.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use harmony_core::model::NewMessage;
use harmony_core::ports::{
    AppendOutcome, MessageLog, Placement, Sequencer, StoreError, StoreResult,
};
use harmony_protocol::record::MessageRecordV1;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::{unavailable, KafkaSettings};

pub struct KafkaLog {
    producer: KafkaProducer,
    sequencer: Arc<dyn Sequencer>,
    /// How long a send waits for its placement once the log acknowledged it.
    placement_timeout: Duration,
}

/// Appends records to the message topic and returns once the broker acknowledged them (the
/// broker's share of a send, measured alone by `scripts/cluster --measure`).
pub struct KafkaProducer {
    producer: FutureProducer,
    settings: KafkaSettings,
}

impl KafkaLog {
    pub fn new(settings: KafkaSettings, sequencer: Arc<dyn Sequencer>) -> StoreResult<Self> {
        Ok(Self {
            placement_timeout: settings.delivery_timeout,
            producer: KafkaProducer::new(settings)?,
            sequencer,
        })
    }
}

impl KafkaProducer {
    pub fn new(settings: KafkaSettings) -> StoreResult<Self> {
        let producer: FutureProducer = crate::producer_config(&settings)
            .create()
            .map_err(unavailable)?;
        Ok(Self { producer, settings })
    }

    /// Appends one record, keyed by its chat; returns once every in-sync replica has it.
    pub async fn produce(&self, message: &NewMessage) -> StoreResult<()> {
        let key = message.chat_id.to_string();
        let payload = MessageRecordV1::from(message).encode();
        let record = FutureRecord::to(&self.settings.topic)
            .key(&key)
            .payload(&payload);
        self.producer
            .send(record, self.settings.delivery_timeout)
            .await
            .map_err(|(e, _)| unavailable(e))?;
        Ok(())
    }
}

#[async_trait]
impl MessageLog for KafkaLog {
    async fn append(&self, message: NewMessage) -> StoreResult<AppendOutcome> {
        if let Some(key) = &message.client_msg_id {
            let found = self
                .sequencer
                .by_key(message.chat_id, message.author.id, key)
                .await?;
            if let Some(existing) = found {
                return Ok(AppendOutcome::Duplicate(existing));
            }
        }
        // Committed once produced. If the placement does not come in time (the fan-out is down
        // or far behind), the send answers 503: a retry with the same client_msg_id finds it.
        let produce = Box::pin(self.producer.produce(&message));
        match self
            .sequencer
            .wait_placed(&message, produce, self.placement_timeout)
            .await?
        {
            Some(Placement::Placed(m)) => Ok(AppendOutcome::Created(m)),
            Some(Placement::Duplicate { original }) => Ok(AppendOutcome::Duplicate(original)),
            Some(Placement::Refused(refusal)) => Ok(AppendOutcome::Refused(refusal)),
            None => {
                tracing::warn!(message = %message.id, chat = %message.chat_id, "a committed send was not placed in time; answering 503");
                Err(StoreError::Unavailable(
                    "the message is committed but not yet ordered; retry with the same client_msg_id".into(),
                ))
            }
        }
    }
}
