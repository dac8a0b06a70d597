//! Accounts and sessions: registration, login, refresh-token rotation with reuse detection.
//! Token bytes are made and hashed at the edge; only hashes come in here.

use std::sync::Arc;
use std::time::Duration;

use super::{Policy, Ports, UserLookup};
use crate::model::{Account, User};
use crate::ports::{RefreshRecord, StoreError};
use crate::refresh::{decide, RefreshDecision};
use crate::values::{DisplayName, Password, Username};
use crate::UserId;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("username taken")]
    UsernameTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A rotated refresh token came back after its grace period; its family is now revoked.
    #[error("refresh token reused")]
    RefreshTokenReused,
    #[error("too many attempts")]
    RateLimited(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct Accounts {
    ports: Ports,
    policy: Arc<Policy>,
    users: UserLookup,
}

impl Accounts {
    pub(super) fn new(ports: Ports, policy: Arc<Policy>, users: UserLookup) -> Self {
        Self {
            ports,
            policy,
            users,
        }
    }

    pub async fn register(
        &self,
        username: Username,
        password: Password,
        display_name: Option<DisplayName>,
    ) -> Result<User, AuthError> {
        let password_hash = self.ports.hasher.hash(password).await?;
        let display_name =
            display_name.unwrap_or_else(|| DisplayName::from_trusted(username.as_str().to_owned()));
        let user = User {
            id: UserId::new(),
            username,
            display_name,
            created_at: crate::now(),
        };
        let account = Account {
            user: user.clone(),
            password_hash,
        };
        match self.ports.users.create_account(&account).await {
            Ok(()) => Ok(user),
            Err(StoreError::Conflict(_)) => Err(AuthError::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks the password; attempts are limited per account, so guessing one account's password
    /// is slow whatever the number of addresses it comes from.
    pub async fn login(&self, username: Username, password: Password) -> Result<User, AuthError> {
        let key = format!("login:{username}");
        self.ports
            .limiter
            .check(&key, self.policy.login_rule)
            .await
            .map_err(AuthError::RateLimited)?;
        let account = self.ports.users.account_by_username(&username).await?;
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let valid = self.ports.hasher.verify(password, hash).await?;
        match account {
            Some(account) if valid => Ok(account.user),
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// Starts a new refresh-token family for the user.
    pub async fn start_session(&self, user: UserId, token_hash: [u8; 32]) -> Result<(), AuthError> {
        self.insert_token(user, uuid::Uuid::new_v4(), token_hash)
            .await
    }

    /// Exchanges a refresh token for its successor (whose hash the caller made).
    pub async fn refresh(
        &self,
        presented: [u8; 32],
        successor: [u8; 32],
    ) -> Result<User, AuthError> {
        let sessions = &self.ports.sessions;
        let record = sessions
            .refresh_by_hash(&presented)
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        let now = crate::now();
        match decide(&record, now, self.policy.refresh_grace) {
            RefreshDecision::Refuse => return Err(AuthError::InvalidRefreshToken),
            RefreshDecision::Reuse => {
                sessions.revoke_family(record.family).await?;
                return Err(AuthError::RefreshTokenReused);
            }
            RefreshDecision::WithinGrace => {}
            RefreshDecision::Rotate => {
                // Losing this race means another request rotated it a moment ago: that is
                // the racing-tabs case the grace period exists for.
                sessions.mark_rotated(&presented, now).await?;
            }
        }
        let user = self
            .ports
            .users
            .user(record.user_id)
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        self.insert_token(user.id, record.family, successor).await?;
        Ok(user)
    }

    /// Ends the session the token belongs to (its whole family). Unknown tokens are ignored:
    /// logging out twice is not an error.
    pub async fn logout(&self, token_hash: [u8; 32]) -> Result<(), AuthError> {
        if let Some(record) = self.ports.sessions.refresh_by_hash(&token_hash).await? {
            self.ports.sessions.revoke_family(record.family).await?;
        }
        Ok(())
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>, AuthError> {
        Ok(self.users.get(id).await?)
    }

    /// Users whose name starts with `prefix`; an empty or invalid prefix finds nobody.
    pub async fn search(&self, prefix: &str, limit: u32) -> Result<Vec<User>, AuthError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c);
        if prefix.is_empty() || prefix.len() > 32 || !prefix.chars().all(valid) {
            return Ok(Vec::new());
        }
        Ok(self.ports.users.search_users(&prefix, limit).await?)
    }

    async fn insert_token(
        &self,
        user: UserId,
        family: uuid::Uuid,
        hash: [u8; 32],
    ) -> Result<(), AuthError> {
        let now = crate::now();
        let record = RefreshRecord {
            hash,
            family,
            user_id: user,
            created_at: now,
            expires_at: now + self.policy.refresh_ttl,
            rotated_at: None,
            revoked: false,
        };
        if self.ports.sessions.insert_refresh(&record).await? {
            Ok(())
        } else {
            Err(AuthError::InvalidRefreshToken)
        }
    }
}
