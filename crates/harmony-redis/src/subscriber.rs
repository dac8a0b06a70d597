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

/// Interest changes taken from the queue together, netted against what is subscribed.
#[derive(Default)]
struct Changes {
    follow: HashSet<ChatId>,
    drop: HashSet<ChatId>,
    barriers: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Changes {
    fn add(&mut self, change: Interest, chats: &mut HashSet<ChatId>) {
        match change {
            Interest::Follow(chat) => {
                if chats.insert(chat) && !self.drop.remove(&chat) {
                    self.follow.insert(chat);
                }
            }
            Interest::Drop(chat) => {
                if chats.remove(&chat) && !self.follow.remove(&chat) {
                    self.drop.insert(chat);
                }
            }
            Interest::Barrier(done) => self.barriers.push(done),
        }
    }

    /// Subscribes and unsubscribes (each awaited: Redis confirmed it), then releases the
    /// barriers, which were all sent after the changes before them.
    async fn apply(self, sink: &mut redis::aio::PubSubSink, keys: &Keys) -> redis::RedisResult<()> {
        let channels = |set: &HashSet<ChatId>| -> Vec<String> {
            set.iter().map(|c| keys.chat_channel(*c)).collect()
        };
        if !self.follow.is_empty() {
            sink.subscribe(channels(&self.follow)).await?;
        }
        if !self.drop.is_empty() {
            sink.unsubscribe(channels(&self.drop)).await?;
        }
        for done in self.barriers {
            let _ = done.send(());
        }
        Ok(())
    }
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
                    let Some(first) = change else { return Ended::Shutdown };
                    // Everything waiting is applied together: one SUBSCRIBE and one UNSUBSCRIBE
                    // for a burst of sessions (a gateway taking over another's clients), not a
                    // round trip per chat.
                    let mut batch = Changes::default();
                    batch.add(first, chats);
                    while let Ok(next) = interest.try_recv() {
                        batch.add(next, chats);
                    }
                    if let Err(e) = batch.apply(&mut sink, &self.keys).await {
                        return Ended::Lost(e.to_string());
                    }
                }
                message = stream.next() => {
                    let Some(message) = message else { return Ended::Lost("stream ended".into()) };
                    let payload: Vec<u8> = message.get_payload_bytes().to_vec();
                    match harmony_protocol::gateway::decode_event(&payload) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_changes_nets_out_against_what_is_subscribed() {
        let (a, b, c) = (ChatId::new(), ChatId::new(), ChatId::new());
        let mut chats = HashSet::from([c]);
        let mut batch = Changes::default();
        let (done, _wait) = tokio::sync::oneshot::channel();
        for change in [
            Interest::Follow(a),
            Interest::Follow(a),
            Interest::Follow(b),
            Interest::Drop(b),
            Interest::Drop(c),
            Interest::Follow(c),
            Interest::Barrier(done),
        ] {
            batch.add(change, &mut chats);
        }
        assert_eq!(
            batch.follow,
            HashSet::from([a]),
            "b came and went; c never left"
        );
        assert!(batch.drop.is_empty());
        assert_eq!(batch.barriers.len(), 1);
        assert_eq!(chats, HashSet::from([a, c]));
    }
}
