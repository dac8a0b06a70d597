//! Fan-out: message log → gateways. Each message goes out with `prev_seq` (the previous message's
//! `seq` in its chat) so a client can see a gap. Publishing is at-least-once; sessions drop a
//! message whose `seq` they already delivered.

use std::sync::Arc;

use harmony_core::events::GatewayEvent;
use harmony_core::ports::{GatewayPublisher, LogConsumer, LogDelivery};
use tokio_util::sync::CancellationToken;

use crate::source::{consume, Log};
use crate::OnProcessed;

pub struct Fanout<C> {
    pub consumer: C,
    pub gateways: Arc<dyn GatewayPublisher>,
    pub on_processed: OnProcessed,
}

impl<C: LogConsumer + 'static> Fanout<C> {
    pub async fn run(self, shutdown: CancellationToken) {
        let gateways = self.gateways;
        let apply = |batch: &[LogDelivery]| {
            let events: Vec<GatewayEvent> = batch
                .iter()
                .map(|d| GatewayEvent::Message {
                    prev_seq: d.prev_seq,
                    message: d.message.clone(),
                })
                .collect();
            let gateways = gateways.clone();
            async move { gateways.publish(&events).await }
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
