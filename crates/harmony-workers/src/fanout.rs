//! Fan-out: message log → gateways, and in a cluster the sequencer's placer. It owns the log's
//! partitions, so it places each record in its chat's order (the `Sequencer` gives it its seq,
//! once) before publishing it; a duplicate send (same `client_msg_id`) is placed never and
//! published never. Each message goes out with `prev_seq` (`Message::prev_seq`). Publishing is
//! at-least-once; sessions drop a message whose `seq` they already delivered.

use std::sync::Arc;

use harmony_core::events::GatewayEvent;
use harmony_core::model::{Message, NewMessage};
use harmony_core::ports::{
    GatewayPublisher, LogConsumer, LogDelivery, LogEntry, Placement, Sequencer, StoreResult,
};
use tokio_util::sync::CancellationToken;

use crate::source::{consume, Log};
use crate::OnProcessed;

pub struct Fanout<C> {
    pub consumer: C,
    pub gateways: Arc<dyn GatewayPublisher>,
    /// Places `Unplaced` records (cluster); `None` for a log that numbers chats itself.
    pub sequencer: Option<Arc<dyn Sequencer>>,
    pub on_processed: OnProcessed,
}

/// The batch's messages in log order, placing what the log left unplaced. Duplicates drop out.
pub(crate) async fn placed(
    batch: &[LogDelivery],
    sequencer: Option<&dyn Sequencer>,
) -> StoreResult<Vec<Message>> {
    let unplaced: Vec<NewMessage> = batch
        .iter()
        .filter_map(|d| match &d.entry {
            LogEntry::Unplaced(m) => Some(m.clone()),
            LogEntry::Placed(_) => None,
        })
        .collect();
    let mut placements = match (sequencer, unplaced.is_empty()) {
        (_, true) => Vec::new(),
        (Some(sequencer), false) => sequencer.sequence(&unplaced).await?,
        (None, false) => {
            return Err(harmony_core::ports::StoreError::Corrupt(
                "unplaced log records but no sequencer".into(),
            ))
        }
    }
    .into_iter();
    Ok(batch
        .iter()
        .filter_map(|d| match &d.entry {
            LogEntry::Placed(m) => Some(m.clone()),
            LogEntry::Unplaced(_) => match placements.next() {
                Some(Placement::Placed(m)) => Some(m),
                _ => None,
            },
        })
        .collect())
}

impl<C: LogConsumer + 'static> Fanout<C> {
    pub async fn run(self, shutdown: CancellationToken) {
        let gateways = self.gateways;
        let sequencer = self.sequencer;
        let apply = |batch: &[LogDelivery]| {
            let batch = batch.to_vec();
            let (gateways, sequencer) = (gateways.clone(), sequencer.clone());
            async move {
                let messages = placed(&batch, sequencer.as_deref()).await?;
                let events: Vec<GatewayEvent> =
                    messages.into_iter().map(GatewayEvent::message).collect();
                gateways.publish(&events).await
            }
        };
        consume(
            "fanout",
            Log(self.consumer),
            apply,
            self.on_processed,
            shutdown,
        )
        .await;
    }
}
