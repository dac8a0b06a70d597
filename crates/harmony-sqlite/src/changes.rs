//! Changes to messages in the single node's history (decision record 0004): the append checks
//! a change against its target with the core's one rule, and storing it applies it to the
//! target's row in the same transaction. A delete empties the content of the message and of
//! its edits, in history and in the log's records.

use harmony_core::changes::{apply, Change, Effect, MessageState, Refusal, Target};
use harmony_core::model::Message;
use harmony_core::ports::{StoreError, StoreResult};
use harmony_core::MessageId;
use harmony_protocol::record::MessageRecordV1;
use rusqlite::Connection;
use time::OffsetDateTime;

use crate::{col, exec, from_ms, ms, parse, row, rows, unavailable};

/// The message `id` of `chat` as a change sees it; `None` when the chat has no message (not a
/// change) with that id.
fn target_of(conn: &Connection, chat: &str, id: MessageId) -> StoreResult<Option<Target>> {
    let found = row(
        conn,
        "SELECT author_id, edited_at, deleted_at, reactions FROM messages \
         WHERE id = ? AND chat_id = ? AND change IS NULL",
        (id.to_string(), chat),
        |r| {
            let author: String = col(r, "author_id")?;
            let at = |name: &str| -> StoreResult<Option<OffsetDateTime>> {
                col::<Option<i64>>(r, name)?.map(from_ms).transpose()
            };
            let reactions: Option<String> = col(r, "reactions")?;
            let reactions = match reactions {
                Some(raw) => serde_json::from_str(&raw)
                    .map_err(|e| StoreError::Corrupt(format!("reactions of {id}: {e}")))?,
                None => Vec::new(),
            };
            Ok(Target {
                author: parse("user id", &author)?,
                state: MessageState {
                    edited_at: at("edited_at")?,
                    deleted_at: at("deleted_at")?,
                    reactions,
                },
            })
        },
    )?;
    Ok(found)
}

/// What applying `entry` (a change) would do where the chat stands now.
pub(crate) fn check(conn: &Connection, entry: &Message) -> StoreResult<Result<Effect, Refusal>> {
    let Some(change) = &entry.change else {
        return Err(StoreError::Corrupt("checking a message as a change".into()));
    };
    let chat = entry.chat_id.to_string();
    Ok(match target_of(conn, &chat, change.target())? {
        None => Err(Refusal::NotFound),
        Some(target) => apply(change, entry.author.id, entry.created_at, &target),
    })
}

/// Applies a change entry just stored to its target (a message entry: nothing). A change the
/// target's state refuses changes nothing.
pub(crate) fn apply_stored(conn: &Connection, entry: &Message) -> StoreResult<()> {
    let Some(change) = &entry.change else {
        return Ok(());
    };
    let effect = match check(conn, entry)? {
        Ok(effect) => effect,
        Err(refusal) => {
            tracing::debug!(entry = %entry.id, ?refusal, "a stored change changes nothing");
            return Ok(());
        }
    };
    let target = change.target().to_string();
    match effect {
        Effect::Edit { at } => exec(
            conn,
            "UPDATE messages SET content = ?, edited_at = ? WHERE id = ?",
            (entry.content.as_str(), ms(at), &target),
        ),
        Effect::Reactions(reactions) => exec(
            conn,
            "UPDATE messages SET reactions = ? WHERE id = ?",
            (
                (!reactions.is_empty())
                    .then(|| serde_json::to_string(&reactions).unwrap_or_default()),
                &target,
            ),
        ),
        Effect::Delete { at } => return scrub(conn, change, at),
    }
    .map_err(unavailable)?;
    Ok(())
}

/// Empties the deleted message and its edits: their rows and their log records.
fn scrub(conn: &Connection, change: &Change, at: OffsetDateTime) -> StoreResult<()> {
    let target = change.target().to_string();
    exec(
        conn,
        "UPDATE messages SET content = '', deleted_at = ?1, reactions = NULL \
         WHERE id = ?2 OR target_id = ?2 AND json_extract(change, '$.kind') = 'edit'",
        (ms(at), &target),
    )
    .map_err(unavailable)?;
    let positions = rows(
        conn,
        "SELECT position FROM messages WHERE position IS NOT NULL AND \
         (id = ?1 OR target_id = ?1 AND json_extract(change, '$.kind') = 'edit')",
        [&target],
        |r| col::<i64>(r, "position"),
    )?;
    for position in positions {
        let record: Option<Vec<u8>> = row(
            conn,
            "SELECT record FROM message_log WHERE position = ?",
            [position],
            |r| col(r, "record"),
        )?;
        let Some(record) = record else { continue };
        let scrubbed = MessageRecordV1::decode(&record)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .scrubbed(at)
            .encode();
        exec(
            conn,
            "UPDATE message_log SET record = ? WHERE position = ?",
            (scrubbed, position),
        )
        .map_err(unavailable)?;
    }
    Ok(())
}
