//! Membership changes in each chat's order (decision record 0002): a removal is recorded at the
//! chat's head in the transaction that makes it, and the sequencer reads, in its placing
//! transaction, the removals that take effect right before the messages it places, so the
//! fan-out publishes them ahead of those messages on the same ordered path.

use harmony_core::ports::{Placement, StoreResult};
use harmony_core::{ChatId, UserId};
use sqlx::{PgConnection, Postgres, Row, Transaction};

use crate::unavailable;

/// Members removed right before a message of these spans (`(chat, first seq, last seq)`), read
/// in the placing transaction: per user and position the last change made there decides.
pub(crate) async fn removals_in(
    conn: &mut PgConnection,
    spans: &[(ChatId, i64, i64)],
) -> StoreResult<Vec<(ChatId, UserId, i64)>> {
    if spans.is_empty() {
        return Ok(Vec::new());
    }
    let chats: Vec<uuid::Uuid> = spans.iter().map(|s| s.0 .0).collect();
    let los: Vec<i64> = spans.iter().map(|s| s.1 - 1).collect();
    let his: Vec<i64> = spans.iter().map(|s| s.2).collect();
    let rows = sqlx::query(
        "SELECT DISTINCT ON (c.chat_id, c.user_id, c.at_seq) c.chat_id, c.user_id, c.at_seq, c.removed \
         FROM membership_changes c \
         JOIN unnest($1::uuid[], $2::int8[], $3::int8[]) AS s (chat_id, lo, hi) \
         ON c.chat_id = s.chat_id AND c.at_seq >= s.lo AND c.at_seq < s.hi \
         ORDER BY c.chat_id, c.user_id, c.at_seq, c.id DESC",
    )
    .bind(&chats)
    .bind(&los)
    .bind(&his)
    .fetch_all(&mut *conn)
    .await
    .map_err(unavailable)?;
    let mut out = Vec::new();
    for r in &rows {
        let removed: bool = r.try_get("removed").map_err(unavailable)?;
        if removed {
            out.push((
                ChatId(r.try_get("chat_id").map_err(unavailable)?),
                UserId(r.try_get("user_id").map_err(unavailable)?),
                r.try_get::<i64, _>("at_seq").map_err(unavailable)? + 1,
            ));
        }
    }
    Ok(out)
}

/// `(chat, first seq, last seq)` of the placed messages, per chat.
pub(crate) fn spans(placements: &[Placement]) -> Vec<(ChatId, i64, i64)> {
    let mut spans: Vec<(ChatId, i64, i64)> = Vec::new();
    for p in placements {
        let Placement::Placed(m) = p else { continue };
        match spans.iter_mut().find(|s| s.0 == m.chat_id) {
            Some(span) => {
                span.1 = span.1.min(m.seq);
                span.2 = span.2.max(m.seq);
            }
            None => spans.push((m.chat_id, m.seq, m.seq)),
        }
    }
    spans
}

/// Records membership changes at the chat's current head, inside the transaction that makes
/// them. Locking the head row orders the change against placements: a message placed after this
/// commits gets a seq above the recorded one.
pub(crate) async fn record_membership(
    tx: &mut Transaction<'_, Postgres>,
    chat: ChatId,
    users: &[uuid::Uuid],
    removed: bool,
) -> StoreResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO chat_heads (chat_id, head) VALUES ($1, 0) ON CONFLICT (chat_id) DO NOTHING",
    )
    .bind(chat.0)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    let head: i64 = sqlx::query_scalar("SELECT head FROM chat_heads WHERE chat_id = $1 FOR UPDATE")
        .bind(chat.0)
        .fetch_one(&mut **tx)
        .await
        .map_err(unavailable)?;
    sqlx::query(
        "INSERT INTO membership_changes (chat_id, user_id, at_seq, removed) \
         SELECT $1, unnest($2::uuid[]), $3, $4",
    )
    .bind(chat.0)
    .bind(users)
    .bind(head)
    .bind(removed)
    .execute(&mut **tx)
    .await
    .map_err(unavailable)?;
    Ok(())
}
