//! The loop every worker shares: poll a batch, apply it until it took effect, commit, repeat.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use harmony_core::events::StoredEvent;
use harmony_core::ports::{EventConsumer, LogConsumer, LogDelivery, StoreResult};
use tokio_util::sync::CancellationToken;

use crate::retry::Backoff;
use crate::OnProcessed;

/// Records per batch, and how long one poll waits for the first record.
pub(crate) const BATCH: usize = 256;
pub(crate) const POLL_WAIT: Duration = Duration::from_millis(500);

/// A consumer of some stream: the message log or the outbox.
#[async_trait]
pub(crate) trait Source: Send {
    type Item: Send + Sync;
    async fn poll(&mut self) -> StoreResult<Vec<Self::Item>>;
    async fn commit(&mut self, batch: &[Self::Item]) -> StoreResult<()>;
}

pub(crate) struct Log<C>(pub C);
pub(crate) struct Events<C>(pub C);

#[async_trait]
impl<C: LogConsumer> Source for Log<C> {
    type Item = LogDelivery;
    async fn poll(&mut self) -> StoreResult<Vec<LogDelivery>> {
        self.0.poll(BATCH, POLL_WAIT).await
    }
    async fn commit(&mut self, batch: &[LogDelivery]) -> StoreResult<()> {
        let positions: Vec<_> = batch.iter().map(|d| d.position).collect();
        self.0.commit(&positions).await
    }
}

#[async_trait]
impl<C: EventConsumer> Source for Events<C> {
    type Item = StoredEvent;
    async fn poll(&mut self) -> StoreResult<Vec<StoredEvent>> {
        self.0.poll(BATCH, POLL_WAIT).await
    }
    async fn commit(&mut self, batch: &[StoredEvent]) -> StoreResult<()> {
        match batch.last() {
            Some(last) => self.0.commit(last).await,
            None => Ok(()),
        }
    }
}

/// Attempts at committing a batch before going on without: a commit can fail for good (the
/// partitions were given to another member in a rebalance), and retrying it forever would stop
/// the worker. Not committing only means the batch may be applied again, which every effect
/// tolerates.
const COMMIT_ATTEMPTS: u32 = 5;

/// Commits a batch, retrying a few times; false only when `shutdown` came first.
async fn commit<S: Source>(
    name: &'static str,
    source: &mut S,
    batch: &[S::Item],
    backoff: &mut Backoff,
    shutdown: &CancellationToken,
) -> bool {
    for attempt in 1..=COMMIT_ATTEMPTS {
        match source.commit(batch).await {
            Ok(()) => {
                backoff.reset();
                return true;
            }
            Err(e) if attempt == COMMIT_ATTEMPTS => {
                tracing::error!(worker = name, error = %e, "could not commit a processed batch; going on (it may be applied again)");
            }
            Err(e) => {
                if !backoff.failed(&e, shutdown).await {
                    return false;
                }
            }
        }
    }
    backoff.reset();
    true
}

/// Runs until `shutdown`: each batch is applied (retried until it works) and then committed, so
/// a crash at any point replays at most the uncommitted batch, never skips one. A shutdown
/// during a retry wait leaves the batch uncommitted: it is applied again after the restart.
pub(crate) async fn consume<S, F, Fut>(
    name: &'static str,
    mut source: S,
    apply: F,
    on_processed: OnProcessed,
    shutdown: CancellationToken,
) where
    S: Source,
    F: Fn(&[S::Item]) -> Fut,
    Fut: Future<Output = StoreResult<()>>,
{
    tracing::info!(worker = name, "started");
    let mut backoff = Backoff::new(name);
    // Each step is retried until it works; `None` means shutdown came first. Polling is cut
    // short by shutdown; applying and committing a batch in hand are not (only their retries).
    macro_rules! until_ok {
        ($step:expr, cancellable) => {
            loop {
                let result = tokio::select! {
                    () = shutdown.cancelled() => break None,
                    result = $step => result,
                };
                until_ok!(@handle result)
            }
        };
        ($step:expr) => {
            loop {
                let result = $step.await;
                until_ok!(@handle result)
            }
        };
        (@handle $result:ident) => {
                match $result {
                    Ok(value) => {
                        backoff.reset();
                        break Some(value);
                    }
                    Err(e) => {
                        if !backoff.failed(&e, &shutdown).await {
                            break None;
                        }
                    }
                }
        };
    }
    loop {
        let Some(batch) = until_ok!(source.poll(), cancellable) else {
            break;
        };
        if batch.is_empty() {
            continue;
        }
        tracing::debug!(worker = name, records = batch.len(), "applying a batch");
        if until_ok!(apply(&batch)).is_none() {
            break;
        }
        if !commit(name, &mut source, &batch, &mut backoff, &shutdown).await {
            break;
        }
        on_processed(batch.len());
    }
    tracing::info!(worker = name, "stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use harmony_core::ports::StoreError;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// Hands out `batches`, then nothing; every commit fails, as after losing the partitions.
    struct Revoked {
        batches: Vec<Vec<u32>>,
        commits: Arc<AtomicUsize>,
    }

    #[async_trait]
    impl Source for Revoked {
        type Item = u32;
        async fn poll(&mut self) -> StoreResult<Vec<u32>> {
            if self.batches.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
                return Ok(Vec::new());
            }
            Ok(self.batches.remove(0))
        }
        async fn commit(&mut self, _batch: &[u32]) -> StoreResult<()> {
            self.commits.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::Unavailable("partitions revoked".into()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_commit_that_keeps_failing_does_not_stop_the_worker() {
        let commits = Arc::new(AtomicUsize::new(0));
        let source = Revoked {
            batches: vec![vec![1, 2], vec![3], vec![4, 5]],
            commits: commits.clone(),
        };
        let applied = Arc::new(Mutex::new(Vec::new()));
        let processed = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let apply = {
            let applied = applied.clone();
            move |batch: &[u32]| {
                let applied = applied.clone();
                let batch = batch.to_vec();
                async move {
                    applied
                        .lock()
                        .map_err(|_| StoreError::Corrupt("lock".into()))?
                        .extend(batch);
                    Ok(())
                }
            }
        };
        let counted = processed.clone();
        let worker = tokio::spawn(consume(
            "test",
            source,
            apply,
            Arc::new(move |n| {
                counted.fetch_add(n, Ordering::SeqCst);
            }),
            shutdown.clone(),
        ));
        // Backoff sleeps run on the paused clock: waiting here lets them all elapse. A worker
        // that retried a commit forever would still be on the first batch after 100 s.
        for _ in 0..1000 {
            if processed.load(Ordering::SeqCst) >= 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        shutdown.cancel();
        worker.await.expect("the worker ends");
        assert_eq!(*applied.lock().expect("lock"), vec![1, 2, 3, 4, 5]);
        assert_eq!(
            commits.load(Ordering::SeqCst),
            3 * COMMIT_ATTEMPTS as usize,
            "each batch's commit was tried a bounded number of times"
        );
    }
}
