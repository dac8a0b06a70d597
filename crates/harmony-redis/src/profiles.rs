//! Cache-aside for user profiles, in front of the state store: history reads re-hydrate message
//! authors through it, so a page of history costs Redis lookups, not database queries. Profiles
//! change only by their owner's own writes; entries expire after a short time.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use harmony_core::model::{Account, User};
use harmony_core::ports::{StoreResult, UserStore};
use harmony_core::values::Username;
use harmony_core::UserId;
use redis::aio::ConnectionManager;

use crate::Keys;

pub struct RedisProfiles {
    conn: ConnectionManager,
    keys: Keys,
    ttl: Duration,
    store: Arc<dyn UserStore>,
}

impl RedisProfiles {
    pub fn new(
        conn: ConnectionManager,
        keys: Keys,
        ttl: Duration,
        store: Arc<dyn UserStore>,
    ) -> Self {
        Self {
            conn,
            keys,
            ttl,
            store,
        }
    }
}

#[async_trait]
impl UserStore for RedisProfiles {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        self.store.create_account(account).await
    }

    async fn account_by_username(&self, username: &Username) -> StoreResult<Option<Account>> {
        // Carries the password hash: never cached.
        self.store.account_by_username(username).await
    }

    /// A cache that cannot be reached is a miss: the store answers.
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let mut conn = self.conn.clone();
        let key = self.keys.profile(id);
        let cached: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .ok()
            .flatten();
        if let Some(user) = cached.and_then(|json| serde_json::from_str::<User>(&json).ok()) {
            return Ok(Some(user));
        }
        let user = self.store.user(id).await?;
        if let Some(found) = &user {
            if let Ok(json) = serde_json::to_string(found) {
                let _: Result<(), _> = redis::cmd("SET")
                    .arg(&key)
                    .arg(json)
                    .arg("EX")
                    .arg(self.ttl.as_secs().max(1))
                    .query_async(&mut conn)
                    .await;
            }
        }
        Ok(user)
    }

    /// The hash is never cached: straight to the store.
    async fn set_password_hash(&self, user: UserId, hash: &str) -> StoreResult<bool> {
        self.store.set_password_hash(user, hash).await
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        self.store.search_users(prefix, limit).await
    }
}
