//! The history sink: message log → message store. Upserts by message id, so a batch replayed
//! after a crash changes nothing.

use std::sync::Arc;

use harmony_core::model::Message;
use harmony_core::ports::{HistoryStore, LogConsumer};
use tokio_util::sync::CancellationToken;

use crate::source::{consume, Log};
use crate::OnProcessed;

pub struct Sink<C> {
    pub consumer: C,
    pub history: Arc<dyn HistoryStore>,
    pub on_processed: OnProcessed,
}

impl<C: LogConsumer + 'static> Sink<C> {
    pub async fn run(self, shutdown: CancellationToken) {
        let history = self.history;
        let apply = |batch: &[harmony_core::ports::LogDelivery]| {
            let messages: Vec<Message> = batch.iter().map(|d| d.message.clone()).collect();
            let history = history.clone();
            async move { history.upsert_messages(&messages).await }
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
