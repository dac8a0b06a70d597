//! The shared store conformance suite, on the PostgreSQL adapters, against a private PostgreSQL.

use std::sync::Arc;

use harmony_postgres::{HistoryDb, StateDb};
use harmony_testkit::conformance::{run_all, Stores};
use harmony_testkit::postgres::PrivatePostgres;

#[tokio::test]
async fn postgres_stores_keep_every_port_promise() -> anyhow::Result<()> {
    let pg = PrivatePostgres::start().await?;
    let state = Arc::new(StateDb::connect(&pg.database("state").await?, 4).await?);
    let history =
        Arc::new(HistoryDb::connect(&pg.database("history").await?, 4, state.clone()).await?);
    let stores = Stores {
        users: state.clone(),
        sessions: state.clone(),
        friends: state.clone(),
        chats: state.clone(),
        history,
    };
    run_all(&stores).await?;
    // Migrations are idempotent: a second node connecting changes nothing.
    StateDb::connect(&pg.database("state2").await?, 2).await?;
    StateDb::connect(&pg.url("state"), 2).await?;
    Ok(())
}
