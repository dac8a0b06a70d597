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
