//! Friend requests and friendships.

use async_trait::async_trait;
use harmony_core::events::DomainEvent;
use harmony_core::model::{friend_pair, pair_key, FriendRequest, FriendRequestStatus, User};
use harmony_core::ports::{FriendStore, StoreError, StoreResult};
use harmony_core::{FriendRequestId, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use crate::users::{user_from, USER_COLUMNS};
use crate::{conflict_on, from_ms, ms, parse, unavailable, Database};

const REQUEST_SELECT: &str = "SELECT r.id, r.status, r.created_at, \
    f.id AS f_id, f.username AS f_username, f.display_name AS f_display_name, \
    f.created_at AS f_created_at, t.id AS t_id, t.username AS t_username, \
    t.display_name AS t_display_name, t.created_at AS t_created_at \
    FROM friend_requests r JOIN users f ON f.id = r.from_id JOIN users t ON t.id = r.to_id";

fn request_from(row: &SqliteRow) -> StoreResult<FriendRequest> {
    let id: String = row.try_get("id").map_err(unavailable)?;
    let status: String = row.try_get("status").map_err(unavailable)?;
    Ok(FriendRequest {
        id: parse("friend request id", &id)?,
        from: user_from(row, "f_")?,
        to: user_from(row, "t_")?,
        status: FriendRequestStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("friend request status {status:?}")))?,
        created_at: from_ms(row.try_get("created_at").map_err(unavailable)?)?,
    })
}

#[async_trait]
impl FriendStore for Database {
    async fn create_friend_request(&self, r: &FriendRequest) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO friend_requests (id, from_id, to_id, pair_key, status, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(r.id.to_string())
        .bind(r.from.id.to_string())
        .bind(r.to.id.to_string())
        .bind(pair_key(r.from.id, r.to.id))
        .bind(r.status.as_str())
        .bind(ms(r.created_at))
        .execute(&self.writer)
        .await
        .map_err(conflict_on("friend_request"))?;
        Ok(())
    }

    async fn friend_request(&self, id: FriendRequestId) -> StoreResult<Option<FriendRequest>> {
        let row = sqlx::query(&format!("{REQUEST_SELECT} WHERE r.id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.writer)
            .await
            .map_err(unavailable)?;
        row.map(|row| request_from(&row)).transpose()
    }

    async fn pending_requests(
        &self,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        let list = |column: &'static str| {
            let sql = format!(
                "{REQUEST_SELECT} WHERE r.{column} = ? AND r.status = 'pending' \
                 ORDER BY r.created_at DESC"
            );
            let user = user.to_string();
            async move {
                let rows = sqlx::query(&sql)
                    .bind(user)
                    .fetch_all(&self.reader)
                    .await
                    .map_err(unavailable)?;
                rows.iter()
                    .map(request_from)
                    .collect::<StoreResult<Vec<_>>>()
            }
        };
        Ok((list("to_id").await?, list("from_id").await?))
    }

    async fn resolve_friend_request(
        &self,
        id: FriendRequestId,
        status: FriendRequestStatus,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(
            "UPDATE friend_requests SET status = ? WHERE id = ? AND status = 'pending' \
             RETURNING from_id, to_id",
        )
        .bind(status.as_str())
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(false);
        };
        if status == FriendRequestStatus::Accepted {
            let from: String = row.try_get("from_id").map_err(unavailable)?;
            let to: String = row.try_get("to_id").map_err(unavailable)?;
            let pair = friend_pair(parse("user id", &from)?, parse("user id", &to)?);
            let inserted = sqlx::query(
                "INSERT INTO friendships (user_a, user_b, created_at) VALUES (?, ?, ?) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(pair[0].to_string())
            .bind(pair[1].to_string())
            .bind(ms(harmony_core::now()))
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            if inserted.rows_affected() == 1 {
                let event = DomainEvent::FriendshipCreated { user_ids: pair };
                self.record_event(&mut tx, &event).await?;
            }
        }
        self.commit_with_events(tx).await?;
        Ok(true)
    }

    async fn are_friends(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let [x, y] = friend_pair(a, b);
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM friendships WHERE user_a = ? AND user_b = ?")
                .bind(x.to_string())
                .bind(y.to_string())
                .fetch_optional(&self.reader)
                .await
                .map_err(unavailable)?;
        Ok(found.is_some())
    }

    async fn friends(&self, user: UserId) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM friendships f \
             JOIN users u ON u.id = CASE WHEN f.user_a = ?1 THEN f.user_b ELSE f.user_a END \
             WHERE f.user_a = ?1 OR f.user_b = ?1 ORDER BY u.username"
        ))
        .bind(user.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        rows.iter().map(|row| user_from(row, "u_")).collect()
    }

    async fn remove_friendship(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let pair = friend_pair(a, b);
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM friendships WHERE user_a = ? AND user_b = ?")
            .bind(pair[0].to_string())
            .bind(pair[1].to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.record_event(&mut tx, &DomainEvent::FriendshipRemoved { user_ids: pair })
            .await?;
        self.commit_with_events(tx).await?;
        Ok(true)
    }
}
