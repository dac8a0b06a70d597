//! Chats, members and read markers. Every change writes its outbox event in its transaction.

use async_trait::async_trait;
use harmony_core::events::DomainEvent;
use harmony_core::model::{Chat, ChatKind, Member, Role, User};
use harmony_core::ports::{ChatStore, Membership, StoreError, StoreResult};
use harmony_core::values::ChatName;
use harmony_core::{ChatId, UserId};
use rusqlite::{Connection, Row};

use crate::conn::Wake;
use crate::outbox::record_event;
use crate::users::{user_from, U, USER_COLUMNS};
use crate::{col, conflict_on, exec, from_ms, ms, parse, row, rows, unavailable, Database};

macro_rules! chat_columns {
    () => {
        "c.id, c.kind, c.name, c.owner_id, c.created_at, \
         (SELECT COUNT(*) FROM chat_members cm WHERE cm.chat_id = c.id) AS member_count"
    };
}
const CHAT_COLUMNS: &str = chat_columns!();
const CHAT_SELECT: &str = concat!("SELECT ", chat_columns!(), " FROM chats c");

fn chat_from(row: &Row<'_>) -> StoreResult<Chat> {
    let id: String = col(row, "id")?;
    let kind: String = col(row, "kind")?;
    let name: Option<String> = col(row, "name")?;
    let owner: String = col(row, "owner_id")?;
    let count: i64 = col(row, "member_count")?;
    Ok(Chat {
        id: parse("chat id", &id)?,
        kind: ChatKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("chat kind {kind:?}")))?,
        name: name.map(ChatName::from_trusted),
        owner_id: parse("user id", &owner)?,
        created_at: from_ms(col(row, "created_at")?)?,
        member_count: u32::try_from(count).unwrap_or(u32::MAX),
    })
}

fn role_from(raw: &str) -> StoreResult<Role> {
    Role::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("role {raw:?}")))
}

fn chat_where(conn: &Connection, clause: &str, value: &str) -> StoreResult<Option<Chat>> {
    row(
        conn,
        &format!("{CHAT_SELECT} WHERE {clause}"),
        [value],
        chat_from,
    )
}

fn insert_member(
    conn: &Connection,
    chat: ChatId,
    user: &User,
    role: Role,
    joined_at: time::OffsetDateTime,
) -> StoreResult<()> {
    exec(
        conn,
        "INSERT INTO chat_members (chat_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)",
        (
            chat.to_string(),
            user.id.to_string(),
            role.as_str(),
            ms(joined_at),
        ),
    )
    .map_err(conflict_on("member"))?;
    Ok(())
}

#[async_trait]
impl ChatStore for Database {
    async fn create_chat(
        &self,
        chat: &Chat,
        members: &[(User, Role)],
        direct_key: Option<&str>,
    ) -> StoreResult<()> {
        let (chat, members) = (chat.clone(), members.to_vec());
        let direct_key = direct_key.map(str::to_owned);
        self.write(Wake::Outbox, move |conn| {
            exec(
                conn,
                "INSERT INTO chats (id, kind, name, owner_id, created_at, direct_key) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                (
                    chat.id.to_string(),
                    chat.kind.as_str(),
                    chat.name.as_ref().map(ChatName::as_str),
                    chat.owner_id.to_string(),
                    ms(chat.created_at),
                    direct_key,
                ),
            )
            .map_err(conflict_on("direct_chat"))?;
            for (user, role) in &members {
                insert_member(conn, chat.id, user, *role, chat.created_at)?;
            }
            let event = DomainEvent::ChatCreated {
                members: members.into_iter().map(|(u, _)| u).collect(),
                chat,
            };
            record_event(conn, &event)
        })
        .await
    }

    async fn chat_by_direct_key(&self, key: &str) -> StoreResult<Option<Chat>> {
        let key = key.to_owned();
        self.write(Wake::Nobody, move |conn| {
            chat_where(conn, "c.direct_key = ?", &key)
        })
        .await
    }

    async fn chat(&self, id: ChatId) -> StoreResult<Option<Chat>> {
        self.read(move |conn| chat_where(conn, "c.id = ?", &id.to_string()))
            .await
    }

    async fn role_of(&self, chat: ChatId, user: UserId) -> StoreResult<Option<Role>> {
        self.read(move |conn| {
            let role = row(
                conn,
                "SELECT role FROM chat_members WHERE chat_id = ? AND user_id = ?",
                (chat.to_string(), user.to_string()),
                |r| col::<String>(r, "role"),
            )?;
            role.as_deref().map(role_from).transpose()
        })
        .await
    }

    async fn memberships(&self, user: UserId) -> StoreResult<Vec<Membership>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {CHAT_COLUMNS}, m.role AS m_role, m.last_read_seq AS m_last_read_seq \
                 FROM chat_members m JOIN chats c ON c.id = m.chat_id WHERE m.user_id = ? \
                 ORDER BY c.created_at"
            );
            rows(conn, &sql, [user.to_string()], |r| {
                let role: String = col(r, "m_role")?;
                Ok(Membership {
                    chat: chat_from(r)?,
                    role: role_from(&role)?,
                    last_read_seq: col(r, "m_last_read_seq")?,
                })
            })
        })
        .await
    }

    async fn chat_ids(&self, user: UserId) -> StoreResult<Vec<ChatId>> {
        self.read(move |conn| {
            rows(
                conn,
                "SELECT chat_id FROM chat_members WHERE user_id = ?",
                [user.to_string()],
                |r| parse("chat id", &col::<String>(r, "chat_id")?),
            )
        })
        .await
    }

    async fn rename_chat(&self, chat: ChatId, name: &ChatName) -> StoreResult<Option<Chat>> {
        let name = name.clone();
        self.write(Wake::Outbox, move |conn| {
            let done = exec(
                conn,
                "UPDATE chats SET name = ? WHERE id = ?",
                (name.as_str(), chat.to_string()),
            )
            .map_err(unavailable)?;
            if done == 0 {
                return Ok(None);
            }
            let Some(updated) = chat_where(conn, "c.id = ?", &chat.to_string())? else {
                return Ok(None);
            };
            let event = DomainEvent::ChatRenamed {
                chat: updated.clone(),
            };
            record_event(conn, &event)?;
            Ok(Some(updated))
        })
        .await
    }

    async fn delete_chat(&self, chat: ChatId) -> StoreResult<bool> {
        self.write(Wake::Outbox, move |conn| {
            let id = chat.to_string();
            let member_ids = rows(
                conn,
                "SELECT user_id FROM chat_members WHERE chat_id = ?",
                [&id],
                |r| parse::<UserId>("user id", &col::<String>(r, "user_id")?),
            )?;
            let done = exec(conn, "DELETE FROM chats WHERE id = ?", [&id]).map_err(unavailable)?;
            if done == 0 {
                return Ok(false);
            }
            let event = DomainEvent::ChatDeleted {
                chat_id: chat,
                member_ids,
            };
            record_event(conn, &event)?;
            Ok(true)
        })
        .await
    }

    async fn members(&self, chat: ChatId) -> StoreResult<Vec<Member>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {USER_COLUMNS}, m.role, m.joined_at FROM chat_members m \
                 JOIN users u ON u.id = m.user_id WHERE m.chat_id = ? \
                 ORDER BY m.joined_at, u.username"
            );
            rows(conn, &sql, [chat.to_string()], |r| {
                let role: String = col(r, "role")?;
                Ok(Member {
                    user: user_from(r, &U)?,
                    role: role_from(&role)?,
                    joined_at: from_ms(col(r, "joined_at")?)?,
                })
            })
        })
        .await
    }

    async fn add_member(&self, chat: ChatId, user: &User, role: Role) -> StoreResult<Member> {
        let user = user.clone();
        self.write(Wake::Outbox, move |conn| {
            let joined_at = harmony_core::now();
            insert_member(conn, chat, &user, role, joined_at)?;
            let event = DomainEvent::MemberAdded {
                chat_id: chat,
                user: user.clone(),
                role,
            };
            record_event(conn, &event)?;
            Ok(Member {
                user,
                role,
                joined_at,
            })
        })
        .await
    }

    async fn remove_member(&self, chat: ChatId, user: UserId) -> StoreResult<bool> {
        self.write(Wake::Outbox, move |conn| {
            let done = exec(
                conn,
                "DELETE FROM chat_members WHERE chat_id = ? AND user_id = ?",
                (chat.to_string(), user.to_string()),
            )
            .map_err(unavailable)?;
            if done == 0 {
                return Ok(false);
            }
            let event = DomainEvent::MemberRemoved {
                chat_id: chat,
                user_id: user,
            };
            record_event(conn, &event)?;
            Ok(true)
        })
        .await
    }

    async fn set_read_marker(&self, chat: ChatId, user: UserId, seq: i64) -> StoreResult<()> {
        self.write(Wake::Nobody, move |conn| {
            exec(
                conn,
                "UPDATE chat_members SET last_read_seq = MAX(last_read_seq, ?) \
                 WHERE chat_id = ? AND user_id = ?",
                (seq, chat.to_string(), user.to_string()),
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn presence_peers(
        &self,
        user: UserId,
        max_chat_members: u32,
    ) -> StoreResult<Vec<UserId>> {
        self.read(move |conn| {
            // A chat's size is counted only up to one past the bound: a big chat costs as much
            // as a small one here.
            rows(
                conn,
                "SELECT them.user_id AS id FROM chat_members me \
                 JOIN chat_members them ON them.chat_id = me.chat_id \
                 WHERE me.user_id = ?1 AND them.user_id <> ?1 \
                 AND (SELECT COUNT(*) FROM (SELECT 1 FROM chat_members c \
                      WHERE c.chat_id = me.chat_id LIMIT ?2 + 1)) <= ?2 \
                 UNION SELECT user_b FROM friendships WHERE user_a = ?1 \
                 UNION SELECT user_a FROM friendships WHERE user_b = ?1",
                (user.to_string(), i64::from(max_chat_members)),
                |r| parse("user id", &col::<String>(r, "id")?),
            )
        })
        .await
    }

    async fn acquainted(&self, user: UserId, others: &[UserId]) -> StoreResult<Vec<UserId>> {
        let others =
            serde_json::to_string(&others.iter().map(|o| o.to_string()).collect::<Vec<_>>())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.read(move |conn| {
            rows(
                conn,
                "SELECT DISTINCT o.value AS id FROM json_each(?2) o \
                 WHERE EXISTS (SELECT 1 FROM friendships f \
                     WHERE (f.user_a = ?1 AND f.user_b = o.value) \
                        OR (f.user_a = o.value AND f.user_b = ?1)) \
                 OR EXISTS (SELECT 1 FROM chat_members me JOIN chat_members them \
                     ON them.chat_id = me.chat_id AND them.user_id = o.value \
                     WHERE me.user_id = ?1)",
                (user.to_string(), others),
                |r| parse("user id", &col::<String>(r, "id")?),
            )
        })
        .await
    }
}
