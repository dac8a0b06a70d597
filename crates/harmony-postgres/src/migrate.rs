//! Schema migrations: each schema's files in order, once, under a transaction-scoped advisory
//! lock so that several nodes starting together migrate exactly once.

use harmony_core::ports::StoreResult;
use sqlx::PgPool;

use crate::unavailable;

pub(crate) const STATE: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/state/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/state/0002_sequencer.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/state/0003_session_revocations.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/postgres/state/0004_message_changes.sql"),
    ),
];
pub(crate) const HISTORY: &[(i64, &str)] = &[
    (
        1,
        include_str!("../../../migrations/postgres/history/0001_init.sql"),
    ),
    (
        2,
        include_str!("../../../migrations/postgres/history/0002_processed_events.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/postgres/history/0003_message_changes.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/postgres/history/0004_notices.sql"),
    ),
];

pub(crate) async fn run(
    pool: &PgPool,
    schema: &str,
    migrations: &[(i64, &str)],
) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    // One lock id per schema name, so state and history migrate independently.
    let lock_id = schema.bytes().fold(0x4841_524d_i64, |h, b| {
        h.wrapping_mul(31).wrapping_add(i64::from(b))
    });
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_id)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS harmony_migrations \
         (schema_name TEXT NOT NULL, version BIGINT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
          PRIMARY KEY (schema_name, version))",
    )
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    let applied: Option<i64> =
        sqlx::query_scalar("SELECT MAX(version) FROM harmony_migrations WHERE schema_name = $1")
            .bind(schema)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
    for (version, sql) in migrations {
        if applied.is_some_and(|a| a >= *version) {
            continue;
        }
        sqlx::Executor::execute(&mut *tx, *sql)
            .await
            .map_err(unavailable)?;
        sqlx::query("INSERT INTO harmony_migrations (schema_name, version) VALUES ($1, $2)")
            .bind(schema)
            .bind(version)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        tracing::info!(schema, version, "applied PostgreSQL migration");
    }
    tx.commit().await.map_err(unavailable)
}
