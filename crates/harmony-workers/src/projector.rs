//! The projector: outbox events → effects. It drops cached memberships, tells the gateways about
//! membership changes (they subscribe, unsubscribe and send the frames), writes the chat's
//! timeline lines (a member added or removed, a rename: `Notice` entries of the chat's log), and
//! purges the history of deleted chats. Every effect is idempotent, so replaying an event is
//! harmless: a timeline line's `client_msg_id` is its event's id, so the log places it once.

use std::sync::Arc;

use harmony_core::events::{DomainEvent, GatewayEvent, StoredEvent};
use harmony_core::model::{Author, NewMessage, Notice};
use harmony_core::ports::{
    EventConsumer, EventPublisher, GatewayPublisher, HistoryStore, MembershipCache, MessageLog,
    StoreError, StoreResult, UserStore,
};
use harmony_core::values::{ClientMsgId, MessageContent};
use harmony_core::{ChatId, UserId};
use tokio_util::sync::CancellationToken;

use crate::source::{consume, Events};
use crate::OnProcessed;

/// Messages deleted per statement when purging a chat, so a huge chat never holds a long lock.
const PURGE_BATCH: u32 = 500;
/// Attempts at an event's effects before it is parked as a dead letter (when there is a
/// dead-letter topic; without one, the batch is retried until it works).
const MAX_ATTEMPTS: u32 = 5;

pub struct Projector<C> {
    pub consumer: C,
    pub gateways: Arc<dyn GatewayPublisher>,
    pub cache: Arc<dyn MembershipCache>,
    pub history: Arc<dyn HistoryStore>,
    pub on_processed: OnProcessed,
    /// Where events whose effects keep failing are parked, so the projector goes on.
    pub dead_letters: Option<Arc<dyn EventPublisher>>,
    /// Told of each dead letter, for metrics.
    pub on_dead_letter: OnProcessed,
    /// Where timeline lines go, and whose names they say.
    pub timeline: Timeline,
}

/// The chat's log and the users, for timeline lines.
#[derive(Clone)]
pub struct Timeline {
    pub log: Arc<dyn MessageLog>,
    pub users: Arc<dyn UserStore>,
}

#[derive(Clone)]
struct Effects {
    gateways: Arc<dyn GatewayPublisher>,
    cache: Arc<dyn MembershipCache>,
    history: Arc<dyn HistoryStore>,
    timeline: Timeline,
}

impl<C: EventConsumer + 'static> Projector<C> {
    pub async fn run(self, shutdown: CancellationToken) {
        let effects = Effects {
            gateways: self.gateways,
            cache: self.cache,
            history: self.history,
            timeline: self.timeline,
        };
        let dead_letters = self.dead_letters;
        let on_dead_letter = self.on_dead_letter;
        let apply = |batch: &[StoredEvent]| {
            let effects = effects.clone();
            let events = batch.to_vec();
            let dead_letters = dead_letters.clone();
            let on_dead_letter = on_dead_letter.clone();
            async move {
                for event in &events {
                    effects
                        .apply_or_park(event, dead_letters.as_deref(), &on_dead_letter)
                        .await?;
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
    /// Applies an event; with a dead-letter topic, an event that fails `MAX_ATTEMPTS` times is
    /// parked there (loudly) and the projector goes on.
    async fn apply_or_park(
        &self,
        event: &StoredEvent,
        dead_letters: Option<&dyn EventPublisher>,
        on_dead_letter: &OnProcessed,
    ) -> StoreResult<()> {
        let Some(dead_letters) = dead_letters else {
            return self.apply(event).await;
        };
        let mut attempt = 1;
        loop {
            match self.apply(event).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt >= MAX_ATTEMPTS => {
                    tracing::error!(event_id = %event.id, event_type = event.event.event_type(), error = %e,
                        attempts = attempt, "parking an event whose effects keep failing in the dead-letter topic");
                    dead_letters.publish(std::slice::from_ref(event)).await?;
                    on_dead_letter(1);
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(event_id = %event.id, error = %e, attempt, "event effects failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt.min(6)))
                        .await;
                    attempt += 1;
                }
            }
        }
    }

    async fn apply(&self, stored: &StoredEvent) -> StoreResult<()> {
        match &stored.event {
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
                self.gateways.publish(&[frame]).await?;
                let Some(name) = chat.name.clone() else {
                    return Ok(());
                };
                let said = format!("The group is now called “{name}”");
                let notice = Notice::Renamed { name };
                self.line(stored, chat.id, chat.owner_id, notice, said)
                    .await
            }
            DomainEvent::ChatDeleted {
                chat_id,
                member_ids,
            } => {
                self.cache.invalidate_chat(*chat_id, member_ids).await;
                let frame = GatewayEvent::ChatDeleted {
                    chat_id: *chat_id,
                    member_ids: member_ids.clone(),
                };
                self.gateways.publish(&[frame]).await?;
                while self
                    .history
                    .purge_chat(*chat_id, PURGE_BATCH, stored.id)
                    .await?
                    > 0
                {}
                Ok(())
            }
            DomainEvent::MemberAdded { chat_id, user, .. } => {
                self.cache.invalidate_member(*chat_id, user.id).await;
                let frame = GatewayEvent::MemberAdded {
                    chat_id: *chat_id,
                    user: user.clone(),
                };
                self.gateways.publish(&[frame]).await?;
                let said = format!("{} joined", user.display_name);
                let notice = Notice::MemberAdded { user: user.id };
                self.line(stored, *chat_id, user.id, notice, said).await
            }
            DomainEvent::MemberRemoved { chat_id, user_id } => {
                self.cache.invalidate_member(*chat_id, *user_id).await;
                let frame = GatewayEvent::MemberRemoved {
                    chat_id: *chat_id,
                    user_id: *user_id,
                };
                self.gateways.publish(&[frame]).await?;
                let Some(user) = self.timeline.users.user(*user_id).await? else {
                    return Ok(());
                };
                let said = format!("{} left", user.display_name);
                let notice = Notice::MemberRemoved { user: *user_id };
                self.line(stored, *chat_id, *user_id, notice, said).await
            }
            DomainEvent::UserCreated { .. }
            | DomainEvent::FriendshipCreated { .. }
            | DomainEvent::FriendshipRemoved { .. } => Ok(()),
        }
    }

    /// Appends a timeline line to the chat's log, keyed by its event: a replay finds the line
    /// placed the first time. `about` is the entry's author (the member it is about, or for a
    /// rename the owner).
    async fn line(
        &self,
        stored: &StoredEvent,
        chat: ChatId,
        about: UserId,
        notice: Notice,
        said: String,
    ) -> StoreResult<()> {
        let Some(author) = self.timeline.users.user(about).await? else {
            return Ok(());
        };
        let key = ClientMsgId::parse(&format!("event:{}", stored.id))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let content = MessageContent::parse(&said)
            .or_else(|_| MessageContent::parse("The chat changed"))
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut entry = NewMessage::text(chat, Author::from(&author), content, Some(key));
        entry.created_at = stored.created_at;
        entry.notice = Some(notice);
        self.timeline.log.append(entry).await.map(|_| ())
    }
}
