//! Backing off between attempts of a step that failed, until it works or the process stops.

use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

const FIRST_DELAY: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_secs(5);

/// Exponential backoff with full jitter. One per step; `reset` after a success.
pub(crate) struct Backoff {
    what: &'static str,
    attempt: u64,
    delay: Duration,
}

impl Backoff {
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            attempt: 0,
            delay: FIRST_DELAY,
        }
    }

    /// Logs the failure (the first and every 20th as a warning) and sleeps; false when
    /// `shutdown` was cancelled meanwhile.
    pub(crate) async fn failed(
        &mut self,
        error: &(dyn std::fmt::Display + Sync),
        shutdown: &CancellationToken,
    ) -> bool {
        self.attempt += 1;
        let attempt = self.attempt;
        if attempt == 1 || attempt.is_multiple_of(20) {
            tracing::warn!(what = self.what, attempt, %error, "failed; retrying");
        } else {
            tracing::debug!(what = self.what, attempt, %error, "failed; retrying");
        }
        let jittered = rand::thread_rng().gen_range(Duration::ZERO..=self.delay);
        self.delay = (self.delay * 2).min(MAX_DELAY);
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = tokio::time::sleep(jittered) => true,
        }
    }

    pub(crate) fn reset(&mut self) {
        if self.attempt > 0 {
            tracing::info!(what = self.what, attempts = self.attempt, "recovered");
        }
        self.attempt = 0;
        self.delay = FIRST_DELAY;
    }
}
