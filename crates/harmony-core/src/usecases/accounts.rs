//! Accounts and sessions: registration, login, refresh-token rotation with reuse detection.
//! Token bytes are made and hashed at the edge; only hashes come in here.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::{Policy, Ports, UserLookup};
use crate::model::{Account, User};
use crate::ports::{RefreshRecord, Revocation, StoreError};
use crate::refresh::{decide, RefreshDecision};
use crate::sessions::RevokedSessions;
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
    revoked: Arc<RevokedSessions>,
}

impl Accounts {
    pub(super) fn new(
        ports: Ports,
        policy: Arc<Policy>,
        users: UserLookup,
        revoked: Arc<RevokedSessions>,
    ) -> Self {
        Self {
            ports,
            policy,
            users,
            revoked,
        }
    }

    /// The sessions this process knows to be ended.
    pub fn revoked(&self) -> &Arc<RevokedSessions> {
        &self.revoked
    }

    /// Whether the session (refresh-token family) an access token names was ended.
    pub fn is_revoked(&self, session: uuid::Uuid) -> bool {
        self.revoked.is_revoked(session)
    }

    /// Reads the revocations every node made since `since` (`None`: all that may still matter)
    /// into this process's set; returns where the next read starts. Every so often it also
    /// forgets the revocations no valid token can name any more, here and in the store.
    pub async fn follow_revocations(
        &self,
        since: Option<time::OffsetDateTime>,
        prune: bool,
    ) -> Result<time::OffsetDateTime, AuthError> {
        let now = crate::now();
        if prune {
            self.revoked.prune(now);
            self.ports
                .sessions
                .prune_revocations(now - self.revoked.keep())
                .await?;
        }
        Ok(self
            .revoked
            .poll(self.ports.sessions.as_ref(), since, now)
            .await?)
    }

    /// Ends a session everywhere: its refresh tokens, then its access tokens on every node
    /// (this one at once, the others when they next read the store).
    async fn end_session(&self, family: uuid::Uuid) -> Result<(), AuthError> {
        self.ports.sessions.revoke_family(family).await?;
        self.revoked.insert(Revocation {
            family,
            at: crate::now(),
        });
        Ok(())
    }

    /// Creates an account; registrations are limited per address (`from`, when known).
    pub async fn register(
        &self,
        username: Username,
        password: Password,
        display_name: Option<DisplayName>,
        from: Option<IpAddr>,
    ) -> Result<User, AuthError> {
        if let Some(from) = from {
            let key = format!("register@{}", address_key(from));
            self.limit(&key, self.policy.register_rule).await?;
        }
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

    pub async fn login(
        &self,
        username: Username,
        password: Password,
        from: Option<IpAddr>,
    ) -> Result<User, AuthError> {
        self.check_password(&username, password, from).await
    }

    /// The user whose password `password` is. Attempts are limited per account and address, so
    /// a stranger's wrong guesses lock out only the stranger, and per address across accounts,
    /// so one address cannot try a password on every account.
    async fn check_password(
        &self,
        username: &Username,
        password: Password,
        from: Option<IpAddr>,
    ) -> Result<User, AuthError> {
        let address = from.map_or_else(|| "unknown".to_owned(), address_key);
        self.limit(&format!("login@{address}"), self.policy.login_address_rule)
            .await?;
        self.limit(
            &format!("login:{username}@{address}"),
            self.policy.login_rule,
        )
        .await?;
        let account = self.ports.users.account_by_username(username).await?;
        let hash = account.as_ref().map(|a| a.password_hash.clone());
        let valid = self.ports.hasher.verify(password, hash).await?;
        match account {
            Some(account) if valid => Ok(account.user),
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    async fn limit(&self, key: &str, rule: crate::ports::RateRule) -> Result<(), AuthError> {
        self.ports
            .limiter
            .check(key, rule)
            .await
            .map_err(AuthError::RateLimited)
    }

    /// Starts a new session (refresh-token family) for the user and returns its id. Past
    /// [`Policy::max_sessions_per_user`] live sessions, the oldest are ended.
    pub async fn start_session(
        &self,
        user: UserId,
        token_hash: [u8; 32],
    ) -> Result<uuid::Uuid, AuthError> {
        let family = uuid::Uuid::new_v4();
        self.insert_token(user, family, token_hash).await?;
        let live = self
            .ports
            .sessions
            .live_families(user, crate::now())
            .await?;
        let cap = self.policy.max_sessions_per_user as usize;
        for old in live
            .iter()
            .filter(|f| **f != family)
            .take(live.len().saturating_sub(cap))
        {
            self.end_session(*old).await?;
        }
        Ok(family)
    }

    /// Exchanges a refresh token for its successor (whose hash the caller made); returns the
    /// user and the session.
    pub async fn refresh(
        &self,
        presented: [u8; 32],
        successor: [u8; 32],
    ) -> Result<(User, uuid::Uuid), AuthError> {
        let sessions = &self.ports.sessions;
        let record = sessions
            .refresh_by_hash(&presented)
            .await?
            .ok_or(AuthError::InvalidRefreshToken)?;
        let now = crate::now();
        match decide(&record, now, self.policy.refresh_grace) {
            RefreshDecision::Refuse => return Err(AuthError::InvalidRefreshToken),
            RefreshDecision::Reuse => {
                self.end_session(record.family).await?;
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
        Ok((user, record.family))
    }

    /// Ends the session the token belongs to (its whole family). Unknown tokens are ignored:
    /// logging out twice is not an error.
    pub async fn logout(&self, token_hash: [u8; 32]) -> Result<(), AuthError> {
        if let Some(record) = self.ports.sessions.refresh_by_hash(&token_hash).await? {
            self.end_session(record.family).await?;
        }
        Ok(())
    }

    /// Changes the password of the caller, who proves the current one (limited like a login),
    /// and ends every other session of theirs: whoever held them must sign in with the new one.
    /// The caller's own session (`keep`) goes on. Returns how many sessions were ended.
    pub async fn change_password(
        &self,
        user: UserId,
        keep: uuid::Uuid,
        current: Password,
        new: Password,
        from: Option<IpAddr>,
    ) -> Result<usize, AuthError> {
        let who = self
            .users
            .get(user)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        self.check_password(&who.username, current, from).await?;
        let new_hash = self.ports.hasher.hash(new).await?;
        if !self.ports.users.set_password_hash(user, &new_hash).await? {
            return Err(AuthError::InvalidCredentials);
        }
        let others: Vec<uuid::Uuid> = self
            .ports
            .sessions
            .live_families(user, crate::now())
            .await?
            .into_iter()
            .filter(|f| *f != keep)
            .collect();
        for family in &others {
            self.end_session(*family).await?;
        }
        Ok(others.len())
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

/// The part of an address one party controls: an IPv4 address, or an IPv6 /64 (one subscriber
/// commonly holds a whole /64, so counting single IPv6 addresses would limit nothing).
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::address_key;

    #[test]
    fn addresses_are_counted_per_ipv4_address_and_ipv6_64() {
        let key = |s: &str| address_key(s.parse().expect("an address"));
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }
}
