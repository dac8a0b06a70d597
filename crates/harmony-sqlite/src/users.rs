//! Accounts and refresh tokens.

use async_trait::async_trait;
use harmony_core::events::DomainEvent;
use harmony_core::model::{Account, User};
use harmony_core::ports::{RefreshRecord, SessionStore, StoreError, StoreResult, UserStore};
use harmony_core::values::{DisplayName, Username};
use harmony_core::UserId;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use time::OffsetDateTime;

use crate::{conflict_on, from_ms, ms, parse, unavailable, Database};

/// Reads a user from columns `{prefix}id`, `{prefix}username`, `{prefix}display_name`,
/// `{prefix}created_at`.
pub(crate) fn user_from(row: &SqliteRow, prefix: &str) -> StoreResult<User> {
    let col = |name: &str| format!("{prefix}{name}");
    let id: String = row.try_get(col("id").as_str()).map_err(unavailable)?;
    let username: String = row.try_get(col("username").as_str()).map_err(unavailable)?;
    let display: String = row
        .try_get(col("display_name").as_str())
        .map_err(unavailable)?;
    let created: i64 = row
        .try_get(col("created_at").as_str())
        .map_err(unavailable)?;
    Ok(User {
        id: parse("user id", &id)?,
        username: Username::from_trusted(username),
        display_name: DisplayName::from_trusted(display),
        created_at: from_ms(created)?,
    })
}

/// The columns `user_from(row, "u_")` reads, for a table aliased `u`.
pub(crate) const USER_COLUMNS: &str =
    "u.id AS u_id, u.username AS u_username, u.display_name AS u_display_name, \
     u.created_at AS u_created_at";

#[async_trait]
impl UserStore for Database {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let user = &account.user;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO users (id, username, display_name, password_hash, created_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(user.id.to_string())
        .bind(user.username.as_str())
        .bind(user.display_name.as_str())
        .bind(&account.password_hash)
        .bind(ms(user.created_at))
        .execute(&mut *tx)
        .await
        .map_err(conflict_on("username"))?;
        self.record_event(&mut tx, &DomainEvent::UserCreated { user: user.clone() })
            .await?;
        self.commit_with_events(tx).await
    }

    async fn account_by_username(&self, username: &Username) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.username = ?"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(unavailable)?;
        row.map(|row| {
            Ok(Account {
                user: user_from(&row, "u_")?,
                password_hash: row.try_get("password_hash").map_err(unavailable)?,
            })
        })
        .transpose()
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id = ?"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(unavailable)?;
        row.map(|row| user_from(&row, "u_")).transpose()
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        // Range scan on the unique index; `prefix` holds only [a-z0-9_.-], so `~` sorts after it.
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.username >= ? AND u.username < ? \
             ORDER BY u.username LIMIT ?"
        ))
        .bind(prefix)
        .bind(format!("{prefix}~"))
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        rows.iter().map(|row| user_from(row, "u_")).collect()
    }
}

fn refresh_from(row: &SqliteRow) -> StoreResult<RefreshRecord> {
    let hash: Vec<u8> = row.try_get("hash").map_err(unavailable)?;
    let family: String = row.try_get("family").map_err(unavailable)?;
    let user_id: String = row.try_get("user_id").map_err(unavailable)?;
    let rotated: Option<i64> = row.try_get("rotated_at").map_err(unavailable)?;
    let revoked: i64 = row.try_get("revoked").map_err(unavailable)?;
    Ok(RefreshRecord {
        hash: hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("refresh token hash length".into()))?,
        family: parse("token family", &family)?,
        user_id: parse("user id", &user_id)?,
        created_at: from_ms(row.try_get("created_at").map_err(unavailable)?)?,
        expires_at: from_ms(row.try_get("expires_at").map_err(unavailable)?)?,
        rotated_at: rotated.map(from_ms).transpose()?,
        revoked: revoked != 0,
    })
}

#[async_trait]
impl SessionStore for Database {
    async fn insert_refresh(&self, r: &RefreshRecord) -> StoreResult<bool> {
        // One statement on the single writer connection: it and a revocation of the family
        // are ordered, so a successor is never inserted into an already revoked family.
        let done = sqlx::query(
            "INSERT INTO refresh_tokens (hash, family, user_id, created_at, expires_at, \
             rotated_at, revoked) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE NOT EXISTS \
             (SELECT 1 FROM refresh_tokens WHERE family = ?2 AND revoked = 1)",
        )
        .bind(r.hash.as_slice())
        .bind(r.family.to_string())
        .bind(r.user_id.to_string())
        .bind(ms(r.created_at))
        .bind(ms(r.expires_at))
        .bind(r.rotated_at.map(ms))
        .bind(i64::from(r.revoked))
        .execute(&self.writer)
        .await
        .map_err(conflict_on("refresh_token"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn refresh_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<RefreshRecord>> {
        // The writer connection: a token rotated a moment ago must be seen as rotated.
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE hash = ?")
            .bind(hash.as_slice())
            .fetch_optional(&self.writer)
            .await
            .map_err(unavailable)?;
        row.map(|row| refresh_from(&row)).transpose()
    }

    async fn mark_rotated(&self, hash: &[u8; 32], at: OffsetDateTime) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = ? WHERE hash = ? AND rotated_at IS NULL",
        )
        .bind(ms(at))
        .bind(hash.as_slice())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_family(&self, family: uuid::Uuid) -> StoreResult<()> {
        sqlx::query("UPDATE refresh_tokens SET revoked = 1 WHERE family = ?")
            .bind(family.to_string())
            .execute(&self.writer)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
