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
mod lag;
mod log;

pub use consumer::KafkaCursor;
pub use events::{KafkaEventCursor, KafkaEvents};
pub use lag::GroupLag;
pub use log::{KafkaLog, KafkaProducer};

use std::time::Duration;

use harmony_core::ports::{StoreError, StoreResult};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

/// Where the broker is and how to talk to it.
#[derive(Clone, Debug)]
pub struct KafkaSettings {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    pub topic: String,
    /// Partitions of a new topic. Changing it later moves chats between partitions; their order
    /// survives (the sequencer numbers each chat), but records of a moved chat still waiting in
    /// its old partition may be placed after newer ones.
    pub partitions: i32,
    /// Replicas of each partition of a new topic.
    pub replication: i32,
    /// Replicas that must have a write before it is acknowledged (`min.insync.replicas`).
    pub min_insync_replicas: i32,
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
            min_insync_replicas: 1,
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

/// Says which partitions a group member was given or lost: the first thing to look at when a
/// consumer seems idle.
pub(crate) struct GroupContext {
    group: String,
}

impl rdkafka::client::ClientContext for GroupContext {}

impl rdkafka::consumer::ConsumerContext for GroupContext {
    fn post_rebalance(
        &self,
        _base: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        use rdkafka::consumer::Rebalance;
        let partitions = |list: &rdkafka::TopicPartitionList| {
            list.elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect::<Vec<_>>()
                .join(",")
        };
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(group = %self.group, partitions = %partitions(list), "partitions assigned")
            }
            Rebalance::Revoke(list) => {
                tracing::info!(group = %self.group, partitions = %partitions(list), "partitions revoked")
            }
            Rebalance::Error(e) => {
                tracing::warn!(group = %self.group, error = %e, "rebalance failed")
            }
        }
    }
}

pub(crate) type GroupConsumer = rdkafka::consumer::StreamConsumer<GroupContext>;

/// A consumer in `group`, subscribed to the settings' topic (offsets stored only after
/// processing, committed explicitly).
pub(crate) fn subscribed_consumer(
    settings: &KafkaSettings,
    group: &str,
) -> harmony_core::ports::StoreResult<GroupConsumer> {
    use rdkafka::consumer::Consumer as _;
    let context = GroupContext {
        group: group.to_owned(),
    };
    let consumer: GroupConsumer = consumer_config(settings, group)
        .create_with_context(context)
        .map_err(unavailable)?;
    consumer
        .subscribe(&[&settings.topic])
        .map_err(unavailable)?;
    Ok(consumer)
}

/// How often a consumer group member commits the offsets it stored.
const COMMIT_EVERY_MS: &str = "250";

fn consumer_config(settings: &KafkaSettings, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &settings.brokers)
        .set("group.id", group)
        // Offsets are stored by the consumer once a batch took effect, and committed by
        // librdkafka in the background, at close and before a rebalance hands the partitions on.
        // Committing after every batch sent the group coordinator a request per batch
        // (hundreds a second per consumer at a few messages a batch); a crash now replays at
        // most the last interval, which every consumer takes idempotently.
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", COMMIT_EVERY_MS)
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

fn admin(settings: &KafkaSettings) -> StoreResult<AdminClient<DefaultClientContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .create()
        .map_err(unavailable)
}

/// Creates the topic unless it exists.
pub async fn ensure_topic(settings: &KafkaSettings) -> StoreResult<()> {
    let admin = admin(settings)?;
    let min_isr = settings.min_insync_replicas.to_string();
    let topic = NewTopic::new(
        &settings.topic,
        settings.partitions,
        TopicReplication::Fixed(settings.replication),
    )
    .set("min.insync.replicas", &min_isr);
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
    on_parked: OnParked,
}

/// Told of each record parked, for metrics.
pub type OnParked = std::sync::Arc<dyn Fn(usize) + Send + Sync>;

impl Parking {
    pub(crate) fn none() -> Self {
        Self {
            dead_letters: None,
            held: None,
            on_parked: std::sync::Arc::new(|_| {}),
        }
    }

    pub(crate) fn to(dead_letters: &KafkaSettings, on_parked: OnParked) -> StoreResult<Self> {
        let producer = producer_config(dead_letters)
            .create()
            .map_err(unavailable)?;
        Ok(Self {
            dead_letters: Some((producer, dead_letters.clone())),
            held: None,
            on_parked,
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
            Ok(_) => {
                (self.on_parked)(1);
                Ok(())
            }
            Err((e, _)) => {
                self.held = Some((key, payload));
                Err(unavailable(e))
            }
        }
    }
}

/// How an existing topic differs from its settings: `errors` weaken durability below what was
/// asked (a node should refuse to start), `warnings` are worth an operator's look.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TopicCheck {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Reads the topic's real partitions, replicas and `min.insync.replicas` from the brokers and
/// compares them with `settings`.
pub async fn check_topic(settings: &KafkaSettings) -> StoreResult<TopicCheck> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let mut check = TopicCheck::default();
    let name = settings.topic.clone();
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.brokers)
        .create()
        .map_err(unavailable)?;
    let metadata = tokio::task::spawn_blocking(move || {
        probe.fetch_metadata(Some(&name), Duration::from_secs(10))
    })
    .await
    .map_err(|e| unavailable(format!("reading topic metadata: {e}")))?
    .map_err(unavailable)?;
    let Some(topic) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == settings.topic)
    else {
        check
            .errors
            .push(format!("topic {} does not exist", settings.topic));
        return Ok(check);
    };
    let partitions = topic.partitions().len() as i32;
    if partitions != settings.partitions {
        check.warnings.push(format!(
            "topic {} has {partitions} partitions, cluster.partitions says {} (chats keep their order; see config/harmony.toml)",
            settings.topic, settings.partitions
        ));
    }
    let fewest = topic
        .partitions()
        .iter()
        .map(|p| p.replicas().len() as i32)
        .min()
        .unwrap_or(0);
    if fewest < settings.replication {
        check.errors.push(format!(
            "topic {} has partitions with {fewest} replicas, cluster.replication_factor asks {}: an acknowledged message could be lost with one broker; raise it with kafka-reassign-partitions",
            settings.topic, settings.replication
        ));
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let described = admin(settings)?
        .describe_configs(&[ResourceSpecifier::Topic(&settings.topic)], &options)
        .await;
    let min_isr = described
        .ok()
        .and_then(|mut results| results.pop())
        .and_then(Result::ok)
        .and_then(|resource| resource.get("min.insync.replicas")?.value.clone())
        .and_then(|v| v.parse::<i32>().ok());
    match min_isr {
        Some(v) if v < settings.min_insync_replicas => check.errors.push(format!(
            "topic {} has min.insync.replicas={v}, cluster.min_insync_replicas asks {}: acks=all would be acknowledged by fewer replicas; set it with kafka-configs --alter",
            settings.topic, settings.min_insync_replicas
        )),
        Some(_) => {}
        None => check.warnings.push(format!(
            "could not read min.insync.replicas of topic {} (the broker does not describe topic configs)",
            settings.topic
        )),
    }
    Ok(check)
}
