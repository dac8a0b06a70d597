//! The hub's once-a-second sweep over its sessions: token expiry, spread pings, silence; and
//! the ends of login sessions (logout, reuse, the per-user cap) reaching their WebSockets.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Hub;

/// How the hub keeps sessions honest about being alive.
#[derive(Clone, Copy, Debug)]
pub struct Keepalive {
    /// Each session is pinged once per this many seconds.
    pub ping_every_secs: u64,
    /// A session whose client sent nothing (not even a pong) for this many seconds is closed.
    pub idle_after_secs: i64,
}

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub expired: usize,
    pub idle: usize,
    pub pinged: usize,
}

impl Hub {
    /// One sweep at `now` (Unix seconds), the `tick`th: ends sessions whose access token
    /// expired or whose client stayed silent too long, and pings the sessions whose turn it is
    /// (session `id` when `id + tick` is a multiple of the ping interval, so pings are spread).
    pub fn sweep(&self, now: i64, tick: u64, keepalive: Keepalive) -> Swept {
        let state = self.read();
        let mut swept = Swept::default();
        for (id, entry) in &state.sessions {
            if entry.ended.is_cancelled() {
                continue;
            }
            if entry.expires_at <= now {
                entry.ended.cancel();
                swept.expired += 1;
            } else if now - entry.queue.last_heard() >= keepalive.idle_after_secs {
                entry.ended.cancel();
                swept.idle += 1;
            } else if (id + tick).is_multiple_of(keepalive.ping_every_secs.max(1)) {
                if entry.queue.push(self.ping.clone()) {
                    swept.pinged += 1;
                } else {
                    self.metrics.ws_closed_too_slow.inc();
                    entry.ended.cancel();
                }
            }
        }
        swept
    }

    /// Runs [`Hub::sweep`] once a second until `stop` is cancelled: token expiry and silence
    /// are enforced within a second, at the cost of one timer for the process instead of one
    /// per session (each one about 110 bytes of an idle session's memory, and a timer-wheel
    /// entry).
    pub async fn sweep_sessions(self: Arc<Self>, keepalive: Keepalive, stop: CancellationToken) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {
                    ticks += 1;
                    let now = time::OffsetDateTime::now_utc().unix_timestamp();
                    let swept = self.sweep(now, ticks, keepalive);
                    if swept.expired + swept.idle > 0 {
                        tracing::debug!(expired = swept.expired, idle = swept.idle, "sessions ended");
                    }
                }
            }
        }
    }

    /// Ends every WebSocket whose login session `over` says was ended (logout, reuse of a
    /// rotated refresh token, the per-user cap); returns how many.
    pub fn end_logins(&self, over: impl Fn(uuid::Uuid) -> bool) -> usize {
        let state = self.read();
        let mut ended = 0;
        for entry in state.sessions.values() {
            if over(entry.session) && !entry.ended.is_cancelled() {
                entry.ended.cancel();
                ended += 1;
            }
        }
        ended
    }
}

impl Hub {
    /// Ends every session, a slice every 50 ms spread over `over`, so their clients reconnect to
    /// the other gateways a few at a time instead of all at once (a rolling restart). Each
    /// session closes with 1001, "reconnect and resume", since the server's shutdown is under
    /// way. Returns how many were ended.
    pub async fn drain(&self, over: std::time::Duration) -> usize {
        const SLICE: std::time::Duration = std::time::Duration::from_millis(50);
        let ends: Vec<CancellationToken> = self
            .read()
            .sessions
            .values()
            .map(|entry| entry.ended.clone())
            .collect();
        let slices = (over.as_millis() / SLICE.as_millis()).max(1) as usize;
        let per_slice = ends.len().div_ceil(slices).max(1);
        let mut tick = tokio::time::interval(SLICE);
        for slice in ends.chunks(per_slice) {
            tick.tick().await;
            for end in slice {
                end.cancel();
            }
        }
        ends.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use harmony_core::UserId;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::auth::AuthUser;
    use crate::metrics::Metrics;

    fn caller(expires_at: i64) -> AuthUser {
        AuthUser {
            id: UserId::new(),
            session: uuid::Uuid::new_v4(),
            via_cookie: false,
            expires_at,
        }
    }

    #[test]
    fn an_ended_login_ends_its_websockets_only() {
        let hub = Hub::new(Arc::new(Metrics::new()));
        let shutdown = CancellationToken::new();
        let phone = caller(100);
        let laptop = AuthUser {
            session: uuid::Uuid::new_v4(),
            ..phone
        };
        let a = hub.register(&phone, 16, &shutdown);
        let b = hub.register(&phone, 16, &shutdown);
        let c = hub.register(&laptop, 16, &shutdown);
        assert_eq!(hub.sessions_of_user(phone.id), 3);
        assert_eq!(hub.end_logins(|s| s == phone.session), 2);
        assert!(a.ended.is_cancelled() && b.ended.is_cancelled());
        assert!(
            !c.ended.is_cancelled(),
            "another login of the same user goes on"
        );
        assert_eq!(hub.end_logins(|s| s == phone.session), 0, "counted once");
    }

    const KEEPALIVE: Keepalive = Keepalive {
        ping_every_secs: 10,
        idle_after_secs: 25,
    };

    #[test]
    fn expiry_ends_only_sessions_whose_token_expired() {
        let hub = Hub::new(Arc::new(Metrics::new()));
        let shutdown = CancellationToken::new();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let early = hub.register(&caller(now + 100), 16, &shutdown);
        let late = hub.register(&caller(now + 200), 16, &shutdown);
        assert_eq!(hub.sweep(now + 10, 1, KEEPALIVE).expired, 0);
        early.queue.hear(now + 100);
        late.queue.hear(now + 100);
        assert_eq!(
            hub.sweep(now + 100, 1, KEEPALIVE).expired,
            1,
            "expired at 100"
        );
        assert!(early.ended.is_cancelled());
        assert!(!late.ended.is_cancelled());
        assert_eq!(
            hub.sweep(now + 101, 1, KEEPALIVE).expired,
            0,
            "an ended session is not counted twice"
        );
        hub.unregister(late.id);
        assert_eq!(hub.sweep(now + 300, 1, KEEPALIVE), Swept::default());
    }

    #[test]
    fn sessions_are_pinged_once_per_interval_and_ended_when_silent() {
        let hub = Hub::new(Arc::new(Metrics::new()));
        let shutdown = CancellationToken::new();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let sessions: Vec<_> = (0..30)
            .map(|_| hub.register(&caller(now + 1000), 16, &shutdown))
            .collect();
        let mut pings = 0;
        for tick in 0..10 {
            let swept = hub.sweep(now, tick, KEEPALIVE);
            assert!(swept.pinged <= 3, "spread over the interval: {swept:?}");
            pings += swept.pinged;
        }
        assert_eq!(pings, 30, "each session once per interval");
        assert!(sessions
            .iter()
            .all(|s| s.queue.pop().is_some_and(|f| f.ping)));

        // One client answers (any frame or pong counts); the others stay silent.
        sessions[0].queue.hear(now + 20);
        let swept = hub.sweep(now + 25, 0, KEEPALIVE);
        assert_eq!(swept.idle, 29);
        assert!(!sessions[0].ended.is_cancelled());
        assert!(sessions[1..].iter().all(|s| s.ended.is_cancelled()));
    }
}
