//! Accounts and refresh tokens.

use async_trait::async_trait;
use harmony_core::events::DomainEvent;
use harmony_core::model::{Account, User};
use harmony_core::ports::{
    RefreshRecord, Revocation, SessionStore, StoreError, StoreResult, UserStore,
};
use harmony_core::values::{DisplayName, Username};
use harmony_core::UserId;
use sqlx::postgres::PgRow;
use sqlx::Row;
use time::OffsetDateTime;

use crate::{conflict_on, outbox, unavailable, StateDb};

/// Reads a user from columns `{prefix}id`, `{prefix}username`, `{prefix}display_name`,
/// `{prefix}created_at`.
pub(crate) fn user_from(row: &PgRow, prefix: &str) -> StoreResult<User> {
    let col = |name: &str| format!("{prefix}{name}");
    Ok(User {
        id: UserId(row.try_get(col("id").as_str()).map_err(unavailable)?),
        username: Username::from_trusted(
            row.try_get(col("username").as_str()).map_err(unavailable)?,
        ),
        display_name: DisplayName::from_trusted(
            row.try_get(col("display_name").as_str())
                .map_err(unavailable)?,
        ),
        created_at: row
            .try_get(col("created_at").as_str())
            .map_err(unavailable)?,
    })
}

/// The columns `user_from(row, "u_")` reads, for a table aliased `u`.
pub(crate) const USER_COLUMNS: &str = "u.id AS u_id, u.username AS u_username, \
    u.display_name AS u_display_name, u.created_at AS u_created_at";

#[async_trait]
impl UserStore for StateDb {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let user = &account.user;
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO users (id, username, display_name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.id.0)
        .bind(user.username.as_str())
        .bind(user.display_name.as_str())
        .bind(&account.password_hash)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on("username"))?;
        outbox::record(&mut tx, &DomainEvent::UserCreated { user: user.clone() }).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn account_by_username(&self, username: &Username) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.username = $1"
        ))
        .bind(username.as_str())
        .fetch_optional(&self.pool)
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

    async fn set_password_hash(&self, user: UserId, hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|row| user_from(&row, "u_")).transpose()
    }

    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users u WHERE starts_with(u.username, $1) \
             ORDER BY u.username COLLATE \"C\" LIMIT $2"
        ))
        .bind(prefix)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(|row| user_from(row, "u_")).collect()
    }
}

fn refresh_from(row: &PgRow) -> StoreResult<RefreshRecord> {
    let hash: Vec<u8> = row.try_get("hash").map_err(unavailable)?;
    Ok(RefreshRecord {
        hash: hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("refresh token hash length".into()))?,
        family: row.try_get("family").map_err(unavailable)?,
        user_id: UserId(row.try_get("user_id").map_err(unavailable)?),
        created_at: row.try_get("created_at").map_err(unavailable)?,
        expires_at: row.try_get("expires_at").map_err(unavailable)?,
        rotated_at: row.try_get("rotated_at").map_err(unavailable)?,
        revoked: row.try_get("revoked").map_err(unavailable)?,
    })
}

#[async_trait]
impl SessionStore for StateDb {
    async fn insert_refresh(&self, r: &RefreshRecord) -> StoreResult<bool> {
        // The family's row lock orders this insert against a concurrent revocation: a
        // successor never joins a family that is being or was revoked.
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let revoked: Option<bool> = sqlx::query_scalar(
            "SELECT bool_or(revoked) FROM (SELECT revoked FROM refresh_tokens WHERE family = $1 FOR UPDATE) f",
        )
        .bind(r.family)
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?;
        if revoked == Some(true) {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (hash, family, user_id, created_at, expires_at, rotated_at, revoked) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.hash.as_slice())
        .bind(r.family)
        .bind(r.user_id.0)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(r.rotated_at)
        .bind(r.revoked)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on("refresh_token"))?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn refresh_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<RefreshRecord>> {
        let row = sqlx::query("SELECT * FROM refresh_tokens WHERE hash = $1")
            .bind(hash.as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| refresh_from(&row)).transpose()
    }

    async fn mark_rotated(&self, hash: &[u8; 32], at: OffsetDateTime) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $1 WHERE hash = $2 AND rotated_at IS NULL",
        )
        .bind(at)
        .bind(hash.as_slice())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_family(&self, family: uuid::Uuid) -> StoreResult<()> {
        // One statement: the tokens and the revocation every node reads go together.
        sqlx::query(
            "WITH tokens AS (UPDATE refresh_tokens SET revoked = TRUE WHERE family = $1) \
             INSERT INTO session_revocations (family) VALUES ($1) ON CONFLICT (family) DO NOTHING",
        )
        .bind(family)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn revocations_since(&self, since: OffsetDateTime) -> StoreResult<Vec<Revocation>> {
        let rows: Vec<(uuid::Uuid, OffsetDateTime)> = sqlx::query_as(
            "SELECT family, revoked_at FROM session_revocations WHERE revoked_at >= $1",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|(family, at)| Revocation { family, at })
            .collect())
    }

    async fn prune_revocations(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM session_revocations WHERE revoked_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(done.rows_affected())
    }

    async fn live_families(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<uuid::Uuid>> {
        sqlx::query_scalar(
            "SELECT family FROM refresh_tokens WHERE user_id = $1 AND NOT revoked \
             AND expires_at > $2 GROUP BY family ORDER BY MIN(created_at), family",
        )
        .bind(user.0)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)
    }
}
