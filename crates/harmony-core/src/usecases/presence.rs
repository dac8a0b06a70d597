//! Presence as a use case: recording what a node's sessions show, telling those allowed to see
//! a change, and answering who is online to those allowed to ask.
//!
//! Who sees a user: their friends, and the members of the chats they share that have at most
//! `max_chat_members` members. A big chat's members are not told of each other (that would cost
//! O(members²) frames when everyone connects at once); a client shows presence there for the
//! members on screen, asked with [`PresenceCases::of_users`].

use super::Ports;
use crate::events::GatewayEvent;
use crate::ports::{StoreResult, Upkeep};
use crate::presence::{Presence, Status};
use crate::UserId;

/// Most users one `of_users` call answers for.
pub const PRESENCE_ASK_MAX: usize = 100;

#[derive(Clone)]
pub struct PresenceCases {
    ports: Ports,
    max_chat_members: u32,
}

impl PresenceCases {
    pub(super) fn new(ports: Ports, max_chat_members: u32) -> Self {
        Self {
            ports,
            max_chat_members,
        }
    }

    /// Records what this node's sessions show of `user`; tells everyone allowed to see it when
    /// the user's presence changed.
    pub async fn set(&self, user: UserId, here: Status) -> StoreResult<()> {
        if let Some(change) = self.ports.presence.set(user, here).await? {
            self.announce(change).await?;
        }
        Ok(())
    }

    /// Keeps this node's word alive in the book and announces what the book cleared of nodes
    /// that stopped. True when the book had forgotten this node: the caller says again what its
    /// sessions show.
    pub async fn upkeep(&self) -> StoreResult<bool> {
        let Upkeep { changes, forgot_us } = self.ports.presence.upkeep().await?;
        for change in changes {
            self.announce(change).await?;
        }
        Ok(forgot_us)
    }

    async fn announce(&self, change: Presence) -> StoreResult<()> {
        let audience = self
            .ports
            .chats
            .presence_peers(change.user_id, self.max_chat_members)
            .await?;
        self.ports
            .notify(&[GatewayEvent::Presence {
                presence: change,
                audience,
            }])
            .await;
        Ok(())
    }

    /// The presence of everyone `viewer` is shown live: what a client loads once its socket is
    /// ready, then keeps up to date from `presence` frames.
    pub async fn of_peers(&self, viewer: UserId) -> StoreResult<Vec<Presence>> {
        let peers = self
            .ports
            .chats
            .presence_peers(viewer, self.max_chat_members)
            .await?;
        self.ports.presence.get(&peers).await
    }

    /// The presence of `users` (at most [`PRESENCE_ASK_MAX`], the caller checks) as `viewer`
    /// may see it: friends and anyone sharing a chat with the viewer, of any size. Anyone else
    /// is answered as offline and never seen, without a look at their presence, so the answer
    /// and its timing say nothing about them.
    pub async fn of_users(&self, viewer: UserId, users: &[UserId]) -> StoreResult<Vec<Presence>> {
        let known: std::collections::HashSet<UserId> = self
            .ports
            .chats
            .acquainted(viewer, users)
            .await?
            .into_iter()
            .chain(std::iter::once(viewer))
            .collect();
        let visible: Vec<UserId> = users
            .iter()
            .copied()
            .filter(|id| known.contains(id))
            .collect();
        let mut found = self.ports.presence.get(&visible).await?.into_iter();
        Ok(users
            .iter()
            .map(|id| {
                if known.contains(id) {
                    found.next().unwrap_or_else(|| Presence::unknown(*id))
                } else {
                    Presence::unknown(*id)
                }
            })
            .collect())
    }
}
