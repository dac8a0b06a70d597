//! A consumer group member on the message log. Offsets are stored only after a batch took
//! effect (`enable.auto.offset.store=false`), then committed; a crash replays at most what was
//! not committed, and every consumer is idempotent.

use std::time::Duration;

use async_trait::async_trait;
use harmony_core::ports::{LogConsumer, LogDelivery, LogPosition, StoreResult};
use harmony_protocol::record::MessageRecordV1;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message as _;

use crate::{unavailable, KafkaSettings};

pub struct KafkaCursor {
    consumer: StreamConsumer,
    topic: String,
}

impl KafkaCursor {
    pub fn new(settings: &KafkaSettings, group: &str) -> StoreResult<Self> {
        let consumer = crate::subscribed_consumer(settings, group)?;
        Ok(Self {
            consumer,
            topic: settings.topic.clone(),
        })
    }

    fn decode(&self, m: &rdkafka::message::BorrowedMessage<'_>) -> Option<LogDelivery> {
        let position = LogPosition {
            partition: m.partition(),
            offset: m.offset(),
        };
        let decoded = MessageRecordV1::decode(m.payload().unwrap_or_default())
            .and_then(MessageRecordV1::into_message);
        match decoded {
            Ok(message) => Some(LogDelivery {
                position,
                prev_seq: None,
                message: message.committed(m.offset() + 1),
            }),
            Err(e) => {
                // Written by something else or corrupt: it can never be delivered. Say so loudly;
                // committing a later offset of the partition moves past it.
                tracing::error!(partition = position.partition, offset = position.offset, error = %e, "skipping an undecodable log record");
                None
            }
        }
    }
}

#[async_trait]
impl LogConsumer for KafkaCursor {
    async fn poll(&mut self, max: usize, wait: Duration) -> StoreResult<Vec<LogDelivery>> {
        let mut out = Vec::new();
        let mut timeout = wait;
        while out.len() < max {
            match tokio::time::timeout(timeout, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Err(e)) => {
                    if out.is_empty() {
                        return Err(unavailable(e));
                    }
                    break;
                }
                Ok(Ok(m)) => {
                    if let Some(delivery) = self.decode(&m) {
                        out.push(delivery);
                    }
                }
            }
            // After the first record, take only what is already here.
            timeout = Duration::from_millis(1);
        }
        Ok(out)
    }

    async fn commit(&mut self, through: &[LogPosition]) -> StoreResult<()> {
        for p in through {
            // librdkafka's rd_kafka_offset_store commits `offset + 1` itself: pass the offset of
            // the processed record, not the next one (that would skip a record).
            self.consumer
                .store_offset(&self.topic, p.partition, p.offset)
                .map_err(unavailable)?;
        }
        self.consumer
            .commit_consumer_state(CommitMode::Async)
            .map_err(unavailable)
    }
}
