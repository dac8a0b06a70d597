//! The shared store conformance suite, on the SQLite adapter.

use std::sync::Arc;

use harmony_sqlite::Database;
use harmony_testkit::conformance::{run_all, Stores};

#[tokio::test]
async fn sqlite_stores_keep_every_port_promise() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = Arc::new(Database::open(&dir.path().join("h.db")).await?);
    let stores = Stores {
        users: db.clone(),
        sessions: db.clone(),
        friends: db.clone(),
        chats: db.clone(),
        history: db.clone(),
    };
    run_all(&stores).await
}
