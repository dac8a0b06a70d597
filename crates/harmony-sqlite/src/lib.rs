//! Single-node adapters: one SQLite file (WAL mode) holds the state store, the outbox, the
//! embedded message log with its consumer offsets, and the message store (history).
//!
//! In the data flow this crate stands where a cluster has PostgreSQL, Kafka and the history
//! database: api nodes append to [`Database`]'s log and write state plus outbox rows in one
//! transaction; the in-process workers consume the log and the outbox through
//! [`LogCursor`] and [`OutboxCursor`]. Writes go through a single connection (SQLite has one
//! writer anyway), so write transactions never fail on lock upgrades; reads use a pool.

mod chats;
mod friends;
mod history;
mod log;
mod outbox;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use harmony_core::ports::{StoreError, StoreResult};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;
use tokio::sync::Notify;

pub use log::LogCursor;
pub use outbox::OutboxCursor;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../../migrations/sqlite/0002_processed_events.sql"),
    ),
];

/// The single-node database. Cheap to clone; every clone shares the pools and the wake-ups.
#[derive(Clone)]
pub struct Database {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Woken on every log append, so consumers do not wait out their poll interval.
    log_appended: Arc<Notify>,
    /// Woken on every outbox write.
    outbox_written: Arc<Notify>,
    /// The group-commit writer of the message log.
    appender: tokio::sync::mpsc::Sender<log::AppendJob>,
}

impl Database {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    /// `synchronous = FULL`: a commit survives power loss, which is what a `201` promises.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(unavailable)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(false))
            .await
            .map_err(unavailable)?;
        let log_appended = Arc::new(Notify::new());
        let db = Self {
            appender: log::spawn_appender(writer.clone(), log_appended.clone()),
            writer,
            reader,
            log_appended,
            outbox_written: Arc::new(Notify::new()),
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
        for (version, sql) in MIGRATIONS {
            if applied.is_some_and(|a| a >= *version) {
                continue;
            }
            // A plain `&str` runs every statement in it (`raw_sql` would too, but its future is
            // not `Send` for every lifetime, which `tokio::spawn` needs).
            sqlx::Executor::execute(&mut *tx, *sql)
                .await
                .map_err(unavailable)?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)")
                .bind(version)
                .bind(ms(harmony_core::now()))
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
            tracing::info!(version, "applied SQLite migration");
        }
        tx.commit().await.map_err(unavailable)
    }

    /// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`).
    async fn begin_write(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)
    }

    /// True when the database answers a trivial query: for `/readyz`.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.reader).await.is_ok()
    }

    /// Closes the pools, waiting for connections in use.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

pub(crate) fn unavailable(e: sqlx::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Maps a uniqueness violation to `Conflict(what)`, anything else to `Unavailable`.
pub(crate) fn conflict_on(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| match e.as_database_error() {
        Some(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => unavailable(e),
    }
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
