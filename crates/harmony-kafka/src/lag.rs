//! A consumer group's lag on a topic: for each partition, the newest offset minus the offset
//! the group committed (all of it when the group committed nothing there). Read without joining
//! the group, so a node can watch its own workers' groups: the sink's lag grows while its store
//! is down or throttling, and shrinks as it catches up.

use std::sync::Arc;
use std::time::Duration;

use harmony_core::ports::StoreResult;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::{unavailable, KafkaSettings};

/// A watch on one consumer group's lag: one client, made once and asked every time.
pub struct GroupLag {
    probe: Arc<BaseConsumer>,
    topic: String,
}

impl GroupLag {
    pub fn new(settings: &KafkaSettings, group: &str) -> StoreResult<Self> {
        let probe: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .map_err(unavailable)?;
        Ok(Self {
            probe: Arc::new(probe),
            topic: settings.topic.clone(),
        })
    }

    /// Records the group still has to process on the topic.
    pub async fn lag(&self) -> StoreResult<i64> {
        let (probe, topic) = (self.probe.clone(), self.topic.clone());
        tokio::task::spawn_blocking(move || {
            let timeout = Duration::from_secs(5);
            let metadata = probe
                .fetch_metadata(Some(&topic), timeout)
                .map_err(unavailable)?;
            let mut wanted = TopicPartitionList::new();
            for t in metadata.topics().iter().filter(|t| t.name() == topic) {
                for p in t.partitions() {
                    wanted.add_partition(&topic, p.id());
                }
            }
            let committed = probe
                .committed_offsets(wanted, timeout)
                .map_err(unavailable)?;
            let mut lag = 0;
            for element in committed.elements() {
                let (low, high) = probe
                    .fetch_watermarks(&topic, element.partition(), timeout)
                    .map_err(unavailable)?;
                let done = match element.offset() {
                    Offset::Offset(at) => at,
                    _ => low,
                };
                lag += (high - done).max(0);
            }
            Ok(lag)
        })
        .await
        .map_err(|e| unavailable(format!("reading a group's lag: {e}")))?
    }
}
