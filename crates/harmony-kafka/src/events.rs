//! The events topic (`harmony.events.v1`): the relay publishes outbox events keyed by aggregate
//! id (so one aggregate's events stay in order on one partition); the projector consumes them.

use std::time::Duration;

use async_trait::async_trait;
use harmony_core::events::StoredEvent;
use harmony_core::ports::{EventConsumer, EventPublisher, StoreResult};
use harmony_protocol::record::EventRecordV1;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::{producer_config, unavailable, KafkaSettings, Parking};

pub struct KafkaEvents {
    producer: FutureProducer,
    settings: KafkaSettings,
}

impl KafkaEvents {
    pub fn new(settings: KafkaSettings) -> StoreResult<Self> {
        Ok(Self {
            producer: producer_config(&settings).create().map_err(unavailable)?,
            settings,
        })
    }
}

#[async_trait]
impl EventPublisher for KafkaEvents {
    async fn publish(&self, events: &[StoredEvent]) -> StoreResult<()> {
        let records: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|e| (e.event.aggregate().1, EventRecordV1::from(e).encode()))
            .collect();
        let sends = records.iter().map(|(key, payload)| {
            let record = FutureRecord::to(&self.settings.topic)
                .key(key)
                .payload(payload);
            self.producer.send(record, self.settings.delivery_timeout)
        });
        for result in futures_util::future::join_all(sends).await {
            result.map_err(|(e, _)| unavailable(e))?;
        }
        Ok(())
    }
}

/// A projector's cursor on the events topic. A record that does not decode is a poison event:
/// it is copied to the dead-letter topic (when there is one) and passed over.
pub struct KafkaEventCursor {
    consumer: crate::GroupConsumer,
    topic: String,
    /// Partition and offset of each event handed out and not yet committed, by event id.
    positions: Vec<(uuid::Uuid, i32, i64)>,
    parking: Parking,
}

impl KafkaEventCursor {
    pub fn new(settings: &KafkaSettings, group: &str) -> StoreResult<Self> {
        let consumer = crate::subscribed_consumer(settings, group)?;
        Ok(Self {
            consumer,
            topic: settings.topic.clone(),
            positions: Vec::new(),
            parking: Parking::none(),
        })
    }

    /// Copies undecodable records to `dead_letters.topic`.
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
impl EventConsumer for KafkaEventCursor {
    async fn poll(&mut self, max: usize, wait: Duration) -> StoreResult<Vec<StoredEvent>> {
        self.parking.retry_held().await?;
        let mut out = Vec::new();
        let mut timeout = wait;
        while out.len() < max {
            let received = match tokio::time::timeout(timeout, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Err(e)) if out.is_empty() => return Err(unavailable(e)),
                Ok(Err(_)) => break,
                Ok(Ok(m)) => (
                    m.partition(),
                    m.offset(),
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                ),
            };
            let (partition, offset, key, payload) = received;
            match EventRecordV1::decode(&payload).and_then(EventRecordV1::into_stored) {
                Ok(event) => {
                    self.positions.push((event.id, partition, offset));
                    out.push(event);
                }
                Err(e) => {
                    tracing::error!(partition, offset, error = %e, "poison event: parked in the dead-letter topic");
                    if self.parking.park(key, payload).await.is_err() {
                        // Held: parked at the next poll, before anything after it is read.
                        break;
                    }
                }
            }
            timeout = Duration::from_millis(1);
        }
        Ok(out)
    }

    async fn commit(&mut self, through: &StoredEvent) -> StoreResult<()> {
        let Some(index) = self.positions.iter().position(|(id, ..)| *id == through.id) else {
            return Ok(());
        };
        for (_, partition, offset) in self.positions.drain(..=index) {
            // rd_kafka_offset_store commits `offset + 1` itself.
            self.consumer
                .store_offset(&self.topic, partition, offset)
                .map_err(unavailable)?;
        }
        // Committed by librdkafka in the background (see `consumer_config`).
        Ok(())
    }
}
