//! Use cases: what a request asks of Harmony, written once against the ports, the same on one
//! node and in a cluster. Each family has its own error type; only the HTTP edge maps them to
//! status codes.

mod accounts;
mod changes;
mod chats;
mod contact;
mod friends;
mod messages;
mod presence;

use std::sync::Arc;
use std::time::Duration;

pub use accounts::{Accounts, AuthError};
pub use changes::mentioned;
pub use chats::{ChatCursor, ChatError, Chats, NewChat};
pub use contact::Contact;
pub use friends::{FriendError, Friends};
pub use messages::{keep_contiguous, Messages, HISTORY_PAGE_MAX};
pub use presence::{PresenceCases, PRESENCE_ASK_MAX};

use crate::cache::UserCache;
use crate::model::{Role, User};
use crate::ports::{
    ChatStore, FriendStore, GatewayPublisher, HistoryStore, MembershipCache, MessageLog,
    PasswordHasher, PresenceBook, RateLimiter, RateRule, RecentMessages, SessionStore, StoreResult,
    UserStore,
};
use crate::{ChatId, UserId};

/// Limits and lifetimes the use cases enforce; every one comes from configuration.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Login attempts per account and address: a stranger who guesses wrong locks out only
    /// themselves, not the owner signing in from elsewhere.
    pub login_rule: RateRule,
    /// Login attempts per address, whatever the accounts (guessing across many accounts).
    pub login_address_rule: RateRule,
    /// Registrations per address.
    pub register_rule: RateRule,
    /// Messages sent per user.
    pub send_rule: RateRule,
    /// How long a refresh token lives.
    pub refresh_ttl: Duration,
    /// How long a rotated refresh token stays usable (racing tabs).
    pub refresh_grace: Duration,
    /// How long an access token lives: how long a revoked session must be remembered.
    pub access_ttl: Duration,
    /// Live sessions (refresh-token families) a user may have; a new one past it ends the
    /// oldest.
    pub max_sessions_per_user: u32,
    /// Members a group may have.
    pub max_group_members: u32,
    /// Chats (groups, and direct chats not yet existing) a user may create.
    pub chat_create_rule: RateRule,
    /// Members a user may add to groups.
    pub member_add_rule: RateRule,
    /// Whom a user may bring into a chat with them.
    pub contact: Contact,
    /// Chats of at most this many members show their members' presence to each other; bigger
    /// ones only on request, for the members on screen.
    pub presence_max_chat_members: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            login_rule: RateRule {
                burst: 10,
                per_second: 0.1,
            },
            login_address_rule: RateRule {
                burst: 50,
                per_second: 0.5,
            },
            register_rule: RateRule {
                burst: 10,
                per_second: 10.0 / 3600.0,
            },
            send_rule: RateRule {
                burst: 60,
                per_second: 10.0,
            },
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_grace: Duration::from_secs(10),
            access_ttl: Duration::from_secs(900),
            max_sessions_per_user: 20,
            max_group_members: 1000,
            chat_create_rule: RateRule {
                burst: 20,
                per_second: 60.0 / 3600.0,
            },
            member_add_rule: RateRule {
                burst: 100,
                per_second: 600.0 / 3600.0,
            },
            contact: Contact::default(),
            presence_max_chat_members: 100,
        }
    }
}

/// Every port a use case may need: the single place where a shape's adapters are handed in.
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub friends: Arc<dyn FriendStore>,
    pub chats: Arc<dyn ChatStore>,
    pub log: Arc<dyn MessageLog>,
    pub recent: Arc<dyn RecentMessages>,
    pub history: Arc<dyn HistoryStore>,
    pub membership_cache: Arc<dyn MembershipCache>,
    pub limiter: Arc<dyn RateLimiter>,
    pub hasher: Arc<dyn PasswordHasher>,
    /// Live notices to sessions on every gateway (typing, a user's own notices): best effort,
    /// never stored. One node: its hub; a cluster: Redis.
    pub notices: Arc<dyn GatewayPublisher>,
    /// Who is online where. One node: in process; a cluster: Redis.
    pub presence: Arc<dyn PresenceBook>,
}

impl Ports {
    /// Tells live sessions. Best effort: a notice that cannot go out is dropped (the adapter
    /// logs it) and a client finds the same state on its next read.
    pub(crate) async fn notify(&self, events: &[crate::events::GatewayEvent]) {
        let _ = self.notices.publish(events).await;
    }
}

/// The use cases, built once per process and shared by every handler.
#[derive(Clone)]
pub struct UseCases {
    pub accounts: Accounts,
    pub friends: Friends,
    pub chats: Chats,
    pub messages: Messages,
    pub presence: PresenceCases,
}

impl UseCases {
    pub fn new(ports: Ports, policy: Policy) -> Self {
        let revoked = Arc::new(crate::sessions::RevokedSessions::new(policy.access_ttl));
        let policy = Arc::new(policy);
        let members = MembershipCheck {
            chats: ports.chats.clone(),
            cache: ports.membership_cache.clone(),
        };
        let users = UserLookup {
            store: ports.users.clone(),
            cache: Arc::default(),
        };
        Self {
            accounts: Accounts::new(ports.clone(), policy.clone(), users.clone(), revoked),
            friends: Friends::new(ports.clone()),
            chats: Chats::new(ports.clone(), policy.clone(), members.clone()),
            presence: PresenceCases::new(ports.clone(), policy.presence_max_chat_members),
            messages: Messages::new(ports, policy, members, users),
        }
    }
}

/// Users by id through the process's [`UserCache`] (users never change, so it is never stale):
/// every send needs its author and every WebSocket connect its user.
#[derive(Clone)]
pub struct UserLookup {
    store: Arc<dyn UserStore>,
    cache: Arc<UserCache>,
}

impl UserLookup {
    pub async fn get(&self, id: UserId) -> StoreResult<Option<User>> {
        if let Some(user) = self.cache.get(id) {
            return Ok(Some(user));
        }
        let user = self.store.user(id).await?;
        if let Some(user) = &user {
            self.cache.put(user.clone());
        }
        Ok(user)
    }
}

/// Membership lookups through the cache: the authorization every chat use case starts with.
#[derive(Clone)]
pub struct MembershipCheck {
    chats: Arc<dyn ChatStore>,
    cache: Arc<dyn MembershipCache>,
}

impl MembershipCheck {
    pub async fn role(&self, chat: ChatId, user: UserId) -> StoreResult<Option<Role>> {
        if let Some(cached) = self.cache.get(chat, user).await {
            return Ok(cached);
        }
        let ticket = self.cache.ticket().await;
        let role = self.chats.role_of(chat, user).await?;
        self.cache.put(chat, user, role, ticket).await;
        Ok(role)
    }

    /// The ids of the user's chats, through the cache.
    pub async fn chat_ids(&self, user: UserId) -> StoreResult<Vec<ChatId>> {
        if let Some(cached) = self.cache.chats_of(user).await {
            return Ok(cached);
        }
        let ticket = self.cache.ticket().await;
        let chats = self.chats.chat_ids(user).await?;
        self.cache.put_chats_of(user, &chats, ticket).await;
        Ok(chats)
    }

    /// Drops what this node cached about a member, right after it changed the membership.
    pub async fn forget(&self, chat: ChatId, user: UserId) {
        self.cache.invalidate_member(chat, user).await;
    }

    pub async fn forget_chat(&self, chat: ChatId, members: &[UserId]) {
        self.cache.invalidate_chat(chat, members).await;
    }
}
