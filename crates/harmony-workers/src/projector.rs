//! The projector: outbox events → effects. It drops cached memberships, tells the gateways about
//! membership changes (they subscribe, unsubscribe and send the frames), and purges the history
//! of deleted chats. Every effect is idempotent, so replaying an event is harmless.

use std::sync::Arc;

use harmony_core::events::{DomainEvent, GatewayEvent, StoredEvent};
use harmony_core::ports::{
    EventConsumer, GatewayPublisher, HistoryStore, MembershipCache, StoreResult,
};
use tokio_util::sync::CancellationToken;

use crate::source::{consume, Events};
use crate::OnProcessed;

/// Messages deleted per statement when purging a chat, so a huge chat never holds a long lock.
const PURGE_BATCH: u32 = 500;

pub struct Projector<C> {
    pub consumer: C,
    pub gateways: Arc<dyn GatewayPublisher>,
    pub cache: Arc<dyn MembershipCache>,
    pub history: Arc<dyn HistoryStore>,
    pub on_processed: OnProcessed,
}

#[derive(Clone)]
struct Effects {
    gateways: Arc<dyn GatewayPublisher>,
    cache: Arc<dyn MembershipCache>,
    history: Arc<dyn HistoryStore>,
}

impl<C: EventConsumer + 'static> Projector<C> {
    pub async fn run(self, shutdown: CancellationToken) {
        let effects = Effects {
            gateways: self.gateways,
            cache: self.cache,
            history: self.history,
        };
        let apply = |batch: &[StoredEvent]| {
            let effects = effects.clone();
            let events: Vec<DomainEvent> = batch.iter().map(|e| e.event.clone()).collect();
            async move {
                for event in &events {
                    effects.apply(event).await?;
                }
                Ok(())
            }
        };
        consume(
            "projector",
            Events(self.consumer),
            apply,
            self.on_processed,
            shutdown,
        )
        .await;
    }
}

impl Effects {
    async fn apply(&self, event: &DomainEvent) -> StoreResult<()> {
        match event {
            DomainEvent::ChatCreated { chat, members } => {
                let mut frames = Vec::with_capacity(members.len());
                for user in members {
                    self.cache.invalidate_member(chat.id, user.id).await;
                    frames.push(GatewayEvent::MemberAdded {
                        chat_id: chat.id,
                        user: user.clone(),
                    });
                }
                self.gateways.publish(&frames).await
            }
            DomainEvent::ChatRenamed { chat } => {
                let frame = GatewayEvent::ChatUpdated { chat: chat.clone() };
                self.gateways.publish(&[frame]).await
            }
            DomainEvent::ChatDeleted {
                chat_id,
                member_ids,
            } => {
                self.cache.invalidate_chat(*chat_id).await;
                let frame = GatewayEvent::ChatDeleted {
                    chat_id: *chat_id,
                    member_ids: member_ids.clone(),
                };
                self.gateways.publish(&[frame]).await?;
                while self.history.purge_chat(*chat_id, PURGE_BATCH).await? > 0 {}
                Ok(())
            }
            DomainEvent::MemberAdded { chat_id, user, .. } => {
                self.cache.invalidate_member(*chat_id, user.id).await;
                let frame = GatewayEvent::MemberAdded {
                    chat_id: *chat_id,
                    user: user.clone(),
                };
                self.gateways.publish(&[frame]).await
            }
            DomainEvent::MemberRemoved { chat_id, user_id } => {
                self.cache.invalidate_member(*chat_id, *user_id).await;
                let frame = GatewayEvent::MemberRemoved {
                    chat_id: *chat_id,
                    user_id: *user_id,
                };
                self.gateways.publish(&[frame]).await
            }
            DomainEvent::UserCreated { .. }
            | DomainEvent::FriendshipCreated { .. }
            | DomainEvent::FriendshipRemoved { .. } => Ok(()),
        }
    }
}
