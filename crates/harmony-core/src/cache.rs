//! In-process caches for one node: memberships (the projector drops entries when membership
//! changes) and users. Both bounded, so a node serving many chats and users never
//! grows them without limit.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::model::{Role, User};
use crate::ports::MembershipCache;
use crate::{ChatId, UserId};

/// Past this many entries the cache starts over: cheap, and correct (it is only a cache).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct InProcessMembershipCache {
    entries: Mutex<Entries>,
}

/// The entries and a generation that every invalidation bumps (see [`MembershipCache::ticket`]).
#[derive(Default)]
struct Entries {
    map: HashMap<(ChatId, UserId), Option<Role>>,
    chats_of: HashMap<UserId, Vec<ChatId>>,
    generation: u64,
}

impl InProcessMembershipCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl MembershipCache for InProcessMembershipCache {
    async fn get(&self, chat: ChatId, user: UserId) -> Option<Option<Role>> {
        self.entries().map.get(&(chat, user)).copied()
    }

    async fn ticket(&self) -> u64 {
        self.entries().generation
    }

    async fn put(&self, chat: ChatId, user: UserId, role: Option<Role>, ticket: u64) {
        let mut entries = self.entries();
        if entries.generation != ticket {
            return;
        }
        if entries.map.len() >= MAX_ENTRIES {
            entries.map.clear();
        }
        entries.map.insert((chat, user), role);
    }

    async fn chats_of(&self, user: UserId) -> Option<Vec<ChatId>> {
        self.entries().chats_of.get(&user).cloned()
    }

    async fn put_chats_of(&self, user: UserId, chats: &[ChatId], ticket: u64) {
        let mut entries = self.entries();
        if entries.generation != ticket {
            return;
        }
        if entries.chats_of.len() >= MAX_ENTRIES {
            entries.chats_of.clear();
        }
        entries.chats_of.insert(user, chats.to_vec());
    }

    async fn invalidate_member(&self, chat: ChatId, user: UserId) {
        let mut entries = self.entries();
        entries.generation += 1;
        entries.map.remove(&(chat, user));
        entries.chats_of.remove(&user);
    }

    async fn invalidate_chat(&self, chat: ChatId, members: &[UserId]) {
        let mut entries = self.entries();
        entries.generation += 1;
        entries.map.retain(|(c, _), _| *c != chat);
        for user in members {
            entries.chats_of.remove(user);
        }
    }
}

/// Users by id, so a send (its author) and a WebSocket connect (its user) do not read the
/// account every time. A username and display name never change once the account exists (no
/// port changes them), so an entry cannot go stale; a rename, if one is ever added, must clear
/// it through its event.
#[derive(Default)]
pub struct UserCache {
    entries: Mutex<HashMap<UserId, User>>,
}

impl UserCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, User>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, user: UserId) -> Option<User> {
        self.entries().get(&user).cloned()
    }

    pub fn put(&self, user: User) {
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(user.id, user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_kept_until_the_cache_is_full() {
        let cache = UserCache::default();
        let author = |i: usize| User {
            id: UserId::new(),
            username: crate::values::Username::from_trusted(format!("user{i}")),
            display_name: crate::values::DisplayName::from_trusted(format!("User {i}")),
            created_at: crate::now(),
        };
        let first = author(0);
        cache.put(first.clone());
        assert_eq!(cache.get(first.id), Some(first.clone()));
        assert_eq!(cache.get(UserId::new()), None);
        for i in 1..MAX_ENTRIES {
            cache.put(author(i));
        }
        assert_eq!(
            cache.get(first.id),
            Some(first.clone()),
            "dropped before full"
        );
        cache.put(author(MAX_ENTRIES));
        assert_eq!(cache.get(first.id), None, "a full cache starts over");
    }

    #[tokio::test]
    async fn invalidation_drops_members_and_chats() {
        let cache = InProcessMembershipCache::default();
        let (chat, other_chat, user) = (ChatId::new(), ChatId::new(), UserId::new());
        let ticket = cache.ticket().await;
        cache.put(chat, user, Some(Role::Member), ticket).await;
        cache.put(other_chat, user, None, ticket).await;
        assert_eq!(cache.get(chat, user).await, Some(Some(Role::Member)));
        assert_eq!(cache.get(other_chat, user).await, Some(None));
        cache.invalidate_member(chat, user).await;
        assert_eq!(cache.get(chat, user).await, None);
        cache.invalidate_chat(other_chat, &[]).await;
        assert_eq!(cache.get(other_chat, user).await, None);

        let (ann, bob) = (UserId::new(), UserId::new());
        let ticket = cache.ticket().await;
        cache.put_chats_of(ann, &[chat, other_chat], ticket).await;
        cache.put_chats_of(bob, &[chat], ticket).await;
        assert_eq!(cache.chats_of(ann).await, Some(vec![chat, other_chat]));
        cache.invalidate_member(other_chat, ann).await;
        assert_eq!(
            cache.chats_of(ann).await,
            None,
            "a membership change drops the list"
        );
        assert_eq!(cache.chats_of(bob).await, Some(vec![chat]));
        cache.invalidate_chat(chat, &[bob]).await;
        assert_eq!(
            cache.chats_of(bob).await,
            None,
            "a deleted chat drops its members' lists"
        );
        let stale = cache.ticket().await;
        cache.invalidate_member(chat, bob).await;
        cache.put_chats_of(bob, &[chat], stale).await;
        assert_eq!(
            cache.chats_of(bob).await,
            None,
            "a list read before a change is not kept"
        );
    }

    #[tokio::test]
    async fn a_read_that_raced_an_invalidation_is_not_cached() {
        let cache = InProcessMembershipCache::default();
        let (chat, user) = (ChatId::new(), UserId::new());
        let ticket = cache.ticket().await;
        // ...the reader reads "member" from the store; meanwhile the member is removed:
        cache.invalidate_member(chat, user).await;
        cache.put(chat, user, Some(Role::Member), ticket).await;
        assert_eq!(
            cache.get(chat, user).await,
            None,
            "a stale membership was cached"
        );
    }
}
