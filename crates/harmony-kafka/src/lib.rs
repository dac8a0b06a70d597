//! Cluster adapters on a Kafka-API broker, through librdkafka (`rdkafka`), so the same code runs
//! on Apache Kafka, Redpanda, AutoMQ, or tansu in tests.
//!
//! - [`KafkaLog`]: api nodes append each accepted message to `harmony.messages.v1`, keyed by chat
//!   id, with an idempotent producer and `acks=all`; the `201` waits for the broker's
//!   acknowledgement and then for the sequencer's placement (the message's `seq`: offsets are a
//!   partition's order, not a chat's, and change meaning when partitions or topics do).
//! - [`KafkaCursor`]: a consumer group member (fan-out, sink); offsets are stored only after the
//!   batch took effect, per partition, in order.

mod consumer;
mod events;
mod log;

pub use consumer::KafkaCursor;
pub use events::{KafkaEventCursor, KafkaEvents};
pub use log::{KafkaLog, KafkaProducer};

use std::time::Duration;

use harmony_core::ports::{StoreError, StoreResult};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

/// Where the broker is and how to talk to it.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    pub topic: String,
    /// Partitions of a new topic. Never change it later: chats would move partitions.
    pub partitions: i32,
    pub replication: i32,
    /// How long the producer may wait to batch (`linger.ms`).
    pub linger_ms: u32,
    /// How long a consumer's fetch may wait on the broker (`fetch.wait.max.ms`).
    pub fetch_wait_ms: u32,
    /// How long a produce may take before the send fails (no `201`).
    pub delivery_timeout: Duration,
    /// How long a silent group member keeps its partitions: the fail-over time of a consumer.
    pub session_timeout: Duration,
}

impl KafkaSettings {
    pub fn new(brokers: &str, topic: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            partitions: 3,
            replication: 1,
            linger_ms: 1,
            fetch_wait_ms: 5,
            delivery_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(6),
        }
    }
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("kafka: {e}"))
}

/// The producer settings every Harmony producer uses: idempotent, acknowledged by all replicas.
pub(crate) fn producer_config(settings: &KafkaSettings) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", settings.linger_ms.to_string())
        .set(
            "delivery.timeout.ms",
            settings.delivery_timeout.as_millis().to_string(),
        )
        .set("partitioner", "murmur2_random");
    config
}

/// The consumer settings every Harmony consumer uses: offsets stored by hand after processing.
/// A consumer in `group`, subscribed to the settings' topic (offsets stored only after
/// processing, committed explicitly).
pub(crate) fn subscribed_consumer(
    settings: &KafkaSettings,
    group: &str,
) -> harmony_core::ports::StoreResult<rdkafka::consumer::StreamConsumer> {
    use rdkafka::consumer::Consumer as _;
    let consumer: rdkafka::consumer::StreamConsumer = consumer_config(settings, group)
        .create()
        .map_err(unavailable)?;
    consumer
        .subscribe(&[&settings.topic])
        .map_err(unavailable)?;
    Ok(consumer)
}

fn consumer_config(settings: &KafkaSettings, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", settings.fetch_wait_ms.to_string())
        .set("partition.assignment.strategy", "range")
        .set(
            "session.timeout.ms",
            settings.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (settings.session_timeout.as_millis() / 4)
                .max(100)
                .to_string(),
        );
    config
}

/// Creates the topic unless it exists.
pub async fn ensure_topic(settings: &KafkaSettings) -> StoreResult<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .create()
        .map_err(unavailable)?;
    let topic = NewTopic::new(
        &settings.topic,
        settings.partitions,
        TopicReplication::Fixed(settings.replication),
    );
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(unavailable)?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(unavailable(format!("creating topic {name}: {code}"))),
        }
    }
    Ok(())
}

/// Where a consumer parks records that do not decode: copied to a dead-letter topic, then passed
/// over. A record whose copy failed is held and parked first at the next poll, before anything
/// after it is read, so a failing dead-letter write delays the consumer but loses nothing.
pub(crate) struct Parking {
    dead_letters: Option<(rdkafka::producer::FutureProducer, KafkaSettings)>,
    held: Option<(Vec<u8>, Vec<u8>)>,
}

impl Parking {
    pub(crate) fn none() -> Self {
        Self {
            dead_letters: None,
            held: None,
        }
    }

    pub(crate) fn to(dead_letters: &KafkaSettings) -> StoreResult<Self> {
        let producer = producer_config(dead_letters)
            .create()
            .map_err(unavailable)?;
        Ok(Self {
            dead_letters: Some((producer, dead_letters.clone())),
            held: None,
        })
    }

    /// Parks a held record, if any; `Err` while that still fails.
    pub(crate) async fn retry_held(&mut self) -> StoreResult<()> {
        if let Some((key, payload)) = self.held.take() {
            self.park(key, payload).await?;
        }
        Ok(())
    }

    /// Parks a record; on failure holds it (see `retry_held`) and says so.
    pub(crate) async fn park(&mut self, key: Vec<u8>, payload: Vec<u8>) -> StoreResult<()> {
        let Some((producer, settings)) = &self.dead_letters else {
            return Ok(());
        };
        let record = rdkafka::producer::FutureRecord::to(&settings.topic)
            .key(&key)
            .payload(&payload);
        let sent = producer.send(record, settings.delivery_timeout).await;
        match sent {
            Ok(_) => Ok(()),
            Err((e, _)) => {
                self.held = Some((key, payload));
                Err(unavailable(e))
            }
        }
    }
}
