//! Single-node adapters: one SQLite file (WAL mode) holds the state store, the outbox, the
//! embedded message log with its consumer offsets, and the message store (history).
//!
//! In the data flow this crate stands where a cluster has PostgreSQL, Kafka and the history
//! database: api nodes append to [`Database`]'s log and write state plus outbox rows in one
//! transaction; the in-process workers consume the log and the outbox through
//! [`LogCursor`] and [`OutboxCursor`]. Writes go through a single connection on its own thread
//! (SQLite has one writer anyway), group-committed; reads use a few read connections. It uses
//! SQLite synchronously (rusqlite), so a call crosses threads once, not once per statement.

pub mod backup;
mod changes;
mod chats;
mod conn;
pub mod export;
mod friends;
mod history;
mod log;
mod outbox;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use harmony_core::ports::{StoreError, StoreResult};
use rusqlite::types::FromSql;
use rusqlite::{Connection, Row};
use time::OffsetDateTime;

pub(crate) use conn::unavailable;
use conn::{Readers, Wake, Wakes, Writer};
pub use log::LogCursor;
pub use outbox::OutboxCursor;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../../migrations/sqlite/0002_processed_events.sql"),
    ),
    (
        3,
        include_str!("../../../migrations/sqlite/0003_messages_by_chat.sql"),
    ),
    (
        4,
        include_str!("../../../migrations/sqlite/0004_session_revocations.sql"),
    ),
    (
        5,
        include_str!("../../../migrations/sqlite/0005_log_append_only.sql"),
    ),
    (
        6,
        include_str!("../../../migrations/sqlite/0006_message_changes.sql"),
    ),
    (
        7,
        include_str!("../../../migrations/sqlite/0007_notices.sql"),
    ),
];

/// The single-node database. Cheap to clone; every clone shares the writer thread, the read
/// connections and the wake-ups.
#[derive(Clone)]
pub struct Database {
    writer: Writer,
    readers: Arc<Readers>,
    /// Fired after a commit that appended to the log or wrote outbox events, so consumers do
    /// not wait out their poll interval.
    wakes: Arc<Wakes>,
}

impl Database {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let wakes = Arc::new(Wakes::default());
        let db = Self {
            writer: Writer::start(path, wakes.clone())?,
            readers: Readers::new(path),
            wakes,
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> StoreResult<()> {
        self.write(Wake::Nobody, |conn| {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations \
                 (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
            )
            .map_err(unavailable)?;
            let applied: Option<i64> = conn
                .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
                    r.get(0)
                })
                .map_err(unavailable)?;
            for (version, sql) in MIGRATIONS {
                if applied.is_some_and(|a| a >= *version) {
                    continue;
                }
                // One may rebuild a large table: say so before, not only after.
                tracing::info!(version, "applying SQLite migration");
                conn.execute_batch(sql).map_err(unavailable)?;
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, ms(harmony_core::now())),
                )
                .map_err(unavailable)?;
                tracing::info!(version, "applied SQLite migration");
            }
            Ok(())
        })
        .await
    }

    /// Runs `work` on the single write connection, in the writer's next group commit.
    async fn write<T, F>(&self, wake: Wake, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.writer.write(wake, work).await
    }

    /// Runs `work` on a read connection.
    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.readers.read(work).await
    }

    /// True when the database answers a trivial query: for `/readyz`.
    pub async fn ping(&self) -> bool {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
        .is_ok()
    }

    /// Waits until every write sent before has committed, then closes the read connections.
    /// The write connection closes when the last clone is dropped.
    pub async fn close(&self) {
        if let Err(e) = self.write(Wake::Nobody, |_| Ok(())).await {
            tracing::warn!(error = %e, "closing the database");
        }
        self.readers.close();
    }
}

/// Maps a uniqueness violation to `Conflict(what)`, anything else to `Unavailable`.
pub(crate) fn conflict_on(what: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    move |e| match &e {
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.extended_code,
                SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY
            ) =>
        {
            StoreError::Conflict(what)
        }
        _ => unavailable(e),
    }
}

/// One column of a row, by name or (on hot paths, where a name lookup per column and row
/// shows in profiles) by position.
pub(crate) fn col<T: FromSql>(row: &Row<'_>, at: impl rusqlite::RowIndex) -> StoreResult<T> {
    row.get(at).map_err(unavailable)
}

/// Runs a prepared (cached) query and maps every row, stopping at the first error.
pub(crate) fn rows<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut statement = conn.prepare_cached(sql).map_err(unavailable)?;
    let mut found = statement.query(params).map_err(unavailable)?;
    let mut out = Vec::new();
    while let Some(row) = found.next().map_err(unavailable)? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// Like [`rows`] for at most one row.
pub(crate) fn row<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut statement = conn.prepare_cached(sql).map_err(unavailable)?;
    let mut found = statement.query(params).map_err(unavailable)?;
    match found.next().map_err(unavailable)? {
        Some(row) => map(row).map(Some),
        None => Ok(None),
    }
}

/// Runs a prepared (cached) statement; the number of rows it changed.
pub(crate) fn exec(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn from_ms(ms: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Corrupt(format!("timestamp {ms}: {e}")))
}

pub(crate) fn parse<T: FromStr>(what: &str, raw: &str) -> StoreResult<T> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what}: {raw:?}")))
}
