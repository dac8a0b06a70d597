//! Keeps this process's set of ended login sessions current and closes their WebSockets. A
//! session ended here is known at once; one ended on another node is read from the store at the
//! next poll (cluster: every `every`), so its access tokens are refused and its WebSockets
//! closed (4001) on every node within about that time.

use std::time::Duration;

use harmony_core::usecases::AuthError;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// How often the store's old revocations are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Where [`follow`] goes on from: the store read up to `since`, and every revocation this
/// process makes from the load on.
pub struct Loaded {
    since: time::OffsetDateTime,
    news: broadcast::Receiver<uuid::Uuid>,
}

/// Loads the revocations that may still matter; a node does this before it serves, so a token
/// ended before a restart is refused from the first request on.
pub async fn load(state: &AppState) -> Result<Loaded, AuthError> {
    let news = state.use_cases.accounts.revoked().subscribe();
    let since = state
        .use_cases
        .accounts
        .follow_revocations(None, true)
        .await?;
    Ok(Loaded { since, news })
}

/// Runs until `stop`, from where [`load`] left: polls every `every` (`None`: this process is
/// the only one that revokes, so it polls only when it prunes).
pub async fn follow(
    state: AppState,
    loaded: Loaded,
    every: Option<Duration>,
    stop: CancellationToken,
) {
    let accounts = state.use_cases.accounts.clone();
    let Loaded {
        mut since,
        mut news,
    } = loaded;
    let mut last_prune = tokio::time::Instant::now();
    let mut retry = Duration::from_millis(200);
    let mut tick = tokio::time::interval(every.unwrap_or(PRUNE_EVERY));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            news = news.recv() => {
                let ended = match news {
                    Ok(session) => state.hub.end_logins(|s| s == session),
                    // Too many at once to be told each: look at every WebSocket instead.
                    Err(RecvError::Lagged(_)) => state.hub.end_logins(|s| accounts.is_revoked(s)),
                    Err(RecvError::Closed) => return,
                };
                if ended > 0 {
                    tracing::info!(websockets = ended, "closed the WebSockets of an ended login");
                }
            }
            _ = tick.tick() => {
                let prune = last_prune.elapsed() >= PRUNE_EVERY;
                match accounts.follow_revocations(Some(since), prune).await {
                    Ok(next) => {
                        since = next;
                        retry = Duration::from_millis(200);
                        if prune {
                            last_prune = tokio::time::Instant::now();
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not read ended sessions; retrying");
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(retry) => {}
                        }
                        retry = (retry * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
    }
}
