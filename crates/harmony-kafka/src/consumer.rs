//! A consumer group member on the message log. Offsets are stored only after a batch took
//! effect (`enable.auto.offset.store=false`), and committed by librdkafka every 250 ms, at
//! close and at a rebalance; a crash replays at most what was not committed, and every consumer
//! is idempotent. Records carry no seq: the sequencer places
//! them (`LogEntry::Unplaced`). A record that does not decode is parked in the dead-letter topic.

use std::time::Duration;

use async_trait::async_trait;
use harmony_core::ports::{LogConsumer, LogDelivery, LogEntry, LogPosition, StoreResult};
use harmony_protocol::record::MessageRecordV1;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message as _;

use crate::{unavailable, KafkaSettings, Parking};

pub struct KafkaCursor {
    consumer: crate::GroupConsumer,
    topic: String,
    parking: Parking,
}

impl KafkaCursor {
    pub fn new(settings: &KafkaSettings, group: &str) -> StoreResult<Self> {
        let consumer = crate::subscribed_consumer(settings, group)?;
        Ok(Self {
            consumer,
            topic: settings.topic.clone(),
            parking: Parking::none(),
        })
    }

    /// Copies records that do not decode to `dead_letters.topic` before passing over them.
    pub fn with_dead_letters(
        mut self,
        dead_letters: &KafkaSettings,
        on_parked: crate::OnParked,
    ) -> StoreResult<Self> {
        self.parking = Parking::to(dead_letters, on_parked)?;
        Ok(self)
    }
}

#[async_trait]
impl LogConsumer for KafkaCursor {
    async fn poll(&mut self, max: usize, wait: Duration) -> StoreResult<Vec<LogDelivery>> {
        self.parking.retry_held().await?;
        let mut out = Vec::new();
        let mut timeout = wait;
        while out.len() < max {
            let received = match tokio::time::timeout(timeout, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Err(e)) if out.is_empty() => return Err(unavailable(e)),
                Ok(Err(_)) => break,
                Ok(Ok(m)) => {
                    let position = LogPosition {
                        partition: m.partition(),
                        offset: m.offset(),
                    };
                    let payload = m.payload().unwrap_or_default();
                    match MessageRecordV1::decode(payload).and_then(MessageRecordV1::into_message) {
                        Ok(message) => Ok((position, message)),
                        // Copied only to be parked: the usual record is decoded in place.
                        Err(e) => Err((
                            position,
                            e,
                            m.key().unwrap_or_default().to_vec(),
                            payload.to_vec(),
                        )),
                    }
                }
            };
            match received {
                Ok((position, message)) => out.push(LogDelivery {
                    position,
                    entry: LogEntry::Unplaced(message),
                }),
                Err((position, e, key, payload)) => {
                    // Written by something else or corrupt: it can never be delivered. Committing
                    // a later offset of the partition moves past it.
                    tracing::error!(partition = position.partition, offset = position.offset, error = %e, "a log record does not decode: parked in the dead-letter topic");
                    if self.parking.park(key, payload).await.is_err() {
                        break;
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
        Ok(())
    }
}
