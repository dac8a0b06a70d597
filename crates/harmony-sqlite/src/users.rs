//! Accounts and refresh tokens.

use async_trait::async_trait;
use harmony_core::events::DomainEvent;
use harmony_core::model::{Account, User};
use harmony_core::ports::{
    RefreshRecord, Revocation, SessionStore, StoreError, StoreResult, UserStore,
};
use harmony_core::values::{DisplayName, Username};
use harmony_core::UserId;
use rusqlite::Row;
use time::OffsetDateTime;

use crate::conn::Wake;
use crate::outbox::record_event;
use crate::{col, conflict_on, exec, from_ms, ms, parse, row, rows, unavailable, Database};

/// A user's columns with the prefix `u_` (see [`USER_COLUMNS`]).
pub(crate) const U: [&str; 4] = ["u_id", "u_username", "u_display_name", "u_created_at"];

/// Reads a user from the columns given (names or positions) for its id, username, display name
/// and creation time.
pub(crate) fn user_from<I: rusqlite::RowIndex + Copy>(
    row: &Row<'_>,
    at: &[I; 4],
) -> StoreResult<User> {
    let [id, username, display, created] = *at;
    let id: String = col(row, id)?;
    let username: String = col(row, username)?;
    let display: String = col(row, display)?;
    let created: i64 = col(row, created)?;
    Ok(User {
        id: parse("user id", &id)?,
        username: Username::from_trusted(username),
        display_name: DisplayName::from_trusted(display),
        created_at: from_ms(created)?,
    })
}

/// The columns `user_from(row, &U)` reads, for a table aliased `u`.
pub(crate) const USER_COLUMNS: &str =
    "u.id AS u_id, u.username AS u_username, u.display_name AS u_display_name, \
     u.created_at AS u_created_at";

#[async_trait]
impl UserStore for Database {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let account = account.clone();
        self.write(Wake::Outbox, move |conn| {
            let user = &account.user;
            exec(
                conn,
                "INSERT INTO users (id, username, display_name, password_hash, created_at) \
                 VALUES (?, ?, ?, ?, ?)",
                (
                    user.id.to_string(),
                    user.username.as_str(),
                    user.display_name.as_str(),
                    &account.password_hash,
                    ms(user.created_at),
                ),
            )
            .map_err(conflict_on("username"))?;
            record_event(conn, &DomainEvent::UserCreated { user: user.clone() })
        })
        .await
    }

    async fn account_by_username(&self, username: &Username) -> StoreResult<Option<Account>> {
        let username = username.as_str().to_owned();
        self.read(move |conn| {
            let sql =
                format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.username = ?");
            row(conn, &sql, [&username], |r| {
                Ok(Account {
                    user: user_from(r, &U)?,
                    password_hash: col(r, "password_hash")?,
                })
            })
        })
        .await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.read(move |conn| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?");
            row(conn, &sql, [id.to_string()], |r| user_from(r, &U))
        })
        .await
    }

    async fn set_password_hash(&self, user: UserId, hash: &str) -> StoreResult<bool> {
        let hash = hash.to_owned();
        self.write(Wake::Nobody, move |conn| {
            let changed = exec(
                conn,
                "UPDATE users SET password_hash = ? WHERE id = ?",
                (hash, user.to_string()),
            )
            .map_err(unavailable)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        let prefix = prefix.to_owned();
        self.read(move |conn| {
            // Range scan on the unique index; `prefix` holds only [a-z0-9_.-], so `~` sorts
            // after it.
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.username >= ? AND u.username < ? \
                 ORDER BY u.username LIMIT ?"
            );
            let upper = format!("{prefix}~");
            rows(conn, &sql, (&prefix, &upper, i64::from(limit)), |r| {
                user_from(r, &U)
            })
        })
        .await
    }
}

fn refresh_from(row: &Row<'_>) -> StoreResult<RefreshRecord> {
    let hash: Vec<u8> = col(row, "hash")?;
    let family: String = col(row, "family")?;
    let user_id: String = col(row, "user_id")?;
    let rotated: Option<i64> = col(row, "rotated_at")?;
    let revoked: i64 = col(row, "revoked")?;
    Ok(RefreshRecord {
        hash: hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("refresh token hash length".into()))?,
        family: parse("token family", &family)?,
        user_id: parse("user id", &user_id)?,
        created_at: from_ms(col(row, "created_at")?)?,
        expires_at: from_ms(col(row, "expires_at")?)?,
        rotated_at: rotated.map(from_ms).transpose()?,
        revoked: revoked != 0,
    })
}

/// Refresh tokens are read and written on the writer: a rotation, a revocation and the reads
/// that decide on them are ordered, so a successor is never inserted into an already revoked
/// family and a token rotated a moment ago is seen as rotated.
#[async_trait]
impl SessionStore for Database {
    async fn insert_refresh(&self, r: &RefreshRecord) -> StoreResult<bool> {
        let r = r.clone();
        self.write(Wake::Nobody, move |conn| {
            let inserted = exec(
                conn,
                "INSERT INTO refresh_tokens (hash, family, user_id, created_at, expires_at, \
                 rotated_at, revoked) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE NOT EXISTS \
                 (SELECT 1 FROM refresh_tokens WHERE family = ?2 AND revoked = 1)",
                (
                    r.hash.as_slice(),
                    r.family.to_string(),
                    r.user_id.to_string(),
                    ms(r.created_at),
                    ms(r.expires_at),
                    r.rotated_at.map(ms),
                    i64::from(r.revoked),
                ),
            )
            .map_err(conflict_on("refresh_token"))?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn refresh_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<RefreshRecord>> {
        let hash = *hash;
        self.write(Wake::Nobody, move |conn| {
            row(
                conn,
                "SELECT * FROM refresh_tokens WHERE hash = ?",
                [hash.as_slice()],
                refresh_from,
            )
        })
        .await
    }

    async fn mark_rotated(&self, hash: &[u8; 32], at: OffsetDateTime) -> StoreResult<bool> {
        let hash = *hash;
        self.write(Wake::Nobody, move |conn| {
            let done = exec(
                conn,
                "UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ? AND rotated_at IS NULL",
                (ms(at), hash.as_slice()),
            )
            .map_err(unavailable)?;
            Ok(done == 1)
        })
        .await
    }

    async fn revoke_family(&self, family: uuid::Uuid) -> StoreResult<()> {
        let at = ms(harmony_core::now());
        self.write(Wake::Nobody, move |conn| {
            let family = family.to_string();
            exec(
                conn,
                "UPDATE refresh_tokens SET revoked = 1 WHERE family = ?",
                [&family],
            )
            .map_err(unavailable)?;
            exec(
                conn,
                "INSERT INTO session_revocations (family, revoked_at) VALUES (?, ?) \
                 ON CONFLICT (family) DO NOTHING",
                (&family, at),
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn revocations_since(&self, since: OffsetDateTime) -> StoreResult<Vec<Revocation>> {
        self.read(move |conn| {
            rows(
                conn,
                "SELECT family, revoked_at FROM session_revocations WHERE revoked_at >= ?",
                [ms(since)],
                |row| {
                    let family: String = col(row, "family")?;
                    Ok(Revocation {
                        family: parse("token family", &family)?,
                        at: from_ms(col(row, "revoked_at")?)?,
                    })
                },
            )
        })
        .await
    }

    async fn prune_revocations(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.write(Wake::Nobody, move |conn| {
            let gone = exec(
                conn,
                "DELETE FROM session_revocations WHERE revoked_at < ?",
                [ms(before)],
            )
            .map_err(unavailable)?;
            Ok(gone as u64)
        })
        .await
    }

    async fn live_families(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<uuid::Uuid>> {
        self.write(Wake::Nobody, move |conn| {
            rows(
                conn,
                "SELECT family FROM refresh_tokens WHERE user_id = ? AND revoked = 0 \
                 AND expires_at > ? GROUP BY family ORDER BY MIN(created_at), family",
                (user.to_string(), ms(now)),
                |row| {
                    let family: String = col(row, "family")?;
                    parse("token family", &family)
                },
            )
        })
        .await
    }
}
