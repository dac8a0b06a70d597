//! An in-process membership cache for one node. The projector drops entries when membership
//! changes; bounded, so a node serving many chats never grows it without limit.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::model::Role;
use crate::ports::MembershipCache;
use crate::{ChatId, UserId};

/// Past this many entries the cache starts over: cheap, and correct (it is only a cache).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct InProcessMembershipCache {
    entries: Mutex<HashMap<(ChatId, UserId), Option<Role>>>,
}

impl InProcessMembershipCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<(ChatId, UserId), Option<Role>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl MembershipCache for InProcessMembershipCache {
    async fn get(&self, chat: ChatId, user: UserId) -> Option<Option<Role>> {
        self.entries().get(&(chat, user)).copied()
    }

    async fn put(&self, chat: ChatId, user: UserId, role: Option<Role>) {
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert((chat, user), role);
    }

    async fn invalidate_member(&self, chat: ChatId, user: UserId) {
        self.entries().remove(&(chat, user));
    }

    async fn invalidate_chat(&self, chat: ChatId) {
        self.entries().retain(|(c, _), _| *c != chat);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn invalidation_drops_members_and_chats() {
        let cache = InProcessMembershipCache::default();
        let (chat, other_chat, user) = (ChatId::new(), ChatId::new(), UserId::new());
        cache.put(chat, user, Some(Role::Member)).await;
        cache.put(other_chat, user, None).await;
        assert_eq!(cache.get(chat, user).await, Some(Some(Role::Member)));
        assert_eq!(cache.get(other_chat, user).await, Some(None));
        cache.invalidate_member(chat, user).await;
        assert_eq!(cache.get(chat, user).await, None);
        cache.invalidate_chat(other_chat).await;
        assert_eq!(cache.get(other_chat, user).await, None);
    }
}
