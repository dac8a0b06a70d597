//! The gateway side of the fan-out: one Redis subscriber connection per gateway process,
//! subscribed to the control channel and to the channels of the chats its sessions follow
//! (told through [`Interest`]), handing every event to the local hub in the order received.
//!
//! If the connection drops, events published meanwhile are gone: after resubscribing, the
//! subscriber calls `on_gap`, and the gateway tells its sessions to resume.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use harmony_core::events::GatewayEvent;
pub use harmony_core::events::Interest;
use harmony_core::ports::GatewayPublisher;
use harmony_core::ChatId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Keys;

pub struct GatewaySubscriber {
    pub client: redis::Client,
    pub keys: Keys,
    /// The local hub.
    pub local: Arc<dyn GatewayPublisher>,
    /// Called after a reconnect: events may have been missed.
    pub on_gap: Arc<dyn Fn() + Send + Sync>,
}

enum Ended {
    Shutdown,
    Lost(String),
}

impl GatewaySubscriber {
    pub async fn run(
        self,
        mut interest: mpsc::UnboundedReceiver<Interest>,
        shutdown: CancellationToken,
    ) {
        let mut chats: HashSet<ChatId> = HashSet::new();
        let mut delay = Duration::from_millis(50);
        let mut first = true;
        loop {
            match self
                .session(&mut chats, &mut interest, &shutdown, first)
                .await
            {
                Ended::Shutdown => return,
                Ended::Lost(why) => {
                    tracing::warn!(error = %why, "gateway subscriber lost Redis; reconnecting");
                    first = false;
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One connection's life: subscribe to everything needed, then relay until it drops.
    async fn session(
        &self,
        chats: &mut HashSet<ChatId>,
        interest: &mut mpsc::UnboundedReceiver<Interest>,
        shutdown: &CancellationToken,
        first: bool,
    ) -> Ended {
        let pubsub = match self.client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut channels = vec![self.keys.control_channel()];
        channels.extend(chats.iter().map(|c| self.keys.chat_channel(*c)));
        if let Err(e) = sink.subscribe(&channels).await {
            return Ended::Lost(e.to_string());
        }
        if !first {
            (self.on_gap)();
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ended::Shutdown,
                change = interest.recv() => {
                    let result = match change {
                        None => return Ended::Shutdown,
                        Some(Interest::Follow(chat)) => {
                            if !chats.insert(chat) { continue }
                            sink.subscribe(self.keys.chat_channel(chat)).await
                        }
                        Some(Interest::Drop(chat)) => {
                            if !chats.remove(&chat) { continue }
                            sink.unsubscribe(self.keys.chat_channel(chat)).await
                        }
                        Some(Interest::Barrier(done)) => {
                            // Every subscribe before it was confirmed by Redis (each awaited).
                            let _ = done.send(());
                            continue;
                        }
                    };
                    if let Err(e) = result {
                        return Ended::Lost(e.to_string());
                    }
                }
                message = stream.next() => {
                    let Some(message) = message else { return Ended::Lost("stream ended".into()) };
                    let payload: Vec<u8> = message.get_payload_bytes().to_vec();
                    match serde_json::from_slice::<GatewayEvent>(&payload) {
                        Ok(event) => {
                            // The local hub never fails; an error here would be a bug.
                            if let Err(e) = self.local.publish(std::slice::from_ref(&event)).await {
                                tracing::error!(error = %e, "local hub refused an event");
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "undecodable gateway event on Redis"),
                    }
                }
            }
        }
    }
}
