//! Friend requests and friendships.

use async_trait::async_trait;
use harmony_core::events::DomainEvent;
use harmony_core::model::{friend_pair, pair_key, FriendRequest, FriendRequestStatus, User};
use harmony_core::ports::{FriendStore, StoreResult};
use harmony_core::{FriendRequestId, UserId};
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::users::{user_from, USER_COLUMNS};
use crate::{conflict_on, corrupt, outbox, unavailable, StateDb};

const REQUEST_SELECT: &str = "SELECT r.id, r.status, r.created_at, \
    f.id AS f_id, f.username AS f_username, f.display_name AS f_display_name, f.created_at AS f_created_at, \
    t.id AS t_id, t.username AS t_username, t.display_name AS t_display_name, t.created_at AS t_created_at \
    FROM friend_requests r JOIN users f ON f.id = r.from_id JOIN users t ON t.id = r.to_id";

fn request_from(row: &PgRow) -> StoreResult<FriendRequest> {
    let status: String = row.try_get("status").map_err(unavailable)?;
    Ok(FriendRequest {
        id: FriendRequestId(row.try_get("id").map_err(unavailable)?),
        from: user_from(row, "f_")?,
        to: user_from(row, "t_")?,
        status: FriendRequestStatus::parse(&status)
            .ok_or_else(|| corrupt("friend request status", &status))?,
        created_at: row.try_get("created_at").map_err(unavailable)?,
    })
}

#[async_trait]
impl FriendStore for StateDb {
    async fn create_friend_request(&self, r: &FriendRequest) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO friend_requests (id, from_id, to_id, pair_key, status, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(r.id.0)
        .bind(r.from.id.0)
        .bind(r.to.id.0)
        .bind(pair_key(r.from.id, r.to.id))
        .bind(r.status.as_str())
        .bind(r.created_at)
        .execute(&self.pool)
        .await
        .map_err(conflict_on("friend_request"))?;
        Ok(())
    }

    async fn friend_request(&self, id: FriendRequestId) -> StoreResult<Option<FriendRequest>> {
        let row = sqlx::query(&format!("{REQUEST_SELECT} WHERE r.id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| request_from(&row)).transpose()
    }

    async fn pending_requests(
        &self,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        let mut lists = Vec::with_capacity(2);
        for column in ["to_id", "from_id"] {
            let rows = sqlx::query(&format!(
                "{REQUEST_SELECT} WHERE r.{column} = $1 AND r.status = 'pending' ORDER BY r.created_at DESC"
            ))
            .bind(user.0)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
            lists.push(
                rows.iter()
                    .map(request_from)
                    .collect::<StoreResult<Vec<_>>>()?,
            );
        }
        let outgoing = lists.pop().unwrap_or_default();
        let incoming = lists.pop().unwrap_or_default();
        Ok((incoming, outgoing))
    }

    async fn resolve_friend_request(
        &self,
        id: FriendRequestId,
        status: FriendRequestStatus,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let row = sqlx::query(
            "UPDATE friend_requests SET status = $1 WHERE id = $2 AND status = 'pending' RETURNING from_id, to_id",
        )
        .bind(status.as_str())
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(false);
        };
        if status == FriendRequestStatus::Accepted {
            let from = UserId(row.try_get("from_id").map_err(unavailable)?);
            let to = UserId(row.try_get("to_id").map_err(unavailable)?);
            let pair = friend_pair(from, to);
            let inserted = sqlx::query(
                "INSERT INTO friendships (user_a, user_b, created_at) VALUES ($1, $2, now()) ON CONFLICT DO NOTHING",
            )
            .bind(pair[0].0)
            .bind(pair[1].0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
            if inserted.rows_affected() == 1 {
                outbox::record(&mut tx, &DomainEvent::FriendshipCreated { user_ids: pair }).await?;
            }
        }
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn are_friends(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let [x, y] = friend_pair(a, b);
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM friendships WHERE user_a = $1 AND user_b = $2")
                .bind(x.0)
                .bind(y.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(found.is_some())
    }

    async fn friends(&self, user: UserId) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM friendships f \
             JOIN users u ON u.id = CASE WHEN f.user_a = $1 THEN f.user_b ELSE f.user_a END \
             WHERE f.user_a = $1 OR f.user_b = $1 ORDER BY u.username COLLATE \"C\""
        ))
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(|row| user_from(row, "u_")).collect()
    }

    async fn remove_friendship(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let pair = friend_pair(a, b);
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query("DELETE FROM friendships WHERE user_a = $1 AND user_b = $2")
            .bind(pair[0].0)
            .bind(pair[1].0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        outbox::record(&mut tx, &DomainEvent::FriendshipRemoved { user_ids: pair }).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }
}
