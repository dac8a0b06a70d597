//! Waking the sends that wait for their placement: a transaction that places records notifies
//! `harmony_sequenced` on commit with their ids, and with the seq of each one it placed
//! (`id:seq`), and one listener per api node wakes the waiting sends. A send told its seq
//! answers without another query; one told only its id (a duplicate, a refusal) looks it up.
//! They poll as well, so a lost notification (a dropped listener connection) costs latency, not
//! an answer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub(crate) const CHANNEL: &str = "harmony_sequenced";
/// How often a waiting send re-reads its placement even without a notification.
pub(crate) const POLL_EVERY: Duration = Duration::from_millis(200);

/// One record waiting for its placement.
#[derive(Default)]
pub(crate) struct Waiter {
    /// Shared by the records one caller waits for.
    pub(crate) woken: Arc<Notify>,
    /// The seq its record was placed at, when a notification said so.
    pub(crate) placed_at: OnceLock<i64>,
    /// A notification named it without a seq (a duplicate or a refusal): look it up.
    pub(crate) named: AtomicBool,
}

impl Waiter {
    pub(crate) fn named(&self) -> bool {
        self.named.load(Ordering::Relaxed)
    }
}

/// Records waiting for their placement, by message id. One record may have two waiters on a
/// node: the send that produced it and the sink.
#[derive(Default)]
pub(crate) struct Waiters(Mutex<HashMap<String, Vec<Arc<Waiter>>>>);

/// A registration, removed when dropped.
pub(crate) struct Registered<'a> {
    waiters: &'a Waiters,
    id: String,
    pub(crate) waiter: Arc<Waiter>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.waiters.0.lock() {
            if let Some(list) = map.get_mut(&self.id) {
                list.retain(|w| !Arc::ptr_eq(w, &self.waiter));
                if list.is_empty() {
                    map.remove(&self.id);
                }
            }
        }
    }
}

impl Waiters {
    pub(crate) fn register(&self, id: String, woken: Arc<Notify>) -> Registered<'_> {
        let waiter = Arc::new(Waiter {
            woken,
            ..Waiter::default()
        });
        if let Ok(mut map) = self.0.lock() {
            map.entry(id.clone()).or_default().push(waiter.clone());
        }
        Registered {
            waiters: self,
            id,
            waiter,
        }
    }

    /// Wakes the waiters a notification names: `id:seq` for a placed record, `id` for another.
    pub(crate) fn wake(&self, payload: &str) {
        let Ok(map) = self.0.lock() else { return };
        for item in payload.split(',') {
            let (id, seq) = match item.split_once(':') {
                Some((id, seq)) => (id, seq.parse::<i64>().ok()),
                None => (item, None),
            };
            for waiter in map.get(id).into_iter().flatten() {
                match seq {
                    Some(seq) => {
                        let _ = waiter.placed_at.set(seq);
                    }
                    None => waiter.named.store(true, Ordering::Relaxed),
                }
                waiter.woken.notify_one();
            }
        }
    }

    pub(crate) fn wake_all(&self) {
        if let Ok(map) = self.0.lock() {
            map.values().flatten().for_each(|w| w.woken.notify_one());
        }
    }
}

/// A notification's items for a placed batch: `id:seq` for each record placed (a replay too),
/// `id` for the others (their senders look them up), in chunks under PostgreSQL's 8,000 bytes.
pub(crate) fn payloads<'a>(items: impl Iterator<Item = (&'a str, Option<i64>)>) -> Vec<String> {
    // An id is 26 bytes, a seq at most 19 digits: 150 items stay under 7,000 bytes.
    const ITEMS_PER_NOTIFY: usize = 150;
    let items: Vec<String> = items
        .map(|(id, seq)| match seq {
            Some(seq) => format!("{id}:{seq}"),
            None => id.to_owned(),
        })
        .collect();
    items
        .chunks(ITEMS_PER_NOTIFY)
        .map(|chunk| chunk.join(","))
        .collect()
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
                Ok(Some(n)) => waiters.wake(n.payload()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_tells_placed_records_their_seq_and_wakes_the_others() {
        let waiters = Waiters::default();
        let woken = Arc::new(Notify::new());
        let (a, b) = (
            waiters.register("A".into(), woken.clone()),
            waiters.register("B".into(), woken),
        );
        let payload = payloads([("A", Some(7)), ("B", None), ("C", Some(9))].into_iter());
        assert_eq!(payload, vec!["A:7,B,C:9".to_owned()]);
        waiters.wake(&payload[0]);
        assert_eq!(a.waiter.placed_at.get(), Some(&7));
        assert_eq!(b.waiter.placed_at.get(), None);
        assert!(b.waiter.named() && !a.waiter.named());
        // A second waiter for A (the sink, beside the send) is told too, and kept when the
        // first goes.
        let second = waiters.register("A".into(), Arc::new(Notify::new()));
        waiters.wake("A:7");
        assert_eq!(second.waiter.placed_at.get(), Some(&7));
        let has = |id: &str| {
            waiters
                .0
                .lock()
                .map(|m| m.contains_key(id))
                .unwrap_or(false)
        };
        drop(a);
        assert!(has("A"), "the second waiter stays");
        drop(second);
        assert!(!has("A") && has("B"));
    }

    #[test]
    fn a_long_batch_is_notified_in_chunks_under_the_limit() {
        let ids: Vec<String> = (0..400).map(|i| format!("{i:026}")).collect();
        let payloads = payloads(ids.iter().map(|id| (id.as_str(), Some(i64::MAX))));
        assert_eq!(payloads.len(), 3);
        assert!(
            payloads.iter().all(|p| p.len() < 8000),
            "{:?}",
            payloads.iter().map(String::len).collect::<Vec<_>>()
        );
        let items: usize = payloads.iter().map(|p| p.split(',').count()).sum();
        assert_eq!(items, 400);
    }
}
