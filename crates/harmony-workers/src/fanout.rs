//! Fan-out: message log → gateways, and in a cluster the sequencer's placer. It owns the log's
//! partitions, so it places each record in its chat's order (the `Sequencer` gives it its seq,
//! once) before publishing it; a duplicate send (same `client_msg_id`) is placed never and
//! published never. A member removed at some point of a chat's order is published as removed
//! right before the chat's next message, on the same ordered path. Each message goes out with `prev_seq` (`Message::prev_seq`). Publishing is
//! at-least-once; sessions drop a message whose `seq` they already delivered.

use std::sync::Arc;

use harmony_core::events::GatewayEvent;
use harmony_core::model::{Message, NewMessage};
use harmony_core::ports::{
    GatewayPublisher, LogConsumer, LogDelivery, LogEntry, Placement, Sequencer, StoreResult,
};
use harmony_core::ChatId;
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
async fn placed(
    entries: Vec<LogEntry>,
    sequencer: Option<&dyn Sequencer>,
) -> StoreResult<Vec<Message>> {
    // Which entries were unplaced, in order, and the records to place (moved, not copied).
    let mut unplaced: Vec<NewMessage> = Vec::new();
    let mut slots: Vec<Option<Message>> = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            LogEntry::Placed(m) => slots.push(Some(m)),
            LogEntry::Unplaced(m) => {
                unplaced.push(m);
                slots.push(None);
            }
        }
    }
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
    Ok(slots
        .into_iter()
        .filter_map(|slot| match slot {
            Some(m) => Some(m),
            None => match placements.next() {
                Some(Placement::Placed(m)) => Some(m),
                _ => None,
            },
        })
        .collect())
}

/// The gateway events of a batch: each message, preceded by the removals that take effect right
/// before it (a removed member's sessions stop following the chat before the message arrives).
pub(crate) async fn events(
    messages: Vec<Message>,
    sequencer: Option<&dyn Sequencer>,
) -> StoreResult<Vec<GatewayEvent>> {
    let mut spans: Vec<(ChatId, i64, i64)> = Vec::new();
    for m in &messages {
        match spans.iter_mut().find(|s| s.0 == m.chat_id) {
            Some(span) => {
                span.1 = span.1.min(m.seq);
                span.2 = span.2.max(m.seq);
            }
            None => spans.push((m.chat_id, m.seq, m.seq)),
        }
    }
    let removals = match sequencer {
        Some(sequencer) => sequencer.removals_before(&spans).await?,
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(messages.len() + removals.len());
    for m in messages {
        for (chat, user, _) in removals
            .iter()
            .filter(|(chat, _, seq)| *chat == m.chat_id && *seq == m.seq)
        {
            out.push(GatewayEvent::MemberRemoved {
                chat_id: *chat,
                user_id: *user,
            });
        }
        out.push(GatewayEvent::message(m));
    }
    Ok(out)
}

impl<C: LogConsumer + 'static> Fanout<C> {
    pub async fn run(self, shutdown: CancellationToken) {
        let gateways = self.gateways;
        let sequencer = self.sequencer;
        let apply = |batch: &[LogDelivery]| {
            let entries: Vec<LogEntry> = batch.iter().map(|d| d.entry.clone()).collect();
            let (gateways, sequencer) = (gateways.clone(), sequencer.clone());
            async move {
                let messages = placed(entries, sequencer.as_deref()).await?;
                let events = events(messages, sequencer.as_deref()).await?;
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
