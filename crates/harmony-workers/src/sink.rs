//! The history sink: message log → message store. It stores what the sequencer placed, with its
//! seq, and waits for the fan-out (the placer) when it runs ahead of it; duplicates are never
//! stored. Upserts by message id, so a batch replayed after a crash changes nothing. A message
//! whose position the store already holds for another message is an impossible state: it is
//! logged as an error and counted (`consumer_processed{consumer="sink-refused"}`), and the sink
//! goes on.

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
    /// Told of each message the store refused (its position holds another message).
    pub on_refused: OnProcessed,
}

/// The batch's messages with their seqs, once every record is placed (or known a duplicate).
async fn placed(entries: Vec<LogEntry>, sequencer: &dyn Sequencer) -> StoreResult<Vec<Message>> {
    let mut out: Vec<Message> = Vec::with_capacity(entries.len());
    let mut unplaced: Vec<NewMessage> = Vec::new();
    for entry in entries {
        match entry {
            LogEntry::Placed(m) => out.push(m),
            LogEntry::Unplaced(m) => unplaced.push(m),
        }
    }
    if unplaced.is_empty() {
        return Ok(out);
    }
    let found = sequencer.wait_placements(&unplaced, PLACEMENT_WAIT).await?;
    let mut waiting = 0;
    for placement in found {
        match placement {
            Some(Placement::Placed(placed)) => out.push(placed),
            Some(Placement::Duplicate { .. } | Placement::Refused(_)) => {}
            None => waiting += 1,
        }
    }
    if waiting > 0 {
        return Err(StoreError::Unavailable(format!(
            "{waiting} records not yet placed by the fan-out"
        )));
    }
    Ok(out)
}

impl<C: LogConsumer + 'static> Sink<C> {
    pub async fn run(self, shutdown: CancellationToken) {
        let (history, sequencer, on_refused) = (self.history, self.sequencer, self.on_refused);
        let apply = |batch: &[LogDelivery]| {
            let entries: Vec<LogEntry> = batch.iter().map(|d| d.entry.clone()).collect();
            let (history, sequencer, on_refused) =
                (history.clone(), sequencer.clone(), on_refused.clone());
            async move {
                let messages = placed(entries, sequencer.as_ref()).await?;
                let refused = history.upsert_messages(&messages).await?;
                for id in &refused {
                    // Retrying cannot help: say it loudly, count it, go on.
                    let m = messages.iter().find(|m| m.id == *id);
                    tracing::error!(message = %id, chat = ?m.map(|m| m.chat_id), seq = ?m.map(|m| m.seq), "the message store holds another message at this position: not stored (was the state database restored from an older backup?)");
                }
                if !refused.is_empty() {
                    on_refused(refused.len());
                }
                Ok(())
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
