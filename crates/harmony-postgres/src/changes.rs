//! Changes to messages in the cluster's message store (decision record 0004): the sink stores
//! every entry of a chat in order, and a change entry stored for the first time is applied to
//! its target's row with the core's one rule, in the same transaction. A delete empties the
//! content of the message and of its edits.

use harmony_core::changes::{apply, Effect, MessageState, Target};
use harmony_core::model::Message;
use harmony_core::ports::StoreResult;
use harmony_core::UserId;
use sqlx::{Postgres, Row, Transaction};

use crate::history::{json, COLUMNS};
use crate::unavailable;

/// A JSON text column's value.
fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Inserts the entries not stored yet; the ids inserted.
pub(crate) async fn insert_entries(
    tx: &mut Transaction<'_, Postgres>,
    messages: &[Message],
) -> StoreResult<Vec<String>> {
    let mut query = sqlx::QueryBuilder::new(format!("INSERT INTO messages ({COLUMNS}) "));
    query.push_values(messages, |mut row, m| {
        row.push_bind(m.id.to_string())
            .push_bind(m.chat_id.0)
            .push_bind(m.seq)
            .push_bind(m.author.id.0)
            .push_bind(m.content.as_str().to_owned())
            .push_bind(m.client_msg_id.as_ref().map(|c| c.as_str().to_owned()))
            .push_bind(m.created_at)
            .push_bind(m.change.as_ref().map(to_json))
            .push_bind(m.change.as_ref().map(|c| c.target().to_string()))
            .push_bind(m.reply_to.as_ref().map(|q| q.id.to_string()))
            .push_bind(m.reply_to.as_ref().map(to_json))
            .push_bind(
                (!m.mentions.users.is_empty())
                    .then(|| m.mentions.users.iter().map(|u| u.0).collect::<Vec<_>>()),
            )
            .push_bind(m.mentions.everyone)
            .push_bind(m.state.deleted_at)
            .push_bind(m.notice.as_ref().map(to_json));
    });
    // Any conflict: the id (a replay) or the position (told apart by the caller).
    query.push(" ON CONFLICT DO NOTHING RETURNING id");
    query
        .build_query_scalar()
        .fetch_all(&mut **tx)
        .await
        .map_err(unavailable)
}

/// Applies a change entry just stored to its target (locked for the transaction). A change the
/// target's state refuses (the sequencer let through a reaction that a racing one made
/// redundant) changes nothing.
pub(crate) async fn apply_stored(
    tx: &mut Transaction<'_, Postgres>,
    entry: &Message,
) -> StoreResult<()> {
    let Some(change) = &entry.change else {
        return Ok(());
    };
    let target_id = change.target().to_string();
    let found = sqlx::query(
        "SELECT author_id, edited_at, deleted_at, reactions FROM messages \
         WHERE id = $1 AND chat_id = $2 AND change IS NULL FOR UPDATE",
    )
    .bind(&target_id)
    .bind(entry.chat_id.0)
    .fetch_optional(&mut **tx)
    .await
    .map_err(unavailable)?;
    let Some(row) = found else {
        tracing::warn!(entry = %entry.id, target = %target_id, "a change's target is not stored; nothing to change");
        return Ok(());
    };
    let target = Target {
        author: UserId(row.try_get("author_id").map_err(unavailable)?),
        state: MessageState {
            edited_at: row.try_get("edited_at").map_err(unavailable)?,
            deleted_at: row.try_get("deleted_at").map_err(unavailable)?,
            reactions: json(&row, "reactions")?.unwrap_or_default(),
        },
    };
    let effect = match apply(change, entry.author.id, entry.created_at, &target) {
        Ok(effect) => effect,
        Err(refusal) => {
            tracing::debug!(entry = %entry.id, ?refusal, "a stored change changes nothing");
            return Ok(());
        }
    };
    let query = match effect {
        Effect::Edit { at } => {
            sqlx::query("UPDATE messages SET content = $1, edited_at = $2 WHERE id = $3")
                .bind(entry.content.as_str())
                .bind(at)
                .bind(&target_id)
        }
        Effect::Reactions(reactions) => {
            sqlx::query("UPDATE messages SET reactions = $1 WHERE id = $2")
                .bind((!reactions.is_empty()).then(|| to_json(&reactions)))
                .bind(&target_id)
        }
        Effect::Delete { at } => sqlx::query(
            "UPDATE messages SET content = '', deleted_at = $1, reactions = NULL \
             WHERE id = $2 OR (target_id = $2 AND (change::json)->>'kind' = 'edit')",
        )
        .bind(at)
        .bind(&target_id),
    };
    query.execute(&mut **tx).await.map_err(unavailable)?;
    Ok(())
}
