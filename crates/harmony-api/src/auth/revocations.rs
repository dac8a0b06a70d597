//! Keeps this process's set of ended login sessions current and closes their WebSockets. A
//! session ended here is known at once; one ended on another node is read from the store at the
//! next poll (cluster: every `every`), so its access tokens are refused and its WebSockets
//! closed (4001) on every node within about that time.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::AppState;

/// How often the store's old revocations are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Runs until `stop`: loads the revocations that may still matter, then polls every `every`
/// (`None`: this process is the only one that revokes, so it polls only when it prunes).
pub async fn follow(state: AppState, every: Option<Duration>, stop: CancellationToken) {
    let accounts = state.use_cases.accounts.clone();
    let mut news = accounts.revoked().subscribe();
    let mut since = None;
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
                let prune = last_prune.elapsed() >= PRUNE_EVERY || since.is_none();
                match accounts.follow_revocations(since, prune).await {
                    Ok(next) => {
                        since = Some(next);
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
