//! The history sink: message log → message store. It stores what the sequencer placed, with its
//! seq, and waits for the fan-out (the placer) when it runs ahead of it; duplicates are never
//! stored. Upserts by message id, so a batch replayed after a crash changes nothing.

use std::sync::Arc;
use std::time::Duration;

use harmony_core::model::{Message, NewMessage};
use harmony_core::ports::{
    HistoryStore, LogConsumer, LogDelivery, LogEntry, Placement, Sequencer, StoreError, StoreResult,
};
use tokio_util::sync::CancellationToken;

use crate::source::{consume, Log};
use crate::OnProcessed;

/// How long the sink waits for the fan-out to place a batch before the attempt fails (and is
/// retried with backoff, logged).
const PLACEMENT_WAIT: Duration = Duration::from_secs(2);

pub struct Sink<C> {
    pub consumer: C,
    pub history: Arc<dyn HistoryStore>,
    pub sequencer: Arc<dyn Sequencer>,
    pub on_processed: OnProcessed,
}

/// The batch's messages with their seqs, once every record is placed (or known a duplicate).
async fn placed(batch: &[LogDelivery], sequencer: &dyn Sequencer) -> StoreResult<Vec<Message>> {
    let mut out: Vec<Message> = Vec::with_capacity(batch.len());
    let mut unplaced: Vec<NewMessage> = Vec::new();
    for d in batch {
        match &d.entry {
            LogEntry::Placed(m) => out.push(m.clone()),
            LogEntry::Unplaced(m) => unplaced.push(m.clone()),
        }
    }
    let deadline = tokio::time::Instant::now() + PLACEMENT_WAIT;
    let mut nap = Duration::from_millis(5);
    while !unplaced.is_empty() {
        let found = sequencer.placements(&unplaced).await?;
        let mut waiting = Vec::new();
        for (m, placement) in unplaced.into_iter().zip(found) {
            match placement {
                Some(Placement::Placed(placed)) => out.push(placed),
                Some(Placement::Duplicate { .. }) => {}
                None => waiting.push(m),
            }
        }
        unplaced = waiting;
        if unplaced.is_empty() {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StoreError::Unavailable(format!(
                "{} records not yet placed by the fan-out",
                unplaced.len()
            )));
        }
        tokio::time::sleep(nap).await;
        nap = (nap * 2).min(Duration::from_millis(200));
    }
    Ok(out)
}

impl<C: LogConsumer + 'static> Sink<C> {
    pub async fn run(self, shutdown: CancellationToken) {
        let (history, sequencer) = (self.history, self.sequencer);
        let apply = |batch: &[LogDelivery]| {
            let batch = batch.to_vec();
            let (history, sequencer) = (history.clone(), sequencer.clone());
            async move {
                let messages = placed(&batch, sequencer.as_ref()).await?;
                history.upsert_messages(&messages).await
            }
        };
        consume(
            "sink",
            Log(self.consumer),
            apply,
            self.on_processed,
            shutdown,
        )
        .await;
    }
}
