//! Chats, members and read markers. Every change writes its outbox event in its transaction.

use async_trait::async_trait;
use harmony_core::events::DomainEvent;
use harmony_core::model::{Chat, ChatKind, Member, Role, User};
use harmony_core::ports::{ChatStore, Membership, StoreResult};
use harmony_core::values::ChatName;
use harmony_core::{ChatId, UserId};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use crate::users::{user_from, USER_COLUMNS};
use crate::{conflict_on, corrupt, outbox, unavailable, StateDb};

macro_rules! chat_columns {
    () => {
        "c.id, c.kind, c.name, c.owner_id, c.created_at, \
         (SELECT COUNT(*) FROM chat_members cm WHERE cm.chat_id = c.id) AS member_count"
    };
}
const CHAT_COLUMNS: &str = chat_columns!();
const CHAT_SELECT: &str = concat!("SELECT ", chat_columns!(), " FROM chats c");

fn chat_from(row: &PgRow) -> StoreResult<Chat> {
    let kind: String = row.try_get("kind").map_err(unavailable)?;
    let name: Option<String> = row.try_get("name").map_err(unavailable)?;
    let count: i64 = row.try_get("member_count").map_err(unavailable)?;
    Ok(Chat {
        id: ChatId(row.try_get("id").map_err(unavailable)?),
        kind: ChatKind::parse(&kind).ok_or_else(|| corrupt("chat kind", &kind))?,
        name: name.map(ChatName::from_trusted),
        owner_id: UserId(row.try_get("owner_id").map_err(unavailable)?),
        created_at: row.try_get("created_at").map_err(unavailable)?,
        member_count: u32::try_from(count).unwrap_or(u32::MAX),
    })
}

fn role_from(raw: &str) -> StoreResult<Role> {
    Role::parse(raw).ok_or_else(|| corrupt("role", raw))
}

async fn chat_in(tx: &mut Transaction<'static, Postgres>, id: ChatId) -> StoreResult<Option<Chat>> {
    let row = sqlx::query(&format!("{CHAT_SELECT} WHERE c.id = $1"))
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(unavailable)?;
    row.map(|row| chat_from(&row)).transpose()
}

async fn insert_member(
    tx: &mut Transaction<'static, Postgres>,
    chat: ChatId,
    user: &User,
    role: Role,
    joined_at: time::OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO chat_members (chat_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(chat.0)
    .bind(user.id.0)
    .bind(role.as_str())
    .bind(joined_at)
    .execute(&mut **tx)
    .await
    .map_err(conflict_on("member"))?;
    Ok(())
}

#[async_trait]
impl ChatStore for StateDb {
    async fn create_chat(
        &self,
        chat: &Chat,
        members: &[(User, Role)],
        direct_key: Option<&str>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO chats (id, kind, name, owner_id, created_at, direct_key) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(chat.id.0)
        .bind(chat.kind.as_str())
        .bind(chat.name.as_ref().map(ChatName::as_str))
        .bind(chat.owner_id.0)
        .bind(chat.created_at)
        .bind(direct_key)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on("direct_chat"))?;
        for (user, role) in members {
            insert_member(&mut tx, chat.id, user, *role, chat.created_at).await?;
        }
        let event = DomainEvent::ChatCreated {
            chat: chat.clone(),
            members: members.iter().map(|(u, _)| u.clone()).collect(),
        };
        outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn chat_by_direct_key(&self, key: &str) -> StoreResult<Option<Chat>> {
        let row = sqlx::query(&format!("{CHAT_SELECT} WHERE c.direct_key = $1"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| chat_from(&row)).transpose()
    }

    async fn chat(&self, id: ChatId) -> StoreResult<Option<Chat>> {
        let row = sqlx::query(&format!("{CHAT_SELECT} WHERE c.id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|row| chat_from(&row)).transpose()
    }

    async fn role_of(&self, chat: ChatId, user: UserId) -> StoreResult<Option<Role>> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM chat_members WHERE chat_id = $1 AND user_id = $2")
                .bind(chat.0)
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(unavailable)?;
        role.as_deref().map(role_from).transpose()
    }

    async fn memberships(&self, user: UserId) -> StoreResult<Vec<Membership>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS}, m.role AS m_role, m.last_read_seq AS m_last_read_seq \
             FROM chat_members m JOIN chats c ON c.id = m.chat_id WHERE m.user_id = $1 ORDER BY c.created_at"
        ))
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("m_role").map_err(unavailable)?;
                Ok(Membership {
                    chat: chat_from(row)?,
                    role: role_from(&role)?,
                    last_read_seq: row.try_get("m_last_read_seq").map_err(unavailable)?,
                })
            })
            .collect()
    }

    async fn chat_ids(&self, user: UserId) -> StoreResult<Vec<ChatId>> {
        let ids: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT chat_id FROM chat_members WHERE user_id = $1")
                .bind(user.0)
                .fetch_all(&self.pool)
                .await
                .map_err(unavailable)?;
        Ok(ids.into_iter().map(ChatId).collect())
    }

    async fn rename_chat(&self, chat: ChatId, name: &ChatName) -> StoreResult<Option<Chat>> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query("UPDATE chats SET name = $1 WHERE id = $2")
            .bind(name.as_str())
            .bind(chat.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let Some(updated) = chat_in(&mut tx, chat).await? else {
            return Ok(None);
        };
        outbox::record(
            &mut tx,
            &DomainEvent::ChatRenamed {
                chat: updated.clone(),
            },
        )
        .await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Some(updated))
    }

    async fn delete_chat(&self, chat: ChatId) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let member_ids: Vec<uuid::Uuid> =
            sqlx::query_scalar("SELECT user_id FROM chat_members WHERE chat_id = $1")
                .bind(chat.0)
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
        let done = sqlx::query("DELETE FROM chats WHERE id = $1")
            .bind(chat.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        crate::removals::record_membership(&mut tx, chat, &member_ids, true).await?;
        let event = DomainEvent::ChatDeleted {
            chat_id: chat,
            member_ids: member_ids.into_iter().map(UserId).collect(),
        };
        outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn members(&self, chat: ChatId) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, m.role, m.joined_at FROM chat_members m JOIN users u ON u.id = m.user_id \
             WHERE m.chat_id = $1 ORDER BY m.joined_at, u.username COLLATE \"C\""
        ))
        .bind(chat.0)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("role").map_err(unavailable)?;
                Ok(Member {
                    user: user_from(row, "u_")?,
                    role: role_from(&role)?,
                    joined_at: row.try_get("joined_at").map_err(unavailable)?,
                })
            })
            .collect()
    }

    async fn add_member(&self, chat: ChatId, user: &User, role: Role) -> StoreResult<Member> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let joined_at = harmony_core::now();
        insert_member(&mut tx, chat, user, role, joined_at).await?;
        crate::removals::record_membership(&mut tx, chat, &[user.id.0], false).await?;
        let event = DomainEvent::MemberAdded {
            chat_id: chat,
            user: user.clone(),
            role,
        };
        outbox::record(&mut tx, &event).await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(Member {
            user: user.clone(),
            role,
            joined_at,
        })
    }

    async fn remove_member(&self, chat: ChatId, user: UserId) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let done = sqlx::query("DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2")
            .bind(chat.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        crate::removals::record_membership(&mut tx, chat, &[user.0], true).await?;
        outbox::record(
            &mut tx,
            &DomainEvent::MemberRemoved {
                chat_id: chat,
                user_id: user,
            },
        )
        .await?;
        tx.commit().await.map_err(unavailable)?;
        Ok(true)
    }

    async fn set_read_marker(&self, chat: ChatId, user: UserId, seq: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE chat_members SET last_read_seq = GREATEST(last_read_seq, $1) WHERE chat_id = $2 AND user_id = $3",
        )
        .bind(seq)
        .bind(chat.0)
        .bind(user.0)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn presence_peers(
        &self,
        user: UserId,
        max_chat_members: u32,
    ) -> StoreResult<Vec<UserId>> {
        // A chat's size is counted only up to one past the bound: a big chat costs as much as a
        // small one here.
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT them.user_id FROM chat_members me \
             JOIN chat_members them ON them.chat_id = me.chat_id \
             WHERE me.user_id = $1 AND them.user_id <> $1 \
             AND (SELECT COUNT(*) FROM (SELECT 1 FROM chat_members c \
                  WHERE c.chat_id = me.chat_id LIMIT $2 + 1) AS counted) <= $2 \
             UNION SELECT user_b FROM friendships WHERE user_a = $1 \
             UNION SELECT user_a FROM friendships WHERE user_b = $1",
        )
        .bind(user.0)
        .bind(i64::from(max_chat_members))
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    async fn acquainted(&self, user: UserId, others: &[UserId]) -> StoreResult<Vec<UserId>> {
        let others: Vec<uuid::Uuid> = others.iter().map(|o| o.0).collect();
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT o.id FROM unnest($2::uuid[]) AS o(id) \
             WHERE EXISTS (SELECT 1 FROM friendships f \
                 WHERE (f.user_a = $1 AND f.user_b = o.id) OR (f.user_a = o.id AND f.user_b = $1)) \
             OR EXISTS (SELECT 1 FROM chat_members me JOIN chat_members them \
                 ON them.chat_id = me.chat_id AND them.user_id = o.id WHERE me.user_id = $1)",
        )
        .bind(user.0)
        .bind(&others)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(ids.into_iter().map(UserId).collect())
    }
}
