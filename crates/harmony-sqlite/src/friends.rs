//! Friend requests and friendships.

use async_trait::async_trait;
use harmony_core::events::DomainEvent;
use harmony_core::model::{friend_pair, pair_key, FriendRequest, FriendRequestStatus, User};
use harmony_core::ports::{FriendStore, StoreError, StoreResult};
use harmony_core::{FriendRequestId, UserId};
use rusqlite::Row;

use crate::conn::Wake;
use crate::outbox::record_event;
use crate::users::{user_from, U, USER_COLUMNS};
use crate::{col, conflict_on, exec, from_ms, ms, parse, row, rows, unavailable, Database};

const REQUEST_SELECT: &str = "SELECT r.id, r.status, r.created_at, \
    f.id AS f_id, f.username AS f_username, f.display_name AS f_display_name, \
    f.created_at AS f_created_at, t.id AS t_id, t.username AS t_username, \
    t.display_name AS t_display_name, t.created_at AS t_created_at \
    FROM friend_requests r JOIN users f ON f.id = r.from_id JOIN users t ON t.id = r.to_id";

fn request_from(row: &Row<'_>) -> StoreResult<FriendRequest> {
    let id: String = col(row, "id")?;
    let status: String = col(row, "status")?;
    Ok(FriendRequest {
        id: parse("friend request id", &id)?,
        from: user_from(
            row,
            &["f_id", "f_username", "f_display_name", "f_created_at"],
        )?,
        to: user_from(
            row,
            &["t_id", "t_username", "t_display_name", "t_created_at"],
        )?,
        status: FriendRequestStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("friend request status {status:?}")))?,
        created_at: from_ms(col(row, "created_at")?)?,
    })
}

#[async_trait]
impl FriendStore for Database {
    async fn create_friend_request(&self, r: &FriendRequest) -> StoreResult<()> {
        let r = r.clone();
        self.write(Wake::Nobody, move |conn| {
            exec(
                conn,
                "INSERT INTO friend_requests (id, from_id, to_id, pair_key, status, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                (
                    r.id.to_string(),
                    r.from.id.to_string(),
                    r.to.id.to_string(),
                    pair_key(r.from.id, r.to.id),
                    r.status.as_str(),
                    ms(r.created_at),
                ),
            )
            .map_err(conflict_on("friend_request"))?;
            Ok(())
        })
        .await
    }

    async fn friend_request(&self, id: FriendRequestId) -> StoreResult<Option<FriendRequest>> {
        self.write(Wake::Nobody, move |conn| {
            let sql = format!("{REQUEST_SELECT} WHERE r.id = ?");
            row(conn, &sql, [id.to_string()], request_from)
        })
        .await
    }

    async fn pending_requests(
        &self,
        user: UserId,
    ) -> StoreResult<(Vec<FriendRequest>, Vec<FriendRequest>)> {
        self.read(move |conn| {
            let list = |column: &str| {
                let sql = format!(
                    "{REQUEST_SELECT} WHERE r.{column} = ? AND r.status = 'pending' \
                     ORDER BY r.created_at DESC"
                );
                rows(conn, &sql, [user.to_string()], request_from)
            };
            Ok((list("to_id")?, list("from_id")?))
        })
        .await
    }

    async fn resolve_friend_request(
        &self,
        id: FriendRequestId,
        status: FriendRequestStatus,
    ) -> StoreResult<bool> {
        self.write(Wake::Outbox, move |conn| {
            let resolved = row(
                conn,
                "UPDATE friend_requests SET status = ? WHERE id = ? AND status = 'pending' \
                 RETURNING from_id, to_id",
                (status.as_str(), id.to_string()),
                |r| Ok((col::<String>(r, "from_id")?, col::<String>(r, "to_id")?)),
            )?;
            let Some((from, to)) = resolved else {
                return Ok(false);
            };
            if status == FriendRequestStatus::Accepted {
                let pair = friend_pair(parse("user id", &from)?, parse("user id", &to)?);
                let inserted = exec(
                    conn,
                    "INSERT INTO friendships (user_a, user_b, created_at) VALUES (?, ?, ?) \
                     ON CONFLICT DO NOTHING",
                    (
                        pair[0].to_string(),
                        pair[1].to_string(),
                        ms(harmony_core::now()),
                    ),
                )
                .map_err(unavailable)?;
                if inserted == 1 {
                    record_event(conn, &DomainEvent::FriendshipCreated { user_ids: pair })?;
                }
            }
            Ok(true)
        })
        .await
    }

    async fn are_friends(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let [x, y] = friend_pair(a, b);
        self.read(move |conn| {
            let found = row(
                conn,
                "SELECT 1 FROM friendships WHERE user_a = ? AND user_b = ?",
                (x.to_string(), y.to_string()),
                |_| Ok(()),
            )?;
            Ok(found.is_some())
        })
        .await
    }

    async fn friends(&self, user: UserId) -> StoreResult<Vec<User>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM friendships f \
                 JOIN users u ON u.id = CASE WHEN f.user_a = ?1 THEN f.user_b ELSE f.user_a END \
                 WHERE f.user_a = ?1 OR f.user_b = ?1 ORDER BY u.username"
            );
            rows(conn, &sql, [user.to_string()], |r| user_from(r, &U))
        })
        .await
    }

    async fn remove_friendship(&self, a: UserId, b: UserId) -> StoreResult<bool> {
        let pair = friend_pair(a, b);
        self.write(Wake::Outbox, move |conn| {
            let done = exec(
                conn,
                "DELETE FROM friendships WHERE user_a = ? AND user_b = ?",
                (pair[0].to_string(), pair[1].to_string()),
            )
            .map_err(unavailable)?;
            if done == 0 {
                return Ok(false);
            }
            record_event(conn, &DomainEvent::FriendshipRemoved { user_ids: pair })?;
            Ok(true)
        })
        .await
    }
}
