//! Presence: who is online, idle or offline, and the in-process book that keeps it on one node.
//!
//! A gateway counts its own sessions per user and tells the book what the user shows on that
//! node (`harmony-api/src/gateway/presence.rs`); the book combines every node's word into the
//! user's presence and says when it changed; the use case (`usecases::PresenceCases`) then tells
//! the people allowed to see it. A cluster's book is Redis (`harmony-redis`), where a node's word
//! counts only while the node keeps renewing it.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ports::{PresenceBook, StoreResult, Upkeep};
use crate::UserId;

/// What others see of a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Idle,
    Offline,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Idle => "idle",
            Self::Offline => "offline",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "online" => Some(Self::Online),
            "idle" => Some(Self::Idle),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }

    /// Two nodes' words about one user: online wins over idle, idle over offline.
    pub fn max(self, other: Self) -> Self {
        match (self, other) {
            (Self::Online, _) | (_, Self::Online) => Self::Online,
            (Self::Idle, _) | (_, Self::Idle) => Self::Idle,
            _ => Self::Offline,
        }
    }
}

/// What one session says about its user (the client's `presence` frame); a new session is
/// `Online`. An invisible session counts as none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shown {
    Online,
    Idle,
    Invisible,
}

/// How many of a user's sessions on one node show each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionCounts {
    pub online: u32,
    pub idle: u32,
    pub invisible: u32,
}

impl SessionCounts {
    pub fn add(&mut self, shown: Shown) {
        *self.slot(shown) += 1;
    }

    pub fn remove(&mut self, shown: Shown) {
        let slot = self.slot(shown);
        *slot = slot.saturating_sub(1);
    }

    fn slot(&mut self, shown: Shown) -> &mut u32 {
        match shown {
            Shown::Online => &mut self.online,
            Shown::Idle => &mut self.idle,
            Shown::Invisible => &mut self.invisible,
        }
    }

    /// What these sessions show together: online if one is, else idle if one is, else nothing
    /// (`Offline`: no session, or invisible ones only).
    pub fn status(&self) -> Status {
        if self.online > 0 {
            Status::Online
        } else if self.idle > 0 {
            Status::Idle
        } else {
            Status::Offline
        }
    }

    pub fn is_empty(&self) -> bool {
        self.online + self.idle + self.invisible == 0
    }
}

/// A user's presence as others see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    pub user_id: UserId,
    pub status: Status,
    /// When an offline user was last seen; `None` while online or idle, and when not known
    /// (not seen since the book was started, or since it forgot).
    pub last_seen: Option<OffsetDateTime>,
}

impl Presence {
    /// What is answered for someone not seen at all, and for someone the caller may not see.
    pub fn unknown(user_id: UserId) -> Self {
        Self {
            user_id,
            status: Status::Offline,
            last_seen: None,
        }
    }
}

/// One node's book: every session is in this process, so a user's word here is their presence.
#[derive(Default)]
pub struct InProcessPresence {
    users: Mutex<HashMap<UserId, Presence>>,
}

impl InProcessPresence {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, Presence>> {
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl PresenceBook for InProcessPresence {
    async fn set(&self, user: UserId, here: Status) -> StoreResult<Option<Presence>> {
        let mut users = self.users();
        let before = users
            .get(&user)
            .copied()
            .unwrap_or_else(|| Presence::unknown(user));
        if before.status == here {
            return Ok(None);
        }
        let now = (here == Status::Offline).then(crate::now);
        let after = Presence {
            user_id: user,
            status: here,
            last_seen: now,
        };
        users.insert(user, after);
        Ok(Some(after))
    }

    async fn get(&self, users: &[UserId]) -> StoreResult<Vec<Presence>> {
        let known = self.users();
        Ok(users
            .iter()
            .map(|id| {
                known
                    .get(id)
                    .copied()
                    .unwrap_or_else(|| Presence::unknown(*id))
            })
            .collect())
    }

    async fn upkeep(&self) -> StoreResult<Upkeep> {
        Ok(Upkeep::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_show_the_most_present_status_and_invisible_counts_as_none() {
        let mut counts = SessionCounts::default();
        assert_eq!(counts.status(), Status::Offline);
        counts.add(Shown::Invisible);
        assert_eq!(counts.status(), Status::Offline);
        assert!(!counts.is_empty());
        counts.add(Shown::Idle);
        assert_eq!(counts.status(), Status::Idle);
        counts.add(Shown::Online);
        assert_eq!(counts.status(), Status::Online);
        counts.remove(Shown::Online);
        counts.remove(Shown::Idle);
        counts.remove(Shown::Invisible);
        assert!(counts.is_empty());
        counts.remove(Shown::Online);
        assert!(counts.is_empty(), "a stray removal does not wrap");
        assert_eq!(Status::Idle.max(Status::Offline), Status::Idle);
        assert_eq!(Status::Idle.max(Status::Online), Status::Online);
    }

    #[tokio::test]
    async fn the_book_reports_changes_only_and_remembers_when_someone_left() -> StoreResult<()> {
        let book = InProcessPresence::default();
        let ann = UserId::new();
        assert_eq!(book.get(&[ann]).await?, vec![Presence::unknown(ann)]);
        let online = book.set(ann, Status::Online).await?;
        assert_eq!(
            online.map(|p| (p.status, p.last_seen)),
            Some((Status::Online, None))
        );
        assert_eq!(book.set(ann, Status::Online).await?, None);
        let gone = book.set(ann, Status::Offline).await?;
        assert_eq!(gone.map(|p| p.status), Some(Status::Offline));
        assert!(gone.is_some_and(|p| p.last_seen.is_some()));
        assert_eq!(
            book.get(&[ann]).await?,
            gone.into_iter().collect::<Vec<_>>()
        );
        Ok(())
    }
}
