//! Waking the sends that wait for their placement: a transaction that places records notifies
//! `harmony_sequenced` with their ids on commit, and one listener per api node wakes the waiting
//! sends. They poll as well, so a lost notification (a dropped listener connection) costs
//! latency, not an answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub(crate) const CHANNEL: &str = "harmony_sequenced";
/// How often a waiting send re-reads its placement even without a notification.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(200);

/// Sends waiting for their placement, by message id.
#[derive(Default)]
pub(crate) struct Waiters(Mutex<HashMap<String, Arc<Notify>>>);

impl Waiters {
    pub(crate) fn register(&self, id: &str) -> Arc<Notify> {
        let notify = Arc::new(Notify::new());
        if let Ok(mut map) = self.0.lock() {
            map.insert(id.to_owned(), notify.clone());
        }
        notify
    }

    pub(crate) fn remove(&self, id: &str) {
        if let Ok(mut map) = self.0.lock() {
            map.remove(id);
        }
    }

    pub(crate) fn wake(&self, id: &str) {
        if let Some(n) = self.0.lock().ok().and_then(|map| map.get(id).cloned()) {
            n.notify_one();
        }
    }

    pub(crate) fn wake_all(&self) {
        if let Ok(map) = self.0.lock() {
            map.values().for_each(|n| n.notify_one());
        }
    }
}

/// Listens until `shutdown`, reconnecting with backoff.
pub(crate) async fn listen(pool: PgPool, waiters: Arc<Waiters>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(CHANNEL).await {
                Ok(()) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "could not listen for placements; polling");
                    sleep_or_stop(&shutdown, &mut backoff).await;
                    continue;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "could not listen for placements; polling");
                sleep_or_stop(&shutdown, &mut backoff).await;
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(n)) => n.payload().split(',').for_each(|id| waiters.wake(id)),
                // The connection dropped: notifications may have been lost meanwhile.
                Ok(None) => waiters.wake_all(),
                Err(e) => {
                    tracing::warn!(error = %e, "placement listener failed; reconnecting");
                    waiters.wake_all();
                    break;
                }
            }
        }
    }
}

async fn sleep_or_stop(shutdown: &CancellationToken, backoff: &mut Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
}
