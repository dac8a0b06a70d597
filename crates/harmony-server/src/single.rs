//! The single-node shape: SQLite for state, outbox, log and history; the hub, caches and rate
//! limits in process; the fanout and the projector in this process (the append writes history
//! in its own transaction, so there is no sink).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use harmony_api::{Hub, Metrics};
use harmony_core::cache::InProcessMembershipCache;
use harmony_core::presence::InProcessPresence;
use harmony_core::ratelimit::InProcessRateLimiter;
use harmony_core::usecases::Ports;
use harmony_sqlite::Database;
use harmony_workers::fanout::Fanout;
use harmony_workers::projector::{Projector, Timeline};
use tokio_util::sync::CancellationToken;

use crate::{Assembly, Node, Task};

pub(crate) async fn assemble(a: &Assembly<'_>) -> anyhow::Result<Node> {
    // One node per data directory: a second one (or a restore) is refused while this runs.
    let lock = harmony_sqlite::backup::lock_data_dir(&a.config.server.data_dir)?;
    let db_path = a.config.server.data_dir.join("harmony.db");
    // SQLite gives its WAL and shared-memory files the database file's mode: create the file
    // private before SQLite does, and tighten one an older version made.
    if !db_path.exists() {
        std::fs::File::create(&db_path)
            .with_context(|| format!("creating {}", db_path.display()))?;
    }
    for file in ["harmony.db", "harmony.db-wal", "harmony.db-shm"] {
        let path = a.config.server.data_dir.join(file);
        if path.exists() {
            crate::keys::make_private(&path, false)?;
        }
    }
    let db = Database::open(&db_path)
        .await
        .with_context(|| format!("opening database {}", db_path.display()))?;
    let hub = Arc::new(Hub::new(a.metrics.clone()));
    let cache = Arc::new(InProcessMembershipCache::default());
    let shared = Arc::new(db.clone());
    let ports = Ports {
        users: shared.clone(),
        sessions: shared.clone(),
        friends: shared.clone(),
        chats: shared.clone(),
        log: shared.clone(),
        recent: shared.clone(),
        history: shared.clone(),
        membership_cache: cache.clone(),
        limiter: Arc::new(InProcessRateLimiter::default()),
        hasher: Arc::new(harmony_api::auth::Argon2Hasher::new(
            a.config.limits.password_queue,
        )?),
        // One process: its own hub is every session there is.
        notices: hub.clone(),
        presence: Arc::new(InProcessPresence::default()),
    };
    let stop = a.workers_stop.clone();
    let tasks: Vec<Task> = vec![
        Box::pin(
            Fanout {
                consumer: db.log_cursor("fanout").await?,
                gateways: hub.clone(),
                // The embedded log numbers each chat as it appends.
                sequencer: None,
                on_processed: a.counted("fanout"),
            }
            .run(stop.clone()),
        ),
        Box::pin(
            Projector {
                consumer: db.outbox_cursor("projector").await?,
                gateways: hub.clone(),
                cache,
                history: shared.clone(),
                on_processed: a.counted("projector"),
                dead_letters: None,
                on_dead_letter: a.counted("projector-dead-letters"),
                timeline: Timeline {
                    log: shared.clone(),
                    users: shared.clone(),
                },
            }
            .run(stop.clone()),
        ),
        Box::pin(report_lag(db.clone(), a.metrics.clone(), stop)),
    ];
    let ready_db = db.clone();
    Ok(Node {
        ports,
        hub,
        tasks,
        ready: Arc::new(move || {
            let db = ready_db.clone();
            Box::pin(async move { db.ping().await })
        }),
        close: Box::pin(async move {
            db.close().await;
            drop(lock);
        }),
    })
}

/// Publishes the fanout's lag behind the log head, every second. (History is written by the
/// append itself: the single node has no sink.)
async fn report_lag(db: Database, metrics: Arc<Metrics>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Ok(lag) = db.log_lag("fanout").await {
            metrics
                .consumer_lag
                .get_or_create(&metrics.consumer("fanout"))
                .set(lag);
        }
    }
}
