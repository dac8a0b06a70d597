//! Chats, members and read markers. Every change writes its outbox event in its transaction.

use async_trait::async_trait;
use harmony_core::events::DomainEvent;
use harmony_core::model::{Chat, ChatKind, Member, Role, User};
use harmony_core::ports::{ChatStore, Membership, StoreError, StoreResult};
use harmony_core::values::ChatName;
use harmony_core::{ChatId, UserId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, Transaction};

use crate::users::{user_from, USER_COLUMNS};
use crate::{conflict_on, from_ms, ms, parse, unavailable, Database};

macro_rules! chat_columns {
    () => {
        "c.id, c.kind, c.name, c.owner_id, c.created_at, \
         (SELECT COUNT(*) FROM chat_members cm WHERE cm.chat_id = c.id) AS member_count"
    };
}
const CHAT_COLUMNS: &str = chat_columns!();
const CHAT_SELECT: &str = concat!("SELECT ", chat_columns!(), " FROM chats c");

fn chat_from(row: &SqliteRow) -> StoreResult<Chat> {
    let id: String = row.try_get("id").map_err(unavailable)?;
    let kind: String = row.try_get("kind").map_err(unavailable)?;
    let name: Option<String> = row.try_get("name").map_err(unavailable)?;
    let owner: String = row.try_get("owner_id").map_err(unavailable)?;
    let count: i64 = row.try_get("member_count").map_err(unavailable)?;
    Ok(Chat {
        id: parse("chat id", &id)?,
        kind: ChatKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("chat kind {kind:?}")))?,
        name: name.map(ChatName::from_trusted),
        owner_id: parse("user id", &owner)?,
        created_at: from_ms(row.try_get("created_at").map_err(unavailable)?)?,
        member_count: u32::try_from(count).unwrap_or(u32::MAX),
    })
}

fn role_from(raw: &str) -> StoreResult<Role> {
    Role::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("role {raw:?}")))
}

impl Database {
    async fn chat_in(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        id: ChatId,
    ) -> StoreResult<Option<Chat>> {
        let row = sqlx::query(&format!("{CHAT_SELECT} WHERE c.id = ?"))
            .bind(id.to_string())
            .fetch_optional(&mut **tx)
            .await
            .map_err(unavailable)?;
        row.map(|row| chat_from(&row)).transpose()
    }

    async fn insert_member(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        chat: ChatId,
        user: &User,
        role: Role,
        joined_at: time::OffsetDateTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO chat_members (chat_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
        )
        .bind(chat.to_string())
        .bind(user.id.to_string())
        .bind(role.as_str())
        .bind(ms(joined_at))
        .execute(&mut **tx)
        .await
        .map_err(conflict_on("member"))?;
        Ok(())
    }
}

#[async_trait]
impl ChatStore for Database {
    async fn create_chat(
        &self,
        chat: &Chat,
        members: &[(User, Role)],
        direct_key: Option<&str>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO chats (id, kind, name, owner_id, created_at, direct_key) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(chat.id.to_string())
        .bind(chat.kind.as_str())
        .bind(chat.name.as_ref().map(ChatName::as_str))
        .bind(chat.owner_id.to_string())
        .bind(ms(chat.created_at))
        .bind(direct_key)
        .execute(&mut *tx)
        .await
        .map_err(conflict_on("direct_chat"))?;
        for (user, role) in members {
            self.insert_member(&mut tx, chat.id, user, *role, chat.created_at)
                .await?;
        }
        let event = DomainEvent::ChatCreated {
            chat: chat.clone(),
            members: members.iter().map(|(u, _)| u.clone()).collect(),
        };
        self.record_event(&mut tx, &event).await?;
        self.commit_with_events(tx).await
    }

    async fn chat_by_direct_key(&self, key: &str) -> StoreResult<Option<Chat>> {
        let row = sqlx::query(&format!("{CHAT_SELECT} WHERE c.direct_key = ?"))
            .bind(key)
            .fetch_optional(&self.writer)
            .await
            .map_err(unavailable)?;
        row.map(|row| chat_from(&row)).transpose()
    }

    async fn chat(&self, id: ChatId) -> StoreResult<Option<Chat>> {
        let row = sqlx::query(&format!("{CHAT_SELECT} WHERE c.id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        row.map(|row| chat_from(&row)).transpose()
    }

    async fn role_of(&self, chat: ChatId, user: UserId) -> StoreResult<Option<Role>> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM chat_members WHERE chat_id = ? AND user_id = ?")
                .bind(chat.to_string())
                .bind(user.to_string())
                .fetch_optional(&self.reader)
                .await
                .map_err(unavailable)?;
        role.as_deref().map(role_from).transpose()
    }

    async fn memberships(&self, user: UserId) -> StoreResult<Vec<Membership>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHAT_COLUMNS}, m.role AS m_role, m.last_read_seq AS m_last_read_seq \
             FROM chat_members m JOIN chats c ON c.id = m.chat_id WHERE m.user_id = ? \
             ORDER BY c.created_at"
        ))
        .bind(user.to_string())
        .fetch_all(&self.reader)
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

    async fn rename_chat(&self, chat: ChatId, name: &ChatName) -> StoreResult<Option<Chat>> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE chats SET name = ? WHERE id = ?")
            .bind(name.as_str())
            .bind(chat.to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let Some(updated) = self.chat_in(&mut tx, chat).await? else {
            return Ok(None);
        };
        self.record_event(
            &mut tx,
            &DomainEvent::ChatRenamed {
                chat: updated.clone(),
            },
        )
        .await?;
        self.commit_with_events(tx).await?;
        Ok(Some(updated))
    }

    async fn delete_chat(&self, chat: ChatId) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let member_ids: Vec<String> =
            sqlx::query_scalar("SELECT user_id FROM chat_members WHERE chat_id = ?")
                .bind(chat.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(unavailable)?;
        let done = sqlx::query("DELETE FROM chats WHERE id = ?")
            .bind(chat.to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let member_ids = member_ids
            .iter()
            .map(|id| parse("user id", id))
            .collect::<StoreResult<Vec<UserId>>>()?;
        let event = DomainEvent::ChatDeleted {
            chat_id: chat,
            member_ids,
        };
        self.record_event(&mut tx, &event).await?;
        self.commit_with_events(tx).await?;
        Ok(true)
    }

    async fn members(&self, chat: ChatId) -> StoreResult<Vec<Member>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, m.role, m.joined_at FROM chat_members m \
             JOIN users u ON u.id = m.user_id WHERE m.chat_id = ? ORDER BY m.joined_at, u.username"
        ))
        .bind(chat.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("role").map_err(unavailable)?;
                Ok(Member {
                    user: user_from(row, "u_")?,
                    role: role_from(&role)?,
                    joined_at: from_ms(row.try_get("joined_at").map_err(unavailable)?)?,
                })
            })
            .collect()
    }

    async fn add_member(&self, chat: ChatId, user: &User, role: Role) -> StoreResult<Member> {
        let mut tx = self.begin_write().await?;
        let joined_at = harmony_core::now();
        self.insert_member(&mut tx, chat, user, role, joined_at)
            .await?;
        let event = DomainEvent::MemberAdded {
            chat_id: chat,
            user: user.clone(),
            role,
        };
        self.record_event(&mut tx, &event).await?;
        self.commit_with_events(tx).await?;
        Ok(Member {
            user: user.clone(),
            role,
            joined_at,
        })
    }

    async fn remove_member(&self, chat: ChatId, user: UserId) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM chat_members WHERE chat_id = ? AND user_id = ?")
            .bind(chat.to_string())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let event = DomainEvent::MemberRemoved {
            chat_id: chat,
            user_id: user,
        };
        self.record_event(&mut tx, &event).await?;
        self.commit_with_events(tx).await?;
        Ok(true)
    }

    async fn set_read_marker(&self, chat: ChatId, user: UserId, seq: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE chat_members SET last_read_seq = MAX(last_read_seq, ?) \
             WHERE chat_id = ? AND user_id = ?",
        )
        .bind(seq)
        .bind(chat.to_string())
        .bind(user.to_string())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }
}
