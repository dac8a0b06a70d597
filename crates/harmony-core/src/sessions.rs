//! Ended sessions, as this process knows them. An access token carries its session (the refresh
//! token family) as `sid`; a token whose session is here is refused at once, although its
//! signature and expiry are fine. The set is filled by this process's own revocations as they
//! happen and by the store's record of every node's (read a few times a second by the edge), and
//! it forgets a session once no access token of it can still be valid.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::ports::{Revocation, SessionStore, StoreResult};

/// How far back a poll reads again, so a revocation committed late (its time was taken before
/// a newer one's, but it became visible after) is not missed.
pub const POLL_OVERLAP: Duration = Duration::from_secs(10);

/// Margin added to the access tokens' lifetime before a revocation is forgotten: covers the
/// token check's leeway and clocks that differ a little between nodes.
const KEEP_MARGIN: Duration = Duration::from_secs(60);

pub struct RevokedSessions {
    /// Revoked family → when it was revoked.
    set: RwLock<HashMap<Uuid, OffsetDateTime>>,
    /// How long a revocation is kept: the access tokens' lifetime and a margin.
    keep: Duration,
    /// Told each newly known revocation, so live WebSockets of that session are closed.
    news: broadcast::Sender<Uuid>,
}

impl RevokedSessions {
    /// A set for access tokens that live `access_ttl`.
    pub fn new(access_ttl: Duration) -> Self {
        Self {
            set: RwLock::default(),
            keep: access_ttl + KEEP_MARGIN,
            news: broadcast::channel(1024).0,
        }
    }

    pub fn is_revoked(&self, family: Uuid) -> bool {
        self.set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(&family)
    }

    /// Records a revocation; returns whether it was new (then listeners are told).
    pub fn insert(&self, revocation: Revocation) -> bool {
        let fresh = self
            .set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(revocation.family, revocation.at)
            .is_none();
        if fresh {
            // Nobody listening (no gateway role) is fine.
            let _ = self.news.send(revocation.family);
        }
        fresh
    }

    /// Newly known revocations, as they come.
    pub fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.news.subscribe()
    }

    /// Forgets revocations that no valid access token can name any more; returns how many.
    pub fn prune(&self, now: OffsetDateTime) -> usize {
        let oldest = now - self.keep;
        let mut set = self
            .set
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = set.len();
        set.retain(|_, at| *at >= oldest);
        before - set.len()
    }

    pub fn len(&self) -> usize {
        self.set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads the store's revocations from `since` on (`None`: every one that may still matter,
    /// at start) and records them. Returns where the next poll starts: the newest revocation
    /// seen, less [`POLL_OVERLAP`] (times are the store's clock, so nodes' clocks do not matter).
    pub async fn poll(
        &self,
        store: &dyn SessionStore,
        since: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> StoreResult<OffsetDateTime> {
        let since = since.unwrap_or(now - self.keep);
        let found = store.revocations_since(since).await?;
        let newest = found.iter().map(|r| r.at).max();
        for revocation in found {
            self.insert(revocation);
        }
        Ok(newest.map_or(since, |at| (at - POLL_OVERLAP).max(since)))
    }

    /// How long the store must keep a revocation.
    pub fn keep(&self) -> Duration {
        self.keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_are_known_once_and_forgotten_after_the_tokens_expire() {
        let set = RevokedSessions::new(Duration::from_secs(900));
        let mut news = set.subscribe();
        let t0 = crate::now();
        let family = Uuid::new_v4();
        assert!(!set.is_revoked(family));
        assert!(set.insert(Revocation { family, at: t0 }));
        assert!(!set.insert(Revocation { family, at: t0 }), "known already");
        assert!(set.is_revoked(family));
        assert_eq!(news.try_recv().ok(), Some(family));
        assert!(news.try_recv().is_err(), "told once");
        assert_eq!(
            set.prune(t0 + Duration::from_secs(900)),
            0,
            "a token may live"
        );
        assert_eq!(set.prune(t0 + Duration::from_secs(961)), 1);
        assert!(!set.is_revoked(family));
    }
}
