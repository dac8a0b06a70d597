//! What the sequencer decides about changes to messages (decision record 0004), in its placing
//! transaction under the chat's head lock: a change's target must be a message of the same
//! chat, an edit must come from its author, and nothing changes a deleted message (a second
//! delete is "unchanged"). A refused change gets no seq and is remembered, so a replay gets the
//! same answer. A placed delete scrubs the records of the message and of its edits.

use std::collections::HashMap;

use harmony_core::changes::{Change, Refusal};
use harmony_core::model::NewMessage;
use harmony_core::ports::{StoreError, StoreResult};
use harmony_core::{ChatId, MessageId, UserId};
use harmony_protocol::record::MessageRecordV1;
use sqlx::{PgConnection, Postgres, Row, Transaction};
use time::OffsetDateTime;

use crate::unavailable;

/// What the order knows of a message a change names.
struct TargetRow {
    chat: ChatId,
    author: UserId,
    message: bool,
    deleted: bool,
}

/// The targets of a batch's changes, as placed before it and by it so far.
#[derive(Default)]
pub(crate) struct Targets {
    rows: HashMap<MessageId, TargetRow>,
}

impl Targets {
    /// Reads the placed entries the batch's changes name.
    pub(crate) async fn load(conn: &mut PgConnection, batch: &[NewMessage]) -> StoreResult<Self> {
        let ids: Vec<String> = batch
            .iter()
            .filter_map(|m| m.change.as_ref().map(|c| c.target().to_string()))
            .collect();
        let mut out = Self::default();
        if ids.is_empty() {
            return Ok(out);
        }
        let rows = sqlx::query(
            "SELECT id, chat_id, author_id, kind, deleted_at IS NOT NULL AS deleted \
             FROM sequenced WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
        for row in &rows {
            let id: String = row.try_get("id").map_err(unavailable)?;
            let Ok(id) = id.parse::<MessageId>() else {
                continue;
            };
            let kind: Option<String> = row.try_get("kind").map_err(unavailable)?;
            out.rows.insert(
                id,
                TargetRow {
                    chat: ChatId(row.try_get("chat_id").map_err(unavailable)?),
                    author: UserId(row.try_get("author_id").map_err(unavailable)?),
                    message: kind.is_none(),
                    deleted: row.try_get("deleted").map_err(unavailable)?,
                },
            );
        }
        Ok(out)
    }

    /// Whether `m` may be placed next; a placed message or delete updates what later entries
    /// of the batch see.
    pub(crate) fn decide(&mut self, m: &NewMessage) -> Result<(), Refusal> {
        let Some(change) = &m.change else {
            self.rows.insert(
                m.id,
                TargetRow {
                    chat: m.chat_id,
                    author: m.author.id,
                    message: true,
                    deleted: false,
                },
            );
            return Ok(());
        };
        let target = match self.rows.get_mut(&change.target()) {
            Some(t) if t.chat == m.chat_id && t.message => t,
            _ => return Err(Refusal::NotFound),
        };
        if target.deleted {
            return Err(match change {
                Change::Delete { .. } | Change::Unreact { .. } => Refusal::Unchanged,
                _ => Refusal::Deleted,
            });
        }
        match change {
            Change::Edit { .. } if target.author != m.author.id => Err(Refusal::NotAuthor),
            Change::Delete { .. } => {
                target.deleted = true;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Marks the deleted messages and empties the records of each and of its edits.
pub(crate) async fn scrub(
    tx: &mut Transaction<'_, Postgres>,
    deletes: &[(MessageId, OffsetDateTime)],
) -> StoreResult<()> {
    for (target, at) in deletes {
        let target = target.to_string();
        let rows = sqlx::query(
            "SELECT id, record FROM sequenced \
             WHERE id = $1 OR (target_id = $1 AND kind = 'edit') FOR UPDATE",
        )
        .bind(&target)
        .fetch_all(&mut **tx)
        .await
        .map_err(unavailable)?;
        for row in &rows {
            let id: String = row.try_get("id").map_err(unavailable)?;
            let record: Vec<u8> = row.try_get("record").map_err(unavailable)?;
            let scrubbed = MessageRecordV1::decode(&record)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .scrubbed(*at)
                .encode();
            sqlx::query("UPDATE sequenced SET record = $1, deleted_at = $2 WHERE id = $3")
                .bind(scrubbed)
                .bind(at)
                .bind(&id)
                .execute(&mut **tx)
                .await
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

/// Remembers refused changes: `(id, chat, refusal)`.
pub(crate) async fn remember_refused(
    tx: &mut Transaction<'_, Postgres>,
    refused: &[(String, ChatId, Refusal)],
) -> StoreResult<()> {
    if refused.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = refused.iter().map(|r| r.0.as_str()).collect();
    let chats: Vec<uuid::Uuid> = refused.iter().map(|r| r.1 .0).collect();
    let why: Vec<&str> = refused.iter().map(|r| r.2.as_str()).collect();
    sqlx::query(
        "INSERT INTO refused_changes (id, chat_id, refusal) \
         SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .bind(&chats)
    .bind(&why)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// The refusals of the batch's changes refused before.
pub(crate) async fn refused(
    conn: &mut PgConnection,
    batch: &[NewMessage],
) -> StoreResult<HashMap<MessageId, Refusal>> {
    let ids: Vec<String> = batch
        .iter()
        .filter(|m| m.change.is_some())
        .map(|m| m.id.to_string())
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = sqlx::query("SELECT id, refusal FROM refused_changes WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable)?;
    let mut out = HashMap::new();
    for row in &rows {
        let id: String = row.try_get("id").map_err(unavailable)?;
        let why: String = row.try_get("refusal").map_err(unavailable)?;
        if let (Ok(id), Some(why)) = (id.parse(), Refusal::parse(&why)) {
            out.insert(id, why);
        }
    }
    Ok(out)
}
