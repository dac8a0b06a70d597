//! Writes a single node's rows into a cluster for `harmony migrate --to-cluster`: state into the
//! state database, each log entry into the sequencer's `sequenced` (so the chat's order goes on
//! from it) and the message store. Every write is `ON CONFLICT DO NOTHING`, so a migration that
//! was interrupted is simply run again. No outbox event is written: nothing happened, the data
//! moved, and the projector has no effect to apply.

use harmony_core::ports::StoreResult;
use harmony_core::transfer::{LogRow, StateRows};
use harmony_core::ChatId;
use harmony_protocol::record::MessageRecordV1;
use sqlx::PgPool;

use crate::{corrupt, unavailable};

/// Connections to the cluster's two databases (they may be one), schemas up to date.
pub struct Import {
    state: PgPool,
    history: PgPool,
}

impl Import {
    pub async fn connect(state_url: &str, history_url: &str) -> StoreResult<Self> {
        // Connecting through the stores brings both schemas up to date.
        let state = crate::StateDb::connect(state_url, 4).await?;
        let history = crate::connect(history_url, 4).await?;
        crate::migrate::run(&history, "history", crate::migrate::HISTORY).await?;
        Ok(Self {
            state: state.pool,
            history,
        })
    }

    /// Each chat's head in the cluster (the chats it has placed messages in).
    pub async fn heads(&self) -> StoreResult<Vec<(ChatId, i64)>> {
        let rows: Vec<(uuid::Uuid, i64)> = sqlx::query_as("SELECT chat_id, head FROM chat_heads")
            .fetch_all(&self.state)
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(|(c, h)| (ChatId(c), h)).collect())
    }

    /// Writes every state row, in one transaction, parents before children.
    pub async fn state(&self, s: &StateRows) -> StoreResult<()> {
        let mut tx = self.state.begin().await.map_err(unavailable)?;
        for u in &s.users {
            sqlx::query(
                "INSERT INTO users (id, username, display_name, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(u.id.0)
            .bind(&u.username)
            .bind(&u.display_name)
            .bind(&u.password_hash)
            .bind(u.created_at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for r in &s.refresh_tokens {
            sqlx::query(
                "INSERT INTO refresh_tokens \
                 (hash, family, user_id, created_at, expires_at, rotated_at, revoked) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(r.hash.as_slice())
            .bind(r.family)
            .bind(r.user_id.0)
            .bind(r.created_at)
            .bind(r.expires_at)
            .bind(r.rotated_at)
            .bind(r.revoked)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for r in &s.revocations {
            sqlx::query(
                "INSERT INTO session_revocations (family, revoked_at) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(r.family)
            .bind(r.revoked_at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for f in &s.friend_requests {
            sqlx::query(
                "INSERT INTO friend_requests (id, from_id, to_id, pair_key, status, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(f.id.0)
            .bind(f.from_id.0)
            .bind(f.to_id.0)
            .bind(&f.pair_key)
            .bind(&f.status)
            .bind(f.created_at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for f in &s.friendships {
            sqlx::query(
                "INSERT INTO friendships (user_a, user_b, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(f.user_a.0)
            .bind(f.user_b.0)
            .bind(f.created_at)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for c in &s.chats {
            sqlx::query(
                "INSERT INTO chats (id, kind, name, owner_id, created_at, direct_key) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(c.id.0)
            .bind(&c.kind)
            .bind(&c.name)
            .bind(c.owner_id.0)
            .bind(c.created_at)
            .bind(&c.direct_key)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for m in &s.members {
            sqlx::query(
                "INSERT INTO chat_members (chat_id, user_id, role, joined_at, last_read_seq) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(m.chat_id.0)
            .bind(m.user_id.0)
            .bind(&m.role)
            .bind(m.joined_at)
            .bind(m.last_read_seq)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        tx.commit().await.map_err(unavailable)
    }

    /// Places a page of log entries at their seqs (the sequencer's record, and each chat's head
    /// moved up to them) and stores them in the message store: three statements per page, each
    /// over arrays of the page's columns.
    pub async fn log(&self, entries: &[LogRow]) -> StoreResult<()> {
        let n = entries.len();
        let (mut chats, mut seqs, mut ids, mut authors) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut keys, mut records, mut kinds, mut targets, mut deleted) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut messages = Vec::with_capacity(n);
        for e in entries {
            let message = MessageRecordV1::decode(&e.record)
                .and_then(MessageRecordV1::into_message)
                .map_err(|err| corrupt("log record", &err.to_string()))?;
            chats.push(e.chat_id.0);
            seqs.push(e.seq);
            ids.push(message.id.to_string());
            authors.push(e.author_id.0);
            keys.push(e.client_msg_id.clone());
            records.push(e.record.clone());
            kinds.push(message.change.as_ref().map(|c| c.kind()));
            targets.push(message.change.as_ref().map(|c| c.target().to_string()));
            // A scrubbed message row is a deleted message (its edits are scrubbed too, but
            // only the message's row answers "deleted" to the sequencer).
            deleted.push(
                message
                    .state
                    .deleted_at
                    .filter(|_| message.change.is_none()),
            );
            messages.push(message.committed(e.seq));
        }
        // The history first: a page in the sequencer with its store rows missing would be
        // served to resumes while the store lacks it; the other way round is merely re-run.
        // Stored as the sink stores entries: changes applied once, in order.
        let mut history = self.history.begin().await.map_err(unavailable)?;
        let inserted = crate::changes::insert_entries(&mut history, &messages).await?;
        for m in &messages {
            if m.change.is_some() && inserted.contains(&m.id.to_string()) {
                crate::changes::apply_stored(&mut history, m).await?;
            }
        }
        history.commit().await.map_err(unavailable)?;
        let mut tx = self.state.begin().await.map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO sequenced (chat_id, seq, id, author_id, client_msg_id, record, kind, \
             target_id, deleted_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::text[], $4::uuid[], $5::text[], \
                                  $6::bytea[], $7::text[], $8::text[], $9::timestamptz[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&chats)
        .bind(&seqs)
        .bind(&ids)
        .bind(&authors)
        .bind(&keys)
        .bind(&records)
        .bind(&kinds)
        .bind(&targets)
        .bind(&deleted)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        sqlx::query(
            "INSERT INTO chat_heads (chat_id, head) \
             SELECT chat_id, MAX(seq) FROM UNNEST($1::uuid[], $2::bigint[]) AS t(chat_id, seq) \
             GROUP BY chat_id \
             ON CONFLICT (chat_id) DO UPDATE SET head = GREATEST(chat_heads.head, excluded.head)",
        )
        .bind(&chats)
        .bind(&seqs)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }
}
