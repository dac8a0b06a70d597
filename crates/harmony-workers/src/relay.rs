//! The relay: outbox change stream → events topic. Each batch is published (every event
//! acknowledged) before the stream is advanced past it, so a crash in between publishes the
//! batch again; the projector dedupes by event id. Only one relay is active (the stream's
//! leader lock); a relay whose stream fails returns, and its role loop leads again.

use std::sync::Arc;

use harmony_core::ports::{EventPublisher, OutboxStream};
use tokio_util::sync::CancellationToken;

use crate::retry::Backoff;
use crate::OnProcessed;

/// Changes read per batch.
const BATCH: usize = 500;

pub struct Relay<S> {
    pub stream: S,
    pub publisher: Arc<dyn EventPublisher>,
    pub on_processed: OnProcessed,
}

impl<S: OutboxStream> Relay<S> {
    /// Runs until `shutdown`, or until the stream fails (then the leader lock may be gone: the
    /// caller leads again). Publishing is retried; a batch is never skipped.
    pub async fn run(
        mut self,
        shutdown: CancellationToken,
    ) -> Result<(), harmony_core::ports::StoreError> {
        let mut backoff = Backoff::new("relay publish");
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let batch = self.stream.peek(BATCH).await?;
            if batch.end.is_none() {
                // The stream says when to peek again: a commit that wrote events, or its upkeep.
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    woke = self.stream.wait() => {
                        woke?;
                        continue;
                    }
                }
            }
            loop {
                match self.publisher.publish(&batch.events).await {
                    Ok(()) => {
                        backoff.reset();
                        break;
                    }
                    Err(e) => {
                        if !backoff.failed(&e, &shutdown).await {
                            return Ok(());
                        }
                    }
                }
            }
            self.stream.advance(&batch).await?;
            (self.on_processed)(batch.events.len());
        }
    }
}
