//! Cluster adapters on PostgreSQL: [`StateDb`] holds accounts, sessions, friends, chats and the
//! transactional outbox; [`HistoryDb`] is the message store, which may live on a database of its
//! own.
//!
//! In the cluster's data flow the api nodes write state and its outbox event in one transaction
//! here; the relay reads the outbox from the WAL; the sink upserts committed messages into the
//! history; history reads re-hydrate authors from the state store.

mod changes;
mod chats;
mod friends;
mod history;
pub mod import;
mod migrate;
mod outbox;
mod placements;
mod placing;
mod relay;
mod removals;
mod sequencer;
mod users;

use harmony_core::ports::{StoreError, StoreResult};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

pub use history::HistoryDb;
pub use relay::{SlotHealth, WalOutbox};
pub use sequencer::PgSequencer;

/// The state store. Cheap to clone.
#[derive(Clone)]
pub struct StateDb {
    pool: PgPool,
}

impl StateDb {
    /// The per-chat order kept in this database.
    pub fn sequencer(&self) -> PgSequencer {
        PgSequencer::new(self.pool.clone())
    }

    /// Connects and brings the schema up to date (concurrent starters wait on an advisory lock).
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Self> {
        let pool = connect(url, max_connections).await?;
        migrate::run(&pool, "state", migrate::STATE).await?;
        Ok(Self { pool })
    }

    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A connection idle for longer than this is tested (a round trip) before it is used again.
const TEST_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) async fn connect(url: &str, max_connections: u32) -> StoreResult<PgPool> {
    use sqlx::Connection as _;
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        // sqlx tests every connection when it goes back to the pool (a round trip), and by
        // default again when it is taken out: three round trips per query. A busy connection
        // was just tested; only one idle for a while (PostgreSQL may have restarted since) is
        // tested again. (harmony-bench S6: the ping was a fifth of a gateway's CPU.)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > TEST_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .connect(url)
        .await
        .map_err(unavailable)
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

pub(crate) fn corrupt(what: &str, raw: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: {raw:?}"))
}
