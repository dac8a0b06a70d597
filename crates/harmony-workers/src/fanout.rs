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
    GatewayPublisher, LogConsumer, LogDelivery, LogEntry, Placement, Sequenced, Sequencer,
    StoreResult,
};
use harmony_core::{ChatId, UserId};
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

/// The batch's messages in log order, placing what the log left unplaced (duplicates drop out),
/// and the removals the sequencer ordered among them.
async fn placed(
    entries: Vec<LogEntry>,
    sequencer: Option<&dyn Sequencer>,
) -> StoreResult<(Vec<Message>, Vec<(ChatId, UserId, i64)>)> {
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
    let sequenced = match (sequencer, unplaced.is_empty()) {
        (_, true) => Sequenced::default(),
        (Some(sequencer), false) => sequencer.sequence(&unplaced).await?,
        (None, false) => {
            return Err(harmony_core::ports::StoreError::Corrupt(
                "unplaced log records but no sequencer".into(),
            ))
        }
    };
    let mut placements = sequenced.placements.into_iter();
    let messages = slots
        .into_iter()
        .filter_map(|slot| match slot {
            Some(m) => Some(m),
            None => match placements.next() {
                Some(Placement::Placed(m)) => Some(m),
                _ => None,
            },
        })
        .collect();
    Ok((messages, sequenced.removals))
}

/// The gateway events of a batch: each message, preceded by the removals that take effect right
/// before it (a removed member's sessions stop following the chat before the message arrives).
fn events(messages: Vec<Message>, removals: &[(ChatId, UserId, i64)]) -> Vec<GatewayEvent> {
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
    out
}

impl<C: LogConsumer + 'static> Fanout<C> {
    pub async fn run(self, shutdown: CancellationToken) {
        let gateways = self.gateways;
        let sequencer = self.sequencer;
        let apply = |batch: &[LogDelivery]| {
            let entries: Vec<LogEntry> = batch.iter().map(|d| d.entry.clone()).collect();
            let (gateways, sequencer) = (gateways.clone(), sequencer.clone());
            async move {
                let (messages, removals) = placed(entries, sequencer.as_deref()).await?;
                gateways.publish(&events(messages, &removals)).await
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
